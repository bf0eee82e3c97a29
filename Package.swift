// swift-tools-version: 6.0
import PackageDescription

// The architecture, from the bottom up:
//   CLua          Debian's liblua5.4, found through pkg-config (never vendored).
//   CLuaShim      Lua's function-like macros as functions, the error trampoline, the
//                 traceback message handler.
//   CSystemShim   the few syscalls and C idioms Swift cannot reach: futex, C11 atomics on
//                 shared words, robust mutexes, cmsg, async-signal-safe shutdown.
//   IPCCore       pure Swift shared-memory IPC: rings, locks, semaphores, pipes, sockets,
//                 the wire format. No Lua here; testable alone.
//   IPCRuntime    processes and their supervision, the run's shared status board,
//                 output discipline, tracing.
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
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .target(name: "CSystemShim"),
        .target(
            name: "IPCCore",
            dependencies: [
                "CSystemShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(name: "IPCRuntime", dependencies: ["IPCCore", "CSystemShim"], swiftSettings: hotPathSettings),
        .target(name: "IPCLua", dependencies: ["CLua", "CLuaShim", "IPCCore", "IPCRuntime"], swiftSettings: hotPathSettings),
        .executableTarget(
            name: "ipcplay",
            dependencies: [
                "IPCLua", "IPCRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "IPCCoreTests", dependencies: ["IPCCore"]),
        .testTarget(name: "IPCLuaTests", dependencies: ["IPCLua", "CLua", "CLuaShim"]),
        .testTarget(name: "EndToEndTests", dependencies: ["ipcplay"], exclude: ["Fixtures"]),
    ]
)
