// swift-tools-version: 6.0
import PackageDescription

// The decoder's fuzz target, kept apart from the main package because a libFuzzer target
// has no `main` of its own. Build and run it with Fuzz/run (libFuzzer + AddressSanitizer).
let package = Package(
    name: "IPCPlayFuzz",
    dependencies: [.package(name: "ipcplay", path: "..")],
    targets: [
        .executableTarget(
            name: "DecoderFuzzer",
            dependencies: [.product(name: "IPCPlayBindings", package: "ipcplay")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
