import Foundation
public import Metering
import ReconCore
import ReconPlugins

/// Writes a new vendor plugin into a UsageBox checkout: the folder (plugin, example export,
/// README), its rate card and its registry line — Package.swift and the card embedding derive the rest.
/// The result builds at once, and the generic plugin test runs its example.
public enum VendorScaffold {
    public struct Names: Sendable {
        /// `Acme` → type prefix; `acme` → id.
        public var typeName: String
        public var id: String
        public init(_ raw: String) throws {
            // As said, not cleaned: `../evil` became `Evil`, `ßeta` a type `SSeta` with id `ßeta`.
            guard let first = raw.first, first.isASCII, first.isLetter, raw.count <= 40,
                raw.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
            else {
                throw UsageBoxError.invalidArgument(
                    "a vendor name is 1–40 ASCII letters and digits starting with a letter, got '\(raw)'", field: "name")
            }
            typeName = first.uppercased() + raw.dropFirst()
            id = raw.lowercased()
            // `Plugin` makes the module `VendorPlugin` and `Vendor` the type `VendorPlugin`: either
            // shadows the protocol every plugin conforms to, and the package would not build.
            guard !["plugin", "vendor"].contains(id) else {
                throw UsageBoxError.invalidArgument(
                    "'\(raw)' would name the module or type VendorPlugin, the plugin protocol's name; choose another", field: "name")
            }
        }
    }

    /// The one file listing the built-in plugins.
    static let registryFile = "Sources/ReconPlugins/BuiltInPlugins.swift"

