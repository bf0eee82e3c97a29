// swift-tools-version: 6.0
import PackageDescription

// The architecture, from the bottom up:
//   CLua          Debian's liblua5.4, found through pkg-config (never vendored).
//   CLuaShim      Lua's function-like macros as functions, the error trampoline, the
//                 traceback message handler.
//   CSystemShim   the system only: the few syscalls and C idioms Swift cannot reach
//                 (futex, C11 atomics on shared words, robust mutexes, cmsg, CRC), the
//                 C layouts of the IPC objects in shared memory, and their protocols
//                 (ipc_queue.c, ipc_channel.c, ipc_sync.h), written once: IPCCore and the
//                 Lua fast paths (CLuaShim) both call them.
//   IPCCore       pure Swift shared-memory IPC: rings, locks, semaphores, pipes, sockets,
//                 the wire format, and the one place where a call may sleep (`Blocking`).
//                 No Lua here; testable alone.
//   CRuntimeShim  the run's policy where it must be C: the board's layout, the output
//                 discipline, the async-signal-safe ends of a run (signals, --timeout).
//   IPCRuntime    processes and their supervision, the gate every IPC call passes, the
//                 run's board and report, tracing, the controlled scheduler.
//   IPCLua        the `ipc` module: Lua bindings over the core and the runtime, and the
//                 script runner.
//   ipcplay       the command line.
/// The IPC hot paths touch class properties and globals of a single-threaded runtime;
/// Swift's dynamic exclusivity checks there cost more than the IPC itself.
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]

let package = Package(
    name: "ipcplay",
    products: [
        .executable(name: "ipcplay", targets: ["ipcplay"]),
        // For the decoder fuzzer (Fuzz/), which links the bindings without the CLI.
        .library(name: "IPCPlayBindings", targets: ["IPCLua"]),
    ],
    dependencies: [
        // Pinned to exact versions: the build is the same on every machine. (Versions, not a
        // committed Package.resolved: the resolved file records commit ids, which differ
        // between GitHub and the package mirrors some build machines use.)
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", exact: "1.8.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        .target(name: "CLuaShim", dependencies: ["CLua", "CSystemShim", "CRuntimeShim"]),
        .target(name: "CSystemShim"),
        .target(
            name: "IPCCore",
            dependencies: [
                "CSystemShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(name: "CRuntimeShim", dependencies: ["CSystemShim"]),
        .target(
            name: "IPCRuntime",
            dependencies: ["IPCCore", "CSystemShim", "CRuntimeShim", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: hotPathSettings
        ),
        .target(name: "IPCLua", dependencies: ["CLua", "CLuaShim", "IPCCore", "IPCRuntime"], swiftSettings: hotPathSettings),
        .executableTarget(
            name: "ipcplay",
            dependencies: [
                "IPCLua", "IPCRuntime", "IPCCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // Not position-independent: the tens of thousands of pointers in Swift's
            // metadata are then fixed at link time, not relocated (and their pages
            // copied) at every start. A third fewer page faults, a faster start-up.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-no-pie"])]
        ),
        .testTarget(name: "IPCCoreTests", dependencies: ["IPCCore"]),
        .testTarget(name: "IPCRuntimeTests", dependencies: ["IPCRuntime"]),
        .testTarget(name: "IPCLuaTests", dependencies: ["IPCLua", "CLua", "CLuaShim"]),
        .testTarget(name: "EndToEndTests", dependencies: ["ipcplay", "CRuntimeShim"], exclude: ["Fixtures"]),
    ]
)
