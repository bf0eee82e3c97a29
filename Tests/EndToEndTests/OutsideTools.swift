import Foundation
import Testing

/// The programs outside the package that some end-to-end tests need as peers or checkers.
/// A test that needs one that is missing is skipped with the reason (`@Test(.needsPython3)`),
/// never failed; `.ci/run` installs them all.
enum OutsideTools {
    /// True when `command` (run by /bin/sh, found on $PATH) exits 0.
    static func works(_ command: String) -> Bool {
        (try? Ipcplay.shell("\(command) >/dev/null 2>&1").status) == 0
    }

    static let python3 = works("python3 -c pass")
    static let socat = works("socat -V")
    /// Perl with Test-Harness's TAP::Parser (Debian: perl-modules).
    static let perlTAPParser = works("/usr/bin/perl -MTAP::Parser -e 1")
    /// Test-Harness's `prove`.
    static let prove = works("prove --version")
    static let luacheck = works("luacheck --version")
    static let tmux = works("tmux -V")
}

extension Trait where Self == ConditionTrait {
    static var needsPython3: Self { .enabled(if: OutsideTools.python3, "python3 is not installed") }
    static var needsSocat: Self { .enabled(if: OutsideTools.socat, "socat is not installed") }
    static var needsTmux: Self { .enabled(if: OutsideTools.tmux, "tmux is not installed (apt-get install tmux)") }
    static var needsProve: Self { .enabled(if: OutsideTools.prove && OutsideTools.perlTAPParser, "prove is not installed (apt-get install perl)") }
    static var needsPerlTAPParser: Self {
        .enabled(if: OutsideTools.perlTAPParser, "perl's TAP::Parser is not installed (apt-get install perl)")
    }
}