    /// Every file written or changed, for the user to review.
    public static func run(name: String, packageRoot: String) throws -> [String] {
        let n = try Names(name)
        let fm = FileManager.default
        let root = URL(fileURLWithPath: packageRoot)
        let registry = root.appendingPathComponent(registryFile)
        for f in [root.appendingPathComponent("Package.swift"), registry] where !fm.fileExists(atPath: f.path) {
            throw UsageBoxError.invalidArgument("\(packageRoot) is not a UsageBox checkout (no \(f.lastPathComponent))", field: "package_root")
        }
        let folder = root.appendingPathComponent("Plugins/\(n.typeName)")
        // Any case: `Openai` beside `OpenAI` registered a second id `openai` (the binary would not
        // start) and wrote over the shipped card.
        let folders = (try? fm.contentsOfDirectory(atPath: root.appendingPathComponent("Plugins").path)) ?? []
        if let taken = folders.first(where: { $0.lowercased() == n.typeName.lowercased() }) {
            throw UsageBoxError(.conflict, "Plugins/\(taken) already exists", field: "name")
        }
        if let known = builtInPlugins.first(where: { $0.id == n.id || $0.rateCardName == n.id }) {
            throw UsageBoxError(.conflict, "'\(n.id)' is the id or card of the registered plugin \(known.id); choose another name", field: "name")
        }
        let cardFile = root.appendingPathComponent("RateCards/\(n.id).yaml")
        guard !fm.fileExists(atPath: cardFile.path) else {
            throw UsageBoxError(.conflict, "RateCards/\(n.id).yaml already exists; choose another name or move the card", field: "name")
        }
        var registryText = try String(contentsOf: registry, encoding: .utf8)
        guard let list = registryText.range(of: "public let builtInPlugins: [any VendorPlugin.Type] = [\n"),
            let close = registryText.range(of: "\n]", range: list.upperBound..<registryText.endIndex)
        else {
            throw UsageBoxError(
                .conflict, "the registration points of \(registryFile) moved; add the plugin there by hand (docs/adding-a-vendor.md); nothing was written")
        }
        let entries = registryText[list.upperBound..<close.lowerBound].split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !entries.contains("\(n.typeName)Plugin.self,") else {
            throw UsageBoxError(.conflict, "\(n.typeName)Plugin is already registered", field: "name")
        }
        try fm.createDirectory(at: folder.appendingPathComponent("Examples"), withIntermediateDirectories: true)
        try plugin(n).write(to: folder.appendingPathComponent("\(n.typeName)Plugin.swift"), atomically: true, encoding: .utf8)
        try example(n).write(to: folder.appendingPathComponent("Examples/\(n.id)_example.csv"), atomically: true, encoding: .utf8)
        try readme(n).write(to: folder.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        try card(n).write(to: cardFile, atomically: true, encoding: .utf8)

        // Package.swift makes every folder under Plugins/ a target, and the build embeds every card
        // in RateCards/: the registry line is the only edit, in order (the list sorted by id, the
        // imports as swift-format's OrderedImports sorts them, byte order).
        registryText = Self.registering(
            n, in: registryText, entries: entries, listStart: list.upperBound, listEnd: close.lowerBound, ids: Self.pluginIDs(root))
        try registryText.write(to: registry, atomically: true, encoding: .utf8)

        return [
            "Plugins/\(n.typeName)/\(n.typeName)Plugin.swift", "Plugins/\(n.typeName)/Examples/\(n.id)_example.csv",
            "Plugins/\(n.typeName)/README.md", "RateCards/\(n.id).yaml",
            "\(registryFile) (registry line)",
        ]
    }

    /// Each plugin type's id as the checkout's own files say (`HbPlugin` scaffolded a moment ago
    /// and not built yet is in no binary), else as this binary has it.
    static func pluginIDs(_ root: URL) -> [String: String] {
        var ids = Dictionary(builtInPlugins.map { (String(describing: $0), $0.id) }, uniquingKeysWith: { a, _ in a })
        let fm = FileManager.default
        let plugins = root.appendingPathComponent("Plugins")
        for folder in (try? fm.contentsOfDirectory(atPath: plugins.path)) ?? [] {
            for file in (try? fm.contentsOfDirectory(atPath: plugins.appendingPathComponent(folder).path)) ?? [] where file.hasSuffix(".swift") {
                guard let text = try? String(contentsOf: plugins.appendingPathComponent("\(folder)/\(file)"), encoding: .utf8),
                    let type = text.firstMatch(of: /(?:enum|struct|class)\s+(\w+)\s*:[^{]*\bVendorPlugin\b/)?.1,
                    let id = text.firstMatch(of: /static let id(?:\s*:\s*String)?\s*=\s*"([^"]+)"/)?.1
                else { continue }
                ids[String(type)] = String(id)
            }
        }
        return ids
    }

    static func registering(
        _ n: Names, in text: String, entries: [String], listStart: String.Index, listEnd: String.Index, ids: [String: String]
    ) -> String {
        let idOf = Dictionary(ids.map { ("\($0.key).self,", $0.value) }, uniquingKeysWith: { a, _ in a })
        var list = entries
        let at = list.firstIndex { idOf[$0].map { $0 > n.id } ?? false } ?? list.count
        list.insert("\(n.typeName)Plugin.self,", at: at)
        var out = String(text[..<listStart]) + list.map { "    " + $0 }.joined(separator: "\n") + String(text[listEnd...])
        var lines = out.components(separatedBy: "\n")
        let imports = lines.indices.filter { lines[$0].hasPrefix("import Vendor") }
        if let first = imports.first, let last = imports.last {
            var sorted = imports.map { lines[$0] } + ["import Vendor\(n.typeName)"]
            sorted.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            lines.replaceSubrange(first...last, with: sorted)
        } else if let core = lines.firstIndex(of: "public import ReconCore") {
            lines.insert("import Vendor\(n.typeName)", at: core + 1)
        }
        out = lines.joined(separator: "\n")
        return out
    }

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
                return ParsedInvoice(
                    lines: try table.rows.map { row in
                        guard let text = row.cell("amount_usd"), let amount = ExactDecimal.parse(text) else {
                            throw InvoiceError(file: file.name, line: row.line, field: "amount_usd", ExactDecimal.refusal(row.cell("amount_usd") ?? ""))
                        }
                        let tokenType = row.cell("token_type")
                        return InvoiceLine(
                            location: "\\(file.name):\\(row.line)", vendorModel: row.cell("model"), vendorTokenType: tokenType,
                            tokenType: tokenType.flatMap { \(n.typeName)Plugin.tokenTypeMap[$0] }, amount: amount,
                            amountScale: ExactDecimal.scale(of: text), currency: "USD", date: try row.timestamp(["date"], file: file.name),
                            // A row naming neither model nor token type (a fee) is not usage; one
                            // naming a token type but no model is some model's usage: kept as usage,
                            // the engine holds downward corrections (`unplaced_vendor_usage`).
                            nonUsageReason: row.cell("model") == nil && tokenType == nil ? "not_usage:other" : nil
                        ).withSourceRow(row.fingerprint)  // the whole row: a row listed twice is refused, not billed twice
                    })
            }
        }

        """
    }

    /// What the plugin reads, what its samples cover and what it does not read yet (Plugins/README.md).
    static func readme(_ n: Names) -> String {
        "# \(n.typeName) plugin\n\nReads \(n.typeName)'s cost CSV (`date,model,token_type,amount_usd`). Written by `usagebox vendors scaffold`; edit the parser, the example and `RateCards/\(n.id).yaml` to match the real export.\n\n"
            + "## What its samples cover\n\n`Examples/\(n.id)_example.csv`: one model's input and output on one day, and a row naming neither (a fee, not usage).\n\n"
            + "## What it does not read yet\n\nEverything the real export has beyond those four columns: say here what you left out, and why.\n"
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
        token_types: [input, output, cache_read]
        models:
          \(n.id)-large:
            prices:
              - {from: "2026-01-01", rates: {input: "2", output: "8", cache_read: "0.2"}, src: [placeholder]}

        """
    }
}
