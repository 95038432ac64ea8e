import ExactJSON
import Foundation
import Metering
import ReconCore

/// FinOps FOCUS cost and usage CSV (1.0 to the AI-billing examples), from any provider. Token
/// counts come from `ConsumedQuantity` (stated quantities, so no rate card is needed); model and
/// token direction / cache action from the JSON in `SkuPriceDetails`; money from `BilledCost`,
/// with `ListCost` and `EffectiveCost` kept beside it. Only `ChargeCategory = Usage` is usage. A file
/// `usagebox export focus` wrote carries `x_TokenType`, the canonical token type, which wins.
public enum FOCUSPlugin: VendorPlugin {
    public static let id = "focus"
    public static let name = "FinOps FOCUS"
    public static let rateCardName = "focus"
    /// Billing accounts too: an export of two with no sub-accounts was taken as one account's.
    public static let tenantKeys: Set<String> = ["SubAccountId", "BillingAccountId"]
    public static let parsers: [any InvoiceParser] = [FOCUSParser()]
    public static let tokenTypeMap: [String: TokenType] = [
        "input/uncached": .input, "input/": .input, "input/read": .cacheRead, "input/write": .cacheWrite, "output/": .output,
        "output/uncached": .output, "input/none": .input, "output/none": .output,
    ]

    public static let examples: [PluginExample] = [
        PluginExample(
            name: "focus: AI usage with cache reads and writes, tax and a credit",
            file: InvoiceFile(name: "focus_ai_usage.csv", bytes: PackageResources.focus_ai_usage_csv), parserID: "focus-csv",
            expectedLineCount: 6,
            expectedAmounts: [
                "solora-atlas-5.5/input": "50.00", "solora-atlas-5.5/output": "50.00", "solora-atlas-5.5/cache_read": "1.00",
                "solora-atlas-5.5/cache_write": "6.25", "(not usage)": "-2.00",
            ],
            expectedQuantities: [
                "solora-atlas-5.5/input": 10_000_000, "solora-atlas-5.5/output": 2_000_000,
                "solora-atlas-5.5/cache_read": 2_000_000, "solora-atlas-5.5/cache_write": 1_000_000,
            ]),
        PluginExample(
            name:
                "focus: a correction row giving tokens back is set aside as a refund (its cell held), not netted; one for another period stays unmapped with that period",
            file: InvoiceFile(name: "focus_corrections.csv", bytes: PackageResources.focus_corrections_csv), parserID: "focus-csv",
            expectedLineCount: 4,
            expectedAmounts: ["solora-atlas-5.5/input": "6.5", "(not usage)": "-0.5"],
            expectedQuantities: ["solora-atlas-5.5/input": 1_300_000],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["solora-atlas-5.5/input": 2_000_000],
            expectedUnmapped: ["correction_for_other_period:2026-04": "-1", "refund": "-2.5"]),
        PluginExample(
            name: "focus: token blocks written \"K Tokens\", \"Thousands of Tokens\", \"KTokens\", \"M-Tokens\" (FOCUS 1.2 columns) are read at their scale",
            file: InvoiceFile(name: "focus_scaled_units.csv", bytes: PackageResources.focus_scaled_units_csv), parserID: "focus-csv",
            expectedLineCount: 4,
            expectedAmounts: [
                "solora-atlas-5.5/input": "50.00", "solora-atlas-5.5/output": "50.00", "solora-atlas-5.5/cache_read": "1.00",
                "solora-atlas-5.5/cache_write": "6.25",
            ],
            expectedQuantities: [
                "solora-atlas-5.5/input": 10_000_000, "solora-atlas-5.5/output": 2_000_000,
                "solora-atlas-5.5/cache_read": 2_000_000, "solora-atlas-5.5/cache_write": 1_000_000,
            ]),
        PluginExample(
            name: "focus: a block of tokens whose scale is not read (\"MM Tokens\") is refused naming the column, not read as single tokens",
            file: InvoiceFile(name: "focus_unknown_block.csv", bytes: PackageResources.focus_unknown_block_csv), parserID: "focus-csv",
            expectedError: "focus_unknown_block.csv:2: field 'ConsumedUnit'"),
        PluginExample(
            name: "focus: a fractional token count is refused naming line and field",
            file: InvoiceFile(name: "focus_bad_quantity.csv", bytes: PackageResources.focus_bad_quantity_csv), parserID: "focus-csv",
            expectedError: "focus_bad_quantity.csv:2: field 'ConsumedQuantity'"),
    ]
}

