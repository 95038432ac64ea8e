// swift-tools-version:6.1
import Foundation
import PackageDescription

/// One set of settings for every target: Swift 6 mode, explicit `any`.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

/// The files of a folder of this package, sorted (empty when it does not exist).
func files(in folder: String) -> [String] {
    let path = Context.packageDirectory + "/" + folder
    return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
}

/// Every folder under Plugins/ is a vendor plugin: a target named Vendor<Folder> with its sample
/// exports (Examples/) compiled in. A new vendor is a folder and a line in BuiltInPlugins.swift.
let vendorTargets: [Target] = files(in: "Plugins").filter { folder in
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: Context.packageDirectory + "/Plugins/" + folder, isDirectory: &isDirectory) && isDirectory.boolValue
}.map { folder in
    .target(
        name: "Vendor\(folder)", dependencies: ["ReconCore", "FormatReaders", "ExactJSON", "Metering"], path: "Plugins/\(folder)",
        exclude: ["README.md"], resources: files(in: "Plugins/\(folder)/Examples").map { .embedInCode("Examples/\($0)") },
        swiftSettings: swiftSettings)
}

/// Every card in RateCards/ (read by the EmbedRateCards build plugin, not as resources).
let rateCardFiles = files(in: "RateCards").filter { $0.hasSuffix(".yaml") }

