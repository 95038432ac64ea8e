/// A vendor: its parsers, its rate card, its token-type names, and its examples.
///
/// Each plugin is one folder under `Plugins/` (which `Package.swift` makes a target), its card in
/// `RateCards/`, and one line in `Sources/ReconPlugins/BuiltInPlugins.swift`. Its examples
/// (sample exports with the lines they must give) run in the generic plugin test with no new test
/// code. `usagebox vendors scaffold Acme` writes a complete one.
///
/// ```swift
/// public enum AcmePlugin: VendorPlugin {
///     public static let id = "acme"
///     public static let name = "Acme"
///     public static let rateCardName = "acme"                       // RateCards/acme.yaml
///     public static let parsers: [any InvoiceParser] = [AcmeCostCSVParser()]
///     public static let tokenTypeMap: [String: TokenType] = ["prompt": .input, "completion": .output]
///     public static let examples: [PluginExample] = [
///         PluginExample(name: "acme: cost CSV", file: InvoiceFile(name: "acme.csv", bytes: PackageResources.acme_csv),
///                       parserID: "cost-csv", expectedLineCount: 3, expectedAmounts: ["acme-large/input": "2.00"]),
///     ]
/// }
/// ```
public protocol VendorPlugin: Sendable {
    /// Unique, lowercase (`anthropic`, `aws-bedrock`).
    static var id: String { get }
    /// Human name (`Anthropic`).
    static var name: String { get }
    static var parsers: [any InvoiceParser] { get }
    /// The name of its card in `RateCards/` (usually the id).
    static var rateCardName: String { get }
    /// Vendor token-type names → canonical token types.
    static var tokenTypeMap: [String: TokenType] { get }
    static var examples: [PluginExample] { get }
    /// Names that may identify the card to use for these lines (a UBL supplier's name): the
    /// engine uses a card whose vendor id one of them contains, when no card was named.
    static func cardHints(for lines: [InvoiceLine]) -> [String]
    /// Classifiers that know this vendor's gaps, asked before a team's rules and the defaults.
    static var classifiers: [any GapClassifier] { get }
    /// Attribution keys that name a separate tenant of the vendor account (a workspace, a project,
    /// a linked account), unlike keys one customer holds many of (API keys, IAM users, resources):
    /// an invoice naming several, or some lines without one, is an organisation's bill.
    static var tenantKeys: Set<String> { get }
    /// How a multi-provider export (FOCUS `ProviderName`, lowercased) names this vendor
    /// (`microsoft` for Azure OpenAI): usage metered under this plugin's id is then that line's.
    static var providerNames: Set<String> { get }
}

extension VendorPlugin {
    public static func cardHints(for lines: [InvoiceLine]) -> [String] { [] }
    public static var classifiers: [any GapClassifier] { [] }
    public static var tenantKeys: Set<String> { [] }
    public static var providerNames: Set<String> { [] }
}

/// A sample export and what parsing it must give: documentation and test data at once.
public struct PluginExample: Sendable, CustomStringConvertible {
    public var name: String
    public var file: InvoiceFile
    /// The parser expected to claim the file by sniffing.
    public var parserID: String
    public var expectedLineCount: Int
    /// Expected totals per canonical model × token type (amount in the invoice currency).
    public var expectedAmounts: [String: String]
    /// Expected stated quantities per model × token type, where the export states them.
    public var expectedQuantities: [String: Int64]
    /// For a negative example: text the error message must contain.
    public var expectedError: String?
    /// An end-to-end check: reconciled over `period` against a meter holding each expected vendor
    /// quantity (`model/token_type` → tokens), every gap must be 0.
    public var reconcilePeriod: (from: String, to: String)?
    public var expectedVendorTokens: [String: Int64]
    /// In the end-to-end run: what is left unmapped, as reason → total amount (`no_rate_for_tier`: "3").
    public var expectedUnmapped: [String: String]
    /// In the end-to-end run: the model id the meter writes for a canonical model, when it differs
    /// (`claude-sonnet-4-6` → `us.anthropic.claude-sonnet-4-6-v1:0`).
    public var meterModelIDs: [String: String]

    public init(
        name: String, file: InvoiceFile, parserID: String, expectedLineCount: Int = 0,
        expectedAmounts: [String: String] = [:], expectedQuantities: [String: Int64] = [:], expectedError: String? = nil,
        reconcilePeriod: (from: String, to: String)? = nil, expectedVendorTokens: [String: Int64] = [:],
        expectedUnmapped: [String: String] = [:], meterModelIDs: [String: String] = [:]
    ) {
        self.name = name
        self.file = file
        self.parserID = parserID
        self.expectedLineCount = expectedLineCount
        self.expectedAmounts = expectedAmounts
        self.expectedQuantities = expectedQuantities
        self.expectedError = expectedError
        self.reconcilePeriod = reconcilePeriod
        self.expectedVendorTokens = expectedVendorTokens
        self.expectedUnmapped = expectedUnmapped
        self.meterModelIDs = meterModelIDs
    }

    public var description: String { name }
}

/// The one immutable list of plugins the engine, CLI and server are given.
public struct PluginRegistry: Sendable {
    public let plugins: [any VendorPlugin.Type]

    /// Fails loudly on duplicate ids.
    public init(_ plugins: [any VendorPlugin.Type]) throws {
        var seen = Set<String>()
        for p in plugins {
            guard seen.insert(p.id).inserted else {
                throw RegistryError(message: "two vendor plugins share the id '\(p.id)'")
            }
        }
        self.plugins = plugins.sorted { $0.id < $1.id }
    }

    public func plugin(_ id: String) -> (any VendorPlugin.Type)? { plugins.first { $0.id == id } }

    /// Every plugin and parser that claims a file, by sniffing every parser of every plugin.
    public func claims(_ file: InvoiceFile) -> [(plugin: any VendorPlugin.Type, parser: any InvoiceParser)] {
        var out: [(plugin: any VendorPlugin.Type, parser: any InvoiceParser)] = []
        for p in plugins {
            for parser in p.parsers where parser.sniff(file) { out.append((p, parser)) }
        }
        return out
    }

    /// The one plugin and parser that claim a file; nil when none does, and an error naming them
    /// when several plugins do (their formats look alike: the caller must name the vendor).
    public func sniff(_ file: InvoiceFile) throws -> (any VendorPlugin.Type, any InvoiceParser)? {
        let found = claims(file)
        let vendors = Array(Set(found.map { $0.plugin.id })).sorted()
        guard vendors.count <= 1 else {
            throw RegistryError(message: "\(file.name) looks like an export of several vendors (\(vendors.joined(separator: ", "))); name the vendor")
        }
        return found.first.map { ($0.plugin, $0.parser) }
    }

    public struct RegistryError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
