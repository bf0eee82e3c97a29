import CRuntimeShim
import CSystemShim
import Glibc

/// Ctrl-C, SIGTERM and SIGHUP for the commands that start runs (`test`, `explore`,
/// `replay`, `step`): the signal ends the runs at once (in its handler, in C) and is
/// recorded here; the command notices it, reports what it has so far, and exits with
/// 128 + the signal. No thread: the handler only signals processes and sets a word.
public enum Cancellation {
    /// Arms the handlers, whatever the signals' disposition was at start. `graceful`:
    /// the first signal asks each direct child to end (SIGTERM: a run ends its own
    /// processes and removes its socket files); else it kills every descendant at once.
    /// Orphans of the runs come back to this process, so that none outlives it.
    public static func install(graceful: Bool) {
        _ = ipc_set_child_subreaper()
        ipc_cancel_install(graceful ? 1 : 0)
    }

    /// The signal that cancelled the command, if one did.
    public static var signal: Int32? {
        let s = ipc_cancel_signal()
        return s == 0 ? nil : s
    }

    public static var isRequested: Bool { ipc_cancel_signal() != 0 }

    /// 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
    public static var exitStatus: Int32 { 128 + (signal ?? 0) }

    /// "SIGINT", "SIGTERM", "SIGHUP".
    public static var signalName: String {
        switch signal {
        case SIGINT?: return "SIGINT"
        case SIGTERM?: return "SIGTERM"
        case SIGHUP?: return "SIGHUP"
        case let s?: return "signal \(s)"
        case nil: return "no signal"
        }
    }

    /// Kills and reaps every descendant, for at most about `milliseconds`; true when none
    /// is left.
    @discardableResult
    public static func endDescendants(milliseconds: Int32 = 1000) -> Bool {
        ipc_end_descendants(milliseconds) == 1
    }
}