let package = Package(
    name: "UsageBox",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "usagebox", targets: ["usagebox"]),
        .library(name: "Metering", targets: ["Metering"]),
        .library(name: "UsageBoxTesting", targets: ["UsageBoxTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries from Debian, each wrapped by exactly one Swift file.
        .systemLibrary(name: "CLibCSV", providers: [.apt(["libcsv-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        // One C function: sqlite3_config is variadic, which Swift cannot call (libsqlite3-dev).
        .target(name: "CSQLiteSettings", linkerSettings: [.linkedLibrary("sqlite3")]),

        // Format readers shared by event ingest and (later) invoice parsers.
        .target(name: "ExactJSON", swiftSettings: swiftSettings),
        .target(name: "FormatReaders", dependencies: ["CLibCSV", "CLibXML2"], swiftSettings: swiftSettings),

        // The metering core: events, validation, queries, the MeterStore protocol. No DB, no HTTP.
        .target(
            name: "Metering",
            dependencies: ["ExactJSON", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // What every backend hashes: the segment chain, the multiset hash of open segments, key secrets.
        .target(name: "SegmentChain", dependencies: ["Metering", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        // The embedded default backend: SQLite through GRDB, WAL.
        .target(
            name: "MeterStoreSQLite",
            dependencies: [
                "Metering", "ExactJSON", "SegmentChain", "CSQLiteSettings", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The backend for resellers who outgrow one machine: ClickHouse over its HTTP interface.
        .target(
            name: "MeterStoreClickHouse",
            dependencies: [
                "Metering", "ExactJSON", "SegmentChain", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The conformance suite every MeterStore backend must pass.
        .target(name: "UsageBoxTesting", dependencies: ["Metering", "ReconCore"], swiftSettings: swiftSettings),

        // Reconciliation: protocols, value types, rate cards, rules and the engine. No C, DB or HTTP.
        .target(
            name: "ReconCore",
            dependencies: [
                "Metering", "ExactJSON", "FormatReaders",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The rate cards: every RateCards/*.yaml, compiled in by the EmbedRateCards build plugin.
        .target(
            name: "RateCardData", path: "RateCards", exclude: ["README.md"] + rateCardFiles,
            swiftSettings: swiftSettings, plugins: [.plugin(name: "EmbedRateCards")]),
        .executableTarget(name: "embed-rate-cards", path: "BuildTools/embed-rate-cards"),
        .plugin(name: "EmbedRateCards", capability: .buildTool(), dependencies: ["embed-rate-cards"], path: "BuildTools/EmbedRateCards"),
        // The one immutable list of built-in plugins (Sources/ReconPlugins/BuiltInPlugins.swift).
        .target(name: "ReconPlugins", dependencies: ["ReconCore"] + vendorTargets.map { .target(name: $0.name) }, swiftSettings: swiftSettings),
    ] + vendorTargets + [

        // The pages a reviewer opens: the HTML report, the /ui/ index and account pages (Mustache).
        .target(
            name: "ReportPages",
            dependencies: ["ReconCore", "Metering", .product(name: "Mustache", package: "swift-mustache")],
            resources: [
                .embedInCode("Templates/page.mustache"), .embedInCode("Templates/report.mustache"),
                .embedInCode("Templates/index.mustache"), .embedInCode("Templates/account.mustache"),
                .embedInCode("Templates/login.mustache"), .embedInCode("Templates/error.mustache"),
            ],
            swiftSettings: swiftSettings
        ),

        // The composition root shared by the CLI and the server.
        .target(
            name: "UsageBoxApp",
            dependencies: [
                "Metering", "MeterStoreSQLite", "MeterStoreClickHouse", "MeterStoreHTTPClient", "UsageBoxServer", "FormatReaders",
                "ReconCore", "ReconPlugins", "RateCardData", "VendorAnthropic",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP API (Hummingbird 2) over any MeterStore and KeyStore.
        .target(
            name: "UsageBoxServer",
            dependencies: [
                "ReportPages", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                "Metering", "ExactJSON", "ReconCore", .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.embedInCode("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        // The MeterStore that talks to a running UsageBox over HTTP (the CLI's --server mode).
        .target(
            name: "MeterStoreHTTPClient",
            dependencies: [
                "Metering", "ExactJSON",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "usagebox",
            // Every module it imports, named: a module reached only through another is not rebuilt against when it changes.
            dependencies: [
                "ReportPages",
                "UsageBoxApp", "UsageBoxServer", "Metering", "ReconCore", "ExactJSON", "MeterStoreSQLite", "MeterStoreHTTPClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // The fuzz targets: a replayer in the ordinary build, libFuzzer entry points under scripts/fuzz.
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "usagebox-fuzz", dependencies: ["CFuzzDriver", "FormatReaders", "ExactJSON", "Metering", "ReconCore", "ReconPlugins"],
            swiftSettings: swiftSettings),

        // Parse throughput of the shared readers, for the benchmarks.
        .executableTarget(name: "usagebox-bench", dependencies: ["FormatReaders", "ExactJSON", "Metering", "UsageBoxApp"], swiftSettings: swiftSettings),

        .testTarget(name: "MeteringTests", dependencies: ["Metering", "FormatReaders", "ExactJSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ReconTests",
            dependencies: [
                "ReconCore", "ReconPlugins", "RateCardData", "FormatReaders", "ExactJSON", "Metering",
                "MeterStoreSQLite", "UsageBoxTesting", "UsageBoxApp", "ReportPages",
            ],
            exclude: ["FuzzFindings", "Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeterStoreClickHouseTests",
            dependencies: ["MeterStoreClickHouse", "Metering", "SegmentChain", "UsageBoxTesting", "UsageBoxApp"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeterStoreSQLiteTests",
            // UsageBoxApp: where the SQLite store is declared a ReconciliationLog (the composition root).
            dependencies: [
                "MeterStoreSQLite", "Metering", "SegmentChain", "UsageBoxTesting", "UsageBoxApp", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UsageBoxServerTests",
            dependencies: [
                .product(name: "HTTPTypes", package: "swift-http-types"),
                "ReportPages", "ReconCore", .product(name: "Prometheus", package: "swift-prometheus"),
                "UsageBoxServer", "UsageBoxApp", "Metering", "MeterStoreSQLite", "MeterStoreHTTPClient", "ExactJSON",
                "UsageBoxTesting", "usagebox",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UsageBoxCLITests",
            dependencies: ["UsageBoxApp", "Metering", "MeterStoreSQLite", "UsageBoxTesting", "usagebox"],
            swiftSettings: swiftSettings
        ),
    ]
)
