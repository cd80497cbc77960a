// swift-tools-version:6.0
import PackageDescription

// Release builds skip the run-time exclusivity checks (swift_beginAccess on every access to a class's stored
// property that the compiler cannot prove exclusive): on the loop's hot path they cost about 5 % of the worker's
// instructions per transient push (callgrind, BENCHMARKS.md). Debug builds, which the tests run, keep them.
let releaseSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "pushgw",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pushgw", targets: ["PushGateway"]),
        .executable(name: "pushgw-bench", targets: ["PushBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // C libraries from Debian packages; each module map links the library over a one-file shim.
        .systemLibrary(name: "CLibev", providers: [.apt(["libev-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CHTTPParser", providers: [.apt(["libhttp-parser-dev"])]),
        .systemLibrary(name: "CNghttp2", providers: [.apt(["libnghttp2-dev"])]),
        // Linux calls Swift's Glibc import hides (accept4, pipe2) or cannot call (variadic prctl).
        .systemLibrary(name: "CSystem"),

        // Everything that can be tested without sockets.
        .target(
            name: "PushCore",
            dependencies: [
                "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            // The Lua scripts stay .lua files in the repo and are compiled into the binary as byte arrays.
            resources: [.embedInCode("Storage/Scripts")],
            swiftSettings: releaseSettings
        ),
        // The engine shared by the daemon and the load generator: the libev loop and timers, every syscall (Posix),
        // one monotonic clock, sockets, listeners, line connections, processes, the Redis client, TLS (OpenSSL), and
        // the HTTP/2 client of the notifiers (nghttp2).
        .target(
            name: "PushPosix",
            dependencies: [
                "PushCore", "CLibev", "CHiredis", "CSystem", "COpenSSL", "CNghttp2",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: releaseSettings
        ),
        // The `pushgw` daemon: servers, HTTP API, admin, processes.
        .executableTarget(
            name: "PushGateway",
            dependencies: [
                "PushCore", "PushPosix", "COpenSSL", "CHTTPParser",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: releaseSettings
        ),
        // The load generator of Scripts/bench: many connections over several processes and source addresses.
        .executableTarget(
            name: "PushBench",
            dependencies: [
                "PushCore", "PushPosix",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: releaseSettings
        ),
        // The JWT tests check signatures with OpenSSL's public-key API, apart from the code that made them.
        .testTarget(name: "PushCoreTests", dependencies: ["PushCore", "COpenSSL"]),
        // The engine on its own: the loop's events and ticks, sockets, pipes, deferred closes.
        .testTarget(
            name: "PushPosixTests",
            dependencies: [
                "PushPosix", "PushCore", "COpenSSL", "CHiredis", .product(name: "Logging", package: "swift-log"),
            ]),
        // Integration tests: start the built `pushgw` binary and talk to it over real sockets.
        // The TLS tests' client is OpenSSL, blocking, over the same test sockets.
        .testTarget(name: "PushGatewayTests", dependencies: ["PushCore", "COpenSSL"]),
    ]
)
