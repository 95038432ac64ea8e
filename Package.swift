// swift-tools-version:6.0
import PackageDescription

/// One set of settings for every target: Swift 6 mode, explicit `any`.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

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
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries from Debian, each wrapped by exactly one Swift file.
        .systemLibrary(name: "CLibCSV", providers: [.apt(["libcsv-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),

        // Format readers shared by event ingest and (later) invoice parsers.
        .target(name: "ExactJSON", swiftSettings: swiftSettings),
        .target(name: "FormatReaders", dependencies: ["CLibCSV", "CLibXML2"], swiftSettings: swiftSettings),

        // The metering core: events, validation, queries, the MeterStore protocol. No DB, no HTTP.
        .target(
            name: "Metering",
            dependencies: ["ExactJSON"],
            swiftSettings: swiftSettings
        ),
        // The embedded default backend: SQLite through GRDB, WAL.
        .target(
            name: "MeterStoreSQLite",
            dependencies: ["Metering", "ExactJSON", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "GRDBSQLite", package: "GRDB.swift"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The conformance suite every MeterStore backend must pass.
        .target(name: "UsageBoxTesting", dependencies: ["Metering"], swiftSettings: swiftSettings),

        // Reconciliation: protocols, value types, rate cards, rules and the engine. No C, DB or HTTP.
        .target(
            name: "ReconCore",
            dependencies: ["Metering", "ExactJSON", "FormatReaders",
                           .product(name: "Yams", package: "Yams"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The rate cards, compiled into the binary so it finds them from any working directory.
        .target(
            name: "RateCardData",
            path: "RateCards",
            exclude: ["README.md"],
            resources: [.embedInCode("anthropic.yaml"), .embedInCode("focus.yaml"), .embedInCode("ubl.yaml"), .embedInCode("openai.yaml"),
                        .embedInCode("aws-bedrock.yaml"), .embedInCode("azure-openai.yaml"), .embedInCode("google-vertex.yaml")],
            swiftSettings: swiftSettings
        ),
        // Vendor plugins: one folder each, never depending on each other or on a store.
        .target(
            name: "VendorAnthropic",
            dependencies: ["ReconCore", "FormatReaders", "ExactJSON", "Metering"],
            path: "Plugins/Anthropic",
            exclude: ["README.md"],
            resources: [
                .embedInCode("Examples/cost_report_2026_05.json"),
                .embedInCode("Examples/console_cost_2026_08.csv"),
                .embedInCode("Examples/usage_report_2026_05.json"),
                .embedInCode("Examples/cost_report_truncated.json"),
                .embedInCode("Examples/console_cost_bad_amount.csv"),
                .embedInCode("Examples/cost_report_tiers_2026_05.json"),
                .embedInCode("Examples/console_cost_discount_2026_05.csv"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VendorFOCUS",
            dependencies: ["ReconCore", "FormatReaders", "ExactJSON", "Metering"],
            path: "Plugins/FOCUS",
            exclude: ["README.md"],
            resources: [.embedInCode("Examples/focus_ai_usage.csv"), .embedInCode("Examples/focus_bad_quantity.csv"),
                        .embedInCode("Examples/focus_corrections.csv")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VendorUBL",
            dependencies: ["ReconCore", "FormatReaders", "Metering"],
            path: "Plugins/UBL",
            exclude: ["README.md"],
            resources: [.embedInCode("Examples/ubl_ai_invoice.xml"), .embedInCode("Examples/ubl_truncated.xml")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VendorOpenAI",
            dependencies: ["ReconCore", "ExactJSON", "Metering"],
            path: "Plugins/OpenAI",
            exclude: ["README.md"],
            resources: [.embedInCode("Examples/openai_costs_2026_05.json"), .embedInCode("Examples/openai_usage_2026_05.json"),
                        .embedInCode("Examples/openai_cost_export.csv"), .embedInCode("Examples/openai_costs_bad.json"),
                        .embedInCode("Examples/openai_costs_tiers_2026_05.json"), .embedInCode("Examples/openai_usage_cache_writes.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VendorAWSBedrock",
            dependencies: ["ReconCore", "Metering"],
            path: "Plugins/AWSBedrock",
            exclude: ["README.md"],
            resources: [.embedInCode("Examples/cur2_2026_05.csv"), .embedInCode("Examples/cur_legacy.csv"),
                        .embedInCode("Examples/cur_wrong_columns.csv"), .embedInCode("Examples/cur2_profiles_2026_05.csv")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VendorAzureOpenAI",
            dependencies: ["ReconCore", "Metering"],
            path: "Plugins/AzureOpenAI",
            exclude: ["README.md"],
            resources: [.embedInCode("Examples/azure_cost_details.csv"), .embedInCode("Examples/azure_bad_quantity.csv"),
                        .embedInCode("Examples/azure_eur_billing.csv")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VendorGoogleVertex",
            dependencies: ["ReconCore", "ExactJSON", "Metering"],
            path: "Plugins/GoogleVertex",
            exclude: ["README.md"],
            resources: [.embedInCode("Examples/vertex_export.json"), .embedInCode("Examples/vertex_export.csv"),
                        .embedInCode("Examples/vertex_truncated.json"), .embedInCode("Examples/vertex_export_eur.json")],
            swiftSettings: swiftSettings
        ),
        // The one immutable list of built-in plugins.
        .target(name: "ReconPlugins", dependencies: ["ReconCore", "VendorAnthropic", "VendorFOCUS", "VendorUBL", "VendorOpenAI",
                                                 "VendorAWSBedrock", "VendorAzureOpenAI", "VendorGoogleVertex"],
                swiftSettings: swiftSettings),

        // The composition root shared by the CLI and the server.
        .target(
            name: "UsageBoxApp",
            dependencies: ["Metering", "MeterStoreSQLite", "MeterStoreHTTPClient", "UsageBoxServer", "FormatReaders",
                           "ReconCore", "ReconPlugins", "RateCardData", "VendorAnthropic",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The HTTP API (Hummingbird 2) over any MeterStore and KeyStore.
        .target(
            name: "UsageBoxServer",
            dependencies: ["Metering", "ExactJSON", "ReconCore",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Yams", package: "Yams")],
            resources: [.embedInCode("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        // The MeterStore that talks to a running UsageBox over HTTP (the CLI's --server mode).
        .target(
            name: "MeterStoreHTTPClient",
            dependencies: ["Metering", "ExactJSON",
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "usagebox",
            // Every module it imports, named: a module reached only through another is not rebuilt against when it changes.
            dependencies: ["UsageBoxApp", "UsageBoxServer", "Metering", "ReconCore", "ExactJSON", "MeterStoreSQLite", "MeterStoreHTTPClient",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // The fuzz targets: a replayer in the ordinary build, libFuzzer entry points under scripts/fuzz.
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "usagebox-fuzz", dependencies: ["CFuzzDriver", "FormatReaders", "ExactJSON", "Metering", "ReconCore", "ReconPlugins"],
                          swiftSettings: swiftSettings),

        // Parse throughput of the shared readers, for the benchmarks.
        .executableTarget(name: "usagebox-bench", dependencies: ["FormatReaders", "ExactJSON", "Metering", "UsageBoxApp"], swiftSettings: swiftSettings),

        .testTarget(name: "MeteringTests", dependencies: ["Metering", "FormatReaders", "ExactJSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ReconTests",
            dependencies: ["ReconCore", "ReconPlugins", "RateCardData", "FormatReaders", "ExactJSON", "Metering",
                           "MeterStoreSQLite", "UsageBoxTesting", "UsageBoxApp"],
            exclude: ["FuzzFindings"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeterStoreSQLiteTests",
            dependencies: ["MeterStoreSQLite", "Metering", "UsageBoxTesting", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UsageBoxServerTests",
            dependencies: ["UsageBoxServer", "UsageBoxApp", "Metering", "MeterStoreSQLite", "MeterStoreHTTPClient", "ExactJSON",
                           "UsageBoxTesting", "usagebox",
                           .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UsageBoxCLITests",
            dependencies: ["UsageBoxApp", "Metering", "UsageBoxTesting", "usagebox"],
            swiftSettings: swiftSettings
        ),
    ]
)
