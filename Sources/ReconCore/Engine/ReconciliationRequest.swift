import ExactJSON
public import Foundation
public import Metering

/// A reconciliation as asked for: the HTTP API's JSON body, its query-string form, and what the
/// CLI builds from its flags. `resolve` is the one place options are checked and loaded.
///
/// ```json
/// {"vendor": "anthropic", "from": "2026-05-01", "to": "2026-06-01", "account_id": "acct_42",
///  "invoices": [{"name": "cost.json", "content_base64": "…"}], "rules_yaml": "…",
///  "account_map": {"wrkspc_01": "acct_42"}, "fx": {"EUR": "1.0842"}, "invoice_scope": "account"}
/// ```
public struct ReconciliationRequest: Codable, Sendable {
    public var vendor: String
    public var from: String
    public var to: String
    public var accountID: String?
    public var invoiceScope: InvoiceScope?
    public var invoices: [InvoiceFile]
    public var rulesYAML: String?
    /// The rules file's name, for the record (the CLI's path).
    public var rulesName: String?
    public var rateCardYAML: String?
    public var rateCardName: String?
    public var accountMap: [String: String]?
    public var modelMap: [String: String]?
    public var fx: [String: String]?
    public var meterID: String?
    public var deepVerify: Bool?
    public var allowDrift: Bool?
    public var allowOverlap: Bool?
    /// Run and answer without recording (what a reader key may do).
    public var dryRun: Bool?

    public init(vendor: String, from: String, to: String, accountID: String? = nil, invoices: [InvoiceFile]) {
        self.vendor = vendor
        self.from = from
        self.to = to
        self.accountID = accountID
        self.invoices = invoices
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case vendor, from, to, accountID = "account_id", invoiceScope = "invoice_scope", invoices, rulesYAML = "rules_yaml"
        case rulesName = "rules_name", rateCardYAML = "rate_card_yaml", rateCardName = "rate_card_name", accountMap = "account_map", modelMap = "model_map", fx
        case meterID = "meter_id", deepVerify = "deep_verify", allowDrift = "allow_drift", allowOverlap = "allow_overlap", dryRun = "dry_run"
    }