struct FOCUSParser: InvoiceParser {
    let id = "focus-csv"
    let format = InvoiceFormat.csv

    func sniff(_ file: InvoiceFile) -> Bool {
        guard let header = file.headerLine?.lowercased() else { return false }
        return header.contains("billedcost") && header.contains("chargecategory")
    }

    /// `BillingPeriod*` names the month being billed, not how much of it the file holds (FOCUS data
    /// is restated as the month fills), so coverage is the span of the rows' charge periods.
    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        let table = try CSVTable.read(file, required: [["BilledCost"], ["BillingCurrency"], ["ChargeCategory"], ["ChargePeriodStart"]])
        var lines: [InvoiceLine] = []
        // Each provider name once: the column repeats on every row.
        var providers: [String: String] = [:]
        for r in table.rows {
            func cell(_ name: String) -> String? { r.cell(name) }
            func decimal(_ name: String) throws -> Decimal? {
                guard let t = cell(name) else { return nil }
                guard let d = ExactDecimal.parseNumber(t) else { throw InvoiceError(file: file.name, line: r.line, field: name, ExactDecimal.refusal(t)) }
                return d
            }
            guard let costText = cell("BilledCost"), let cost = ExactDecimal.parseNumber(costText) else {
                throw InvoiceError(file: file.name, line: r.line, field: "BilledCost", ExactDecimal.refusal(cell("BilledCost") ?? "", what: "a decimal amount"))
            }
            guard let startText = cell("ChargePeriodStart"), let start = Timestamp(rfc3339: startText) ?? Timestamp(rfc3339: startText + "T00:00:00Z") else {
                throw InvoiceError(file: file.name, line: r.line, field: "ChargePeriodStart", "must be an RFC 3339 timestamp")
            }
            // FOCUS spells the values "Usage", "Credit", …; a producer that lower-cases them is still read.
            let category = (cell("ChargeCategory") ?? "").lowercased()
            var details: JSONValue = .null
            if let text = cell("SkuPriceDetails") {
                guard let parsed = try? JSONParser.parse(text), case .object = parsed else {
                    throw InvoiceError(file: file.name, line: r.line, field: "SkuPriceDetails", "must hold a JSON object")
                }
                details = parsed
            }
            let model = details["ModelId"]?.stringValue
            let direction = details["TokenDirection"]?.stringValue?.lowercased()
            let cache = details["TokenCacheAction"]?.stringValue?.lowercased() ?? ""
            let vendorTokenType = direction.map { "\($0)/\(cache)" }
            // Corrections are posted later but keep the ChargePeriod they correct (FOCUS 1.1+ ChargeClass).
            let isCorrection = cell("ChargeClass")?.lowercased() == "correction"
            // A commitment's unused part is billed as a Usage row with no ConsumedQuantity: no token was served.
            let unusedCommitment = cell("CommitmentDiscountStatus")?.lowercased() == "unused"
            // Token counts: ConsumedQuantity in tokens, else PricingQuantity × its block ("1000000
            // Tokens") — never for a correction (one with no consumed quantity is money only) nor
            // for a commitment's unused part (its pricing quantity was bought, not used).
            var quantity: Int64?
            if category == "usage", model != nil {
                // A block the unit names ("1K Tokens", "Million Tokens") that is not read would
                // count each block as one token: an unknown one is refused naming the column.
                func tokens(_ q: Decimal, unitColumn: String, quantityColumn: String) throws -> Int64 {
                    guard let block = Self.blockSize(cell(unitColumn)) else {
                        throw InvoiceError(
                            file: file.name, line: r.line, field: unitColumn, "'\(cell(unitColumn) ?? "")' is not a block of tokens UsageBox reads")
                    }
                    guard let whole = ExactDecimal.wholeInt64(q * block) else {
                        throw InvoiceError(file: file.name, line: r.line, field: quantityColumn, "a token count must be whole, got \(q) × \(block)")
                    }
                    return whole
                }
                if let q = try decimal("ConsumedQuantity"), cell("ConsumedUnit").map(Self.countsTokens) ?? true {
                    quantity = try tokens(q, unitColumn: "ConsumedUnit", quantityColumn: "ConsumedQuantity")
                } else if !isCorrection, !unusedCommitment, let q = try decimal("PricingQuantity"),
                    cell("PricingUnit").map(Self.countsTokens) == true
                {
                    quantity = try tokens(q, unitColumn: "PricingUnit", quantityColumn: "PricingQuantity")
                }
            }
            var exportedTokenType: TokenType? {
                get throws {
                    guard let t = cell("x_TokenType") else { return nil }
                    guard t.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
                        throw InvoiceError(file: file.name, line: r.line, field: "x_TokenType", "'\(t)' is not a token type")
                    }
                    return TokenType(t)
                }
            }
            // Reserved capacity by the hour (Bedrock Provisioned Throughput, Azure PTU, Vertex GSUs):
            // tokens served on it are on no token row.
            let capacity = [cell("SkuId"), cell("SkuMeter"), cell("ChargeDescription"), cell("x_UsageType"), cell("ConsumedUnit")]
                .compactMap { $0?.lowercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: " ", with: "") }
                .contains { $0.contains("provisionedthroughput") || $0.contains("modelunit") || $0.contains("throughputunit") }
            var labels: [String: String] = [:]
            // Who served the usage: the engine matches metered events whose vendor dimension names
            // it. UsageBox's own export states the meter's vendor value in x_Vendor, as written
            // (`aws-bedrock`); FOCUS names the provider in ProviderName, from 1.2 in
            // ServiceProviderName, which are names with a legal form ("Anthropic, PBC"). The
            // invoice's issuer or host is not who served the usage (a reseller, Marketplace).
            if let v = cell("x_Vendor") {
                labels["provider"] = v.lowercased()
            } else if let p = cell("ProviderName") ?? cell("Provider") ?? cell("ServiceProviderName") {
                if providers[p] == nil { providers[p] = ProviderName.normalized(p) }
                labels["provider"] = providers[p]
            }
            if let e = cell("EffectiveCost") { labels["effective_cost"] = e }
            if let p = cell("PricingCategory") { labels["pricing_category"] = p }
            var attribution: [String: String] = [:]
            for key in ["SubAccountId", "BillingAccountId", "CredentialId", "PrincipalId"] { if let v = cell(key) { attribution[key] = v } }
            var line = InvoiceLine(
                location: "\(file.name):\(r.line)", vendorModel: model, vendorTokenType: vendorTokenType,
                // UsageBox's own export names the canonical token type in x_TokenType (FOCUS has no cache lifetime).
                tokenType: try exportedTokenType ?? vendorTokenType.flatMap { FOCUSPlugin.tokenTypeMap[$0] }, amount: cost,
                amountScale: ExactDecimal.scale(of: costText),
                currency: cell("BillingCurrency") ?? "USD", listAmount: try decimal("ListCost"), quantity: capacity ? nil : quantity, date: start,
                end: try r.optionalTimestamp(["ChargePeriodEnd"], file: file.name),
                labels: labels, attribution: attribution,
                nonUsageReason: capacity
                    ? "capacity:provisioned_throughput"
                    : unusedCommitment
                        ? "commitment_unused"
                        : category != "usage"
                            ? "not_usage:\(category)"
                            // A Usage row of tokens naming no model (a provider that fills no
                            // ModelId) is some model's usage: unplaced, it holds downward
                            // corrections; as not usage it left a model's cell short.
                            : (model == nil && !Self.namesTokens(cell("ConsumedUnit"), cell("PricingUnit"), direction) ? "not_usage" : nil),
                description: cell("ChargeDescription"))
            line.modelIsCanonical = true
            if quantity == nil, category == "usage", model != nil, let unit = cell("ConsumedUnit"), !Self.countsTokens(unit) {
                line.unreadUnit = unit
            }
            line.sourceRow = r.fingerprint
            line.isCorrection = isCorrection
            lines.append(line)
        }
        return ParsedInvoice(lines: lines)
    }

    /// How many tokens one unit is: "Tokens" 1, "1000000 Tokens", "1K Tokens", "K Tokens",
    /// "KTokens", "1 Million Tokens", "Thousands of Tokens", "1,000 Tokens" ("Input Tokens": a few
    /// words describe); nil for a number or word it cannot read ("1.5x Tokens", "MM Tokens").
    /// "K Tokens" and "Thousands of Tokens" were read as single tokens, 1,000 times too few.
    /// Whether a row's units (or its token direction) say it bills tokens.
    static func namesTokens(_ consumedUnit: String?, _ pricingUnit: String?, _ direction: String?) -> Bool {
        direction != nil || [consumedUnit, pricingUnit].contains { $0?.lowercased().contains("token") ?? false }
    }

    /// A unit of tokens, one or a block ("Tokens", "Token", "1K Tokens"): "Token" was read as no
    /// count, and every row as money at a model the card did not know (tester Q).
    static func countsTokens(_ unit: String) -> Bool {
        let u = unit.lowercased()
        return u.hasSuffix("tokens") || u.hasSuffix("token")
    }

    static func blockSize(_ unit: String?) -> Decimal? {
        guard let unit else { return 1 }
        let named: [String: Decimal] = ["thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000]
        let suffixes: [Character: Decimal] = ["k": 1_000, "m": 1_000_000, "b": 1_000_000_000]
        let describing: Set<String> = [
            "input", "output", "cached", "cache", "read", "write", "text", "audio", "image", "video", "of", "per", "prompt", "completion",
            "reasoning", "thinking", "count", "units", "unit", "batch", "creation", "in", "embedding", "standard",
        ]
        var block: Decimal = 1
        for (n, whole) in unit.lowercased().split(whereSeparator: { " -_()".contains($0) }).map(String.init).enumerated() {
            // "ktokens", "1ktokens": the scale written onto the word.
            var word = whole
            for tail in ["tokens", "token"] where word.hasSuffix(tail) {
                word.removeLast(tail.count)
                break
            }
            if word.hasSuffix("s"), named[String(word.dropLast())] != nil { word.removeLast() }
            if word.isEmpty { continue }
            if let n = named[word] {
                block *= n
            } else if word.count == 1, let s = suffixes[word.first!] {
                block *= s
            } else if n == 0, word.contains(where: \.isNumber) {
                // A count leads ("1000 Tokens"): "Cache Write 5m Tokens" names a lifetime, no block.
                var number = word.replacingOccurrences(of: ",", with: "")
                var scale: Decimal = 1
                if let last = number.last, let s = suffixes[last] {
                    scale = s
                    number.removeLast()
                }
                guard let n = ExactDecimal.parse(number), n > 0 else { return nil }
                block *= n * scale
            } else if !describing.contains(word) {
                // "MM Tokens", "Kilo Tokens", "Hundred Tokens": a scale not read is no 1.
                return nil
            }
        }
        return block
    }
}
