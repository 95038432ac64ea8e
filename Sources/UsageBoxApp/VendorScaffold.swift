import Foundation
public import Metering

/// Writes a new vendor plugin into a UsageBox checkout: the folder (plugin, example export,
/// README), its rate card, its `Package.swift` target, its registry line and its card registration.
/// The result builds at once, and the generic plugin test runs its example.
public enum VendorScaffold {
    public struct Names: Sendable {
        /// `Acme` → type prefix; `acme` → id.
        public var typeName: String
        public var id: String
        public init(_ raw: String) throws {
            let cleaned = raw.filter { $0.isLetter || $0.isNumber }
            guard let first = cleaned.first, first.isLetter, cleaned.count <= 40 else {
                throw UsageBoxError.invalidArgument("a vendor name is 1–40 letters and digits starting with a letter, got '\(raw)'", field: "name")
            }
            typeName = first.uppercased() + cleaned.dropFirst()
            id = cleaned.lowercased()
        }
    }

    /// Every file written or changed, for the user to review.
    public static func run(name: String, packageRoot: String) throws -> [String] {
        let n = try Names(name)
        let fm = FileManager.default
        let root = URL(fileURLWithPath: packageRoot)
        let manifest = root.appendingPathComponent("Package.swift")
        let registry = root.appendingPathComponent("Sources/ReconPlugins/BuiltInPlugins.swift")
        let cardData = root.appendingPathComponent("RateCards/RateCardData.swift")
        for f in [manifest, registry, cardData] where !fm.fileExists(atPath: f.path) {
            throw UsageBoxError.invalidArgument("\(packageRoot) is not a UsageBox checkout (no \(f.lastPathComponent))", field: "package_root")
        }
        let folder = root.appendingPathComponent("Plugins/\(n.typeName)")
        guard !fm.fileExists(atPath: folder.path) else {
            throw UsageBoxError(.conflict, "Plugins/\(n.typeName) already exists", field: "name")
        }
        var manifestText = try String(contentsOf: manifest, encoding: .utf8)
        var registryText = try String(contentsOf: registry, encoding: .utf8)
        var cardText = try String(contentsOf: cardData, encoding: .utf8)
        guard manifestText.contains(marker), registryText.contains("public let builtInPlugins: [any VendorPlugin.Type] = ["),
              cardText.contains("public static let cards: [String: String] = [") else {
            throw UsageBoxError(.conflict, "the registration points moved; add the plugin by hand (docs/adding-a-vendor.md)")
        }
        guard !registryText.contains("\(n.typeName)Plugin.self") else {
            throw UsageBoxError(.conflict, "\(n.typeName)Plugin is already registered", field: "name")
        }
        try fm.createDirectory(at: folder.appendingPathComponent("Examples"), withIntermediateDirectories: true)
        try plugin(n).write(to: folder.appendingPathComponent("\(n.typeName)Plugin.swift"), atomically: true, encoding: .utf8)
        try example(n).write(to: folder.appendingPathComponent("Examples/\(n.id)_example.csv"), atomically: true, encoding: .utf8)
        try "# \(n.typeName) plugin\n\nReads \(n.typeName)'s cost CSV (`date,model,token_type,amount_usd`). Written by `usagebox vendors scaffold`; edit the parser, the example and `RateCards/\(n.id).yaml` to match the real export.\n"
            .write(to: folder.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        try card(n).write(to: root.appendingPathComponent("RateCards/\(n.id).yaml"), atomically: true, encoding: .utf8)

        manifestText = manifestText.replacingOccurrences(of: marker, with: """
                    .target(
                        name: "Vendor\(n.typeName)",
                        dependencies: ["ReconCore", "Metering"],
                        path: "Plugins/\(n.typeName)",
                        exclude: ["README.md"],
                        resources: [.embedInCode("Examples/\(n.id)_example.csv")],
                        swiftSettings: swiftSettings
                    ),
            \(marker)
            """)
        manifestText = manifestText.replacingOccurrences(of: "name: \"ReconPlugins\", dependencies: [", with: "name: \"ReconPlugins\", dependencies: [\"Vendor\(n.typeName)\", ")
        manifestText = manifestText.replacingOccurrences(of: "resources: [.embedInCode(\"anthropic.yaml\"), ", with: "resources: [.embedInCode(\"anthropic.yaml\"), .embedInCode(\"\(n.id).yaml\"), ")
        try manifestText.write(to: manifest, atomically: true, encoding: .utf8)

        registryText = registryText.replacingOccurrences(of: "public let builtInPlugins: [any VendorPlugin.Type] = [",
                                                         with: "public let builtInPlugins: [any VendorPlugin.Type] = [\n    \(n.typeName)Plugin.self,")
        registryText = registryText.replacingOccurrences(of: "public import ReconCore\n", with: "public import ReconCore\nimport Vendor\(n.typeName)\n")
        try registryText.write(to: registry, atomically: true, encoding: .utf8)

        cardText = cardText.replacingOccurrences(of: "public static let cards: [String: String] = [", with: """
            public static let cards: [String: String] = [
                    "\(n.id)": String(decoding: PackageResources.\(n.id)_yaml, as: UTF8.self),
            """)
        try cardText.write(to: cardData, atomically: true, encoding: .utf8)
        return ["Plugins/\(n.typeName)/\(n.typeName)Plugin.swift", "Plugins/\(n.typeName)/Examples/\(n.id)_example.csv",
                "Plugins/\(n.typeName)/README.md", "RateCards/\(n.id).yaml", "Package.swift (target Vendor\(n.typeName))",
                "Sources/ReconPlugins/BuiltInPlugins.swift (registry line)", "RateCards/RateCardData.swift (card)"]
    }

    static let marker = "        // The one immutable list of built-in plugins."

    static func plugin(_ n: Names) -> String {
        """
        import Foundation
        import Metering
        import ReconCore

        /// \(n.typeName): reads its cost CSV (`date,model,token_type,amount_usd`). Generated by
        /// `usagebox vendors scaffold`; adapt the columns, the token-type map and the examples.
        public enum \(n.typeName)Plugin: VendorPlugin {
            public static let id = "\(n.id)"
            public static let name = "\(n.typeName)"
            public static let rateCardName = "\(n.id)"
            public static let parsers: [any InvoiceParser] = [\(n.typeName)CostCSVParser()]
            public static let tokenTypeMap: [String: TokenType] = ["input": .input, "output": .output, "cache_read": .cacheRead]

            public static let examples: [PluginExample] = [
                PluginExample(
                    name: "\(n.id): cost CSV",
                    file: InvoiceFile(name: "\(n.id)_example.csv", bytes: PackageResources.\(n.id)_example_csv), parserID: "cost-csv",
                    expectedLineCount: 3,
                    expectedAmounts: ["\(n.id)-large/input": "2.00", "\(n.id)-large/output": "4.00", "(not usage)": "0.50"],
                    reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
                    expectedVendorTokens: ["\(n.id)-large/input": 1_000_000, "\(n.id)-large/output": 500_000]),
                PluginExample(
                    name: "\(n.id): a non-number amount is refused",
                    file: InvoiceFile(name: "bad.csv", bytes: Array("date,model,token_type,amount_usd\\n2026-05-04,\(n.id)-large,input,abc\\n".utf8)),
                    parserID: "cost-csv", expectedError: "bad.csv:2: field 'amount_usd'"),
            ]
        }

        struct \(n.typeName)CostCSVParser: InvoiceParser {
            let id = "cost-csv"
            let format = InvoiceFormat.csv

            func sniff(_ file: InvoiceFile) -> Bool {
                file.headerLine?.hasPrefix("date,model,token_type,amount_usd") == true
            }

            /// The file states no period: the engine measures coverage by the span of its rows' days.
            func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
                let table = try CSVTable.read(file, required: [["date"], ["model"], ["amount_usd"]])
                return ParsedInvoice(lines: try table.rows.map { row in
                    guard let text = row.cell("amount_usd"), let amount = ExactDecimal.parse(text) else {
                        throw InvoiceError(file: file.name, line: row.line, field: "amount_usd", "'\\(row.cell("amount_usd") ?? "")' is not a decimal")
                    }
                    let tokenType = row.cell("token_type")
                    return InvoiceLine(
                        location: "\\(file.name):\\(row.line)", vendorModel: row.cell("model"), vendorTokenType: tokenType,
                        tokenType: tokenType.flatMap { \(n.typeName)Plugin.tokenTypeMap[$0] }, amount: amount,
                        amountScale: ExactDecimal.scale(of: text), currency: "USD", date: try row.timestamp(["date"], file: file.name),
                        nonUsageReason: row.cell("model") == nil ? "not_usage" : nil)
                })
            }
        }

        """
    }

    static func example(_ n: Names) -> String {
        "date,model,token_type,amount_usd\n2026-05-04,\(n.id)-large,input,2.00\n2026-05-04,\(n.id)-large,output,4.00\n2026-05-05,,,0.50\n"
    }

    static func card(_ n: Names) -> String {
        """
        # \(n.typeName) prices (USD per 1M tokens). Generated by `usagebox vendors scaffold`: replace with real prices and sources.
        schema: ratecard/v1
        vendor: \(n.id)
        currency: USD
        unit: per_million_tokens
        card_version: "0.1"
        sources:
          placeholder: {url: "https://example.com/\(n.id)/pricing", retrieved: "replace me"}
        changelog:
          - {version: "0.1", note: "scaffolded"}
        token_types: [input, output]
        models:
          \(n.id)-large:
            prices:
              - {from: "2026-01-01", rates: {input: "2", output: "8"}, src: [placeholder]}

        """
    }
}