    public init(from decoder: any Decoder) throws {
        // A misspelt option must not be silently ignored: it would run a different reconciliation.
        let any = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        if let unknown = any.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw UsageBoxError.invalidArgument(
                "unknown field '\(unknown.stringValue)' (known: \(CodingKeys.allCases.map(\.stringValue).joined(separator: ", ")))",
                field: unknown.stringValue)
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vendor = try c.decode(String.self, forKey: .vendor)
        from = try c.decode(String.self, forKey: .from)
        to = try c.decode(String.self, forKey: .to)
        accountID = try c.decodeIfPresent(String.self, forKey: .accountID)
        invoiceScope = try c.decodeIfPresent(InvoiceScope.self, forKey: .invoiceScope)
        invoices = try c.decode([InvoiceFile].self, forKey: .invoices)
        rulesYAML = try c.decodeIfPresent(String.self, forKey: .rulesYAML)
        rulesName = try c.decodeIfPresent(String.self, forKey: .rulesName)
        rateCardYAML = try c.decodeIfPresent(String.self, forKey: .rateCardYAML)
        rateCardName = try c.decodeIfPresent(String.self, forKey: .rateCardName)
        accountMap = try c.decodeIfPresent([String: String].self, forKey: .accountMap)
        modelMap = try c.decodeIfPresent([String: String].self, forKey: .modelMap)
        fx = try c.decodeIfPresent([String: String].self, forKey: .fx)
        meterID = try c.decodeIfPresent(String.self, forKey: .meterID)
        deepVerify = try c.decodeIfPresent(Bool.self, forKey: .deepVerify)
        allowDrift = try c.decodeIfPresent(Bool.self, forKey: .allowDrift)
        allowOverlap = try c.decodeIfPresent(Bool.self, forKey: .allowOverlap)
        dryRun = try c.decodeIfPresent(Bool.self, forKey: .dryRun)
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// The JSON body form; errors name the field.
    public static func decode(json bytes: [UInt8]) throws -> ReconciliationRequest {
        // Read once through the exact parser first: Foundation's keeps one of two members of the
        // same name silently (`rules_yaml` twice ran the first), and names no place in the text.
        do {
            _ = try JSONParser.parse(bytes: bytes)
        } catch let e as JSONParseError {
            throw UsageBoxError.malformedBody(e)
        }
        do {
            return try JSONDecoder().decode(ReconciliationRequest.self, from: Data(bytes))
        } catch let e as UsageBoxError {
            throw e
        } catch let e as DecodingError {
            throw e.usageBoxError
        }
    }

    /// The simple form: options in the query string, the invoice file as the body.
    public static func fromParameters(_ value: (String) -> String?, invoice bytes: [UInt8]) throws -> ReconciliationRequest {
        guard let vendor = value("vendor") else { throw UsageBoxError.invalidArgument("vendor is required", field: "vendor") }
        guard let from = value("from") else { throw UsageBoxError.invalidArgument("'from' is required", field: "from") }
        guard let to = value("to") else { throw UsageBoxError.invalidArgument("'to' is required", field: "to") }
        guard !bytes.isEmpty else { throw UsageBoxError.invalidArgument("the body must be the invoice file", field: "body") }
        var r = ReconciliationRequest(
            vendor: vendor, from: from, to: to, accountID: value("account"),
            invoices: [InvoiceFile(name: value("name") ?? "invoice", bytes: bytes)])
        if let s = value("invoice_scope") {
            guard let scope = InvoiceScope(rawValue: s) else {
                throw UsageBoxError.invalidArgument("invoice_scope is account or as_given, got '\(s)'", field: "invoice_scope")
            }
            r.invoiceScope = scope
        }
        r.meterID = value("meter_id")
        func flag(_ name: String) throws -> Bool? {
            switch value(name) {
            case nil: return nil
            case "true"?: return true
            case "false"?: return false
            case let v?: throw UsageBoxError.invalidArgument("\(name) is true or false, got '\(v)'", field: name)
            }
        }
        r.deepVerify = try flag("deep_verify")
        r.allowDrift = try flag("allow_drift")
        r.allowOverlap = try flag("allow_overlap")
        r.dryRun = try flag("dry_run")
        return r
    }

    /// Checks and loads every option: the period, rules, rate card, account map and FX rates.
    public func resolve(scope: AccountScope, runBy: String) throws -> ReconciliationOptions {
        guard !invoices.isEmpty else { throw UsageBoxError.invalidArgument("name at least one invoice file", field: "invoices") }
        // Names are repeated in the report (every unmapped line, every finding's classifier): a
        // 2 MiB name on 300 lines took a server past a gigabyte. 400,001 empty files took 900 MB.
        guard invoices.count <= Self.maxInvoices else {
            throw UsageBoxError.invalidArgument("at most \(Self.maxInvoices) invoice files in one run, got \(invoices.count)", field: "invoices")
        }
        for (i, f) in invoices.enumerated() { try Self.checkName(f.name, field: "invoices[\(i)].name") }
        // A name without its text was dropped without a word: the run used the defaults alone.
        for (name, text, field, textField) in [
            (rulesName, rulesYAML, "rules_name", "rules_yaml"), (rateCardName, rateCardYAML, "rate_card_name", "rate_card_yaml"),
        ] {
            guard let name else { continue }
            try Self.checkName(name, field: field)
            guard text != nil else {
                throw UsageBoxError.invalidArgument("\(field) names the \(textField) sent with it, and none was sent", field: field)
            }
        }
        var o = ReconciliationOptions(
            vendor: vendor, invoices: invoices, range: try Self.period(from: from, to: to), account: accountID,
            invoiceScope: invoiceScope ?? .asGiven, scope: scope, runBy: runBy)
        if let account = accountID, !EventDecoder.isValidIdentifier(account) {
            throw UsageBoxError.invalidArgument("'\(account)' is not a valid account id", field: "account_id")
        }
        if o.invoiceScope == .account, accountID == nil {
            throw UsageBoxError.invalidArgument("invoice_scope account needs the account the invoice belongs to", field: "invoice_scope")
        }
        if let text = rulesYAML {
            o.teamRules = try Self.config("rules_yaml") { try ClassificationRules.load(text: text, file: rulesName ?? "rules_yaml") }
        }
        if let text = rateCardYAML {
            o.rateCard = try Self.config("rate_card_yaml") { try RateCard.load(text: text, file: rateCardName ?? "rate_card_yaml") }
        }
        for (key, account) in accountMap ?? [:] {
            guard EventDecoder.isValidIdentifier(account) else {
                throw UsageBoxError.invalidArgument("account_map: '\(account)' (for \(key)) is not a valid account id", field: "account_map")
            }
        }
        o.accountMap = accountMap ?? [:]
        o.modelMap = modelMap ?? [:]
        o.fx = try Self.fxRates(fx ?? [:])
        o.meterID = meterID
        o.deepVerify = deepVerify ?? false
        o.allowDrift = allowDrift ?? false
        o.allowOverlap = allowOverlap ?? false
        return o
    }

    public static let maxInvoices = 10_000
    public static let maxNameLength = 1_024

    /// A file's name as the report shows it: not empty, a path's length at most, no control characters.
    static func checkName(_ name: String, field: String) throws {
        let problem =
            name.isEmpty
            ? "is empty"
            : name.unicodeScalars.count > maxNameLength
                ? "has \(name.unicodeScalars.count) characters"
                : name.unicodeScalars.contains(where: EventDecoder.isControl) ? "holds a control character" : nil
        if let problem {
            throw UsageBoxError.invalidArgument(
                "a file name is 1 to \(maxNameLength) characters without control characters; this one \(problem)", field: field)
        }
    }

    public static func config<T>(_ field: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ConfigError { throw UsageBoxError.invalidArgument(e.description, field: field) }
    }

    /// `{"EUR": "1.0842"}`: units of the card's currency per unit of each other currency.
    public static func fxRates(_ rates: [String: String]) throws -> [String: Decimal] {
        var out: [String: Decimal] = [:]
        for (currency, text) in rates {
            guard currency.count == 3, currency.allSatisfy(\.isLetter), let rate = ExactDecimal.parse(text), rate > 0 else {
                throw UsageBoxError.invalidArgument(
                    "fx takes a three-letter currency and an exact decimal rate above 0 (EUR=1.0842); got \(currency)=\(text)", field: "fx")
            }
            // `EUR` and `eur` are one currency: two rates for it were taken in dictionary order,
            // so the same request corrected on some runs and not on others.
            // The same rate twice says one thing: taken.
            guard out.updateValue(rate, forKey: currency.uppercased()).map({ $0 == rate }) ?? true else {
                throw UsageBoxError.invalidArgument("fx gives \(currency.uppercased()) twice (in two spellings): give each currency one rate", field: "fx")
            }
        }
        return out
    }

    /// `--fx EUR=1.0842` values.
    public static func fxRates(flags: [String]) throws -> [String: Decimal] {
        var pairs: [String: String] = [:]
        for v in flags {
            let parts = v.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw UsageBoxError.invalidArgument("--fx takes CUR=RATE with an exact decimal rate, e.g. EUR=1.0842; got '\(v)'", field: "fx")
            }
            guard pairs.updateValue(parts[1], forKey: parts[0]).map({ ExactDecimal.parse($0) == ExactDecimal.parse(parts[1]) }) ?? true else {
                throw UsageBoxError.invalidArgument("--fx gives \(parts[0]) twice: give each currency one rate", field: "fx")
            }
        }
        return try fxRates(pairs)
    }

    /// The period `[from, to)`. A date means that day at 00:00 UTC; a timestamp must be in UTC,
    /// because vendors bucket usage by UTC day and a local offset would cut every bucket in two.
    public static func period(from: String, to: String) throws -> TimeRange {
        try TimeRange(from: bound(from, "from"), to: bound(to, "to"))
    }

    static func bound(_ text: String, _ field: String) throws -> Timestamp {
        if let day = Timestamp(date: text) { return day }
        guard let t = Timestamp(rfc3339: text) else {
            throw UsageBoxError.invalidArgument("'\(field)' is neither a date (2026-06-01) nor an RFC 3339 timestamp: \(text)", field: field)
        }
        let offset = text.suffix(6)
        let utc = text.hasSuffix("Z") || text.hasSuffix("z") || offset == "+00:00" || offset == "-00:00"
        guard utc else {
            throw UsageBoxError.invalidArgument(
                "'\(field)' has the offset \(offset): vendors bucket usage by UTC day, so a local offset would split every bucket; "
                    + "write the same instant in UTC (\(t.rfc3339)), or the UTC day meant as a date (\(text.prefix(10)))", field: field)
        }
        return t
    }
}

extension InvoiceFile: Codable {
    enum CodingKeys: String, CodingKey { case name, contentBase64 = "content_base64" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .name)
        let text = try c.decode(String.self, forKey: .contentBase64)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorruptedError(forKey: .contentBase64, in: c, debugDescription: "\(name): content_base64 is not base64")
        }
        self.init(name: name, bytes: Array(data))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(Data(bytes).base64EncodedString(), forKey: .contentBase64)
    }
}

extension DecodingError {
    /// A decoding failure as the API's 400, naming the field by its path (`invoices[0].content_base64`).
    public var usageBoxError: UsageBoxError {
        func path(_ keys: [any CodingKey]) -> String {
            keys.reduce("") { out, key in
                if let i = key.intValue { return out + "[\(i)]" }
                return out.isEmpty ? key.stringValue : out + "." + key.stringValue
            }
        }
        switch self {
        case let .keyNotFound(key, ctx):
            let field = path(ctx.codingPath + [key])
            return .invalidArgument("\(field) is required", field: field)
        case let .typeMismatch(type, ctx):
            let field = path(ctx.codingPath)
            return .invalidArgument("\(field.isEmpty ? "the body" : field) must be \(Self.name(type))", field: field.isEmpty ? "body" : field)
        case let .valueNotFound(type, ctx):
            let field = path(ctx.codingPath)
            return .invalidArgument("\(field) must be \(Self.name(type)), not null", field: field)
        case let .dataCorrupted(ctx):
            let field = path(ctx.codingPath)
            return .invalidArgument(
                field.isEmpty ? "the body is not valid JSON: \(ctx.debugDescription)" : "\(field): \(ctx.debugDescription)",
                field: field.isEmpty ? "body" : field)
        @unknown default:
            return .invalidArgument("the body could not be read", field: "body")
        }
    }

    static func name(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is [InvoiceFile].Type: return "a list of {name, content_base64}"
        case is [String: String].Type: return "an object of strings"
        default: return "\(type)"
        }
    }
}
