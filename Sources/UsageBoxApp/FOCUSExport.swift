import Foundation
public import Metering
public import ReconCore

/// The meter as a FinOps FOCUS cost and usage file (FOCUS 1.2 columns, every FOCUS 1.0 column
/// too): one row per day × account × model × token type, tokens in `ConsumedQuantity`, money priced
/// by the rate card in force that day, corrections as `ChargeClass = Correction` rows in the
/// exported period keeping their own charge period, and `x_` columns for what FOCUS lacks (the
/// canonical token type, so cache-write lifetimes survive; the vendor that served it as the
/// meter's `vendor` dimension names it; the card version; the events counted).
/// It is each customer's cost of goods, in the format FinOps tools import; the FOCUS plugin reads
/// it back.
public enum FOCUSExport {
    /// Columns in order: FOCUS 1.2, then the 1.0 names the 1.2 names replaced, then `x_` columns.
    public static let columns = [
        "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
        "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId", "CapacityReservationStatus", "ChargeCategory", "ChargeClass",
        "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
        "CommitmentDiscountName", "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit",
        "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName",
        "ListCost", "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
        "PricingCurrencyListUnitPrice", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName",
        "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter",
        "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType", "Tags",
        // FOCUS 1.0 names of columns 1.2 renamed, so 1.0 tools (and validators) find them.
        "InvoiceIssuer", "Provider", "Publisher",
        "x_TokenType", "x_Vendor", "x_RateCardVersion", "x_MeteredEvents",
    ]

    public struct Summary: Sendable {
        public var rows = 0
        public var unpriced = 0
        public var billed: [String: Decimal] = [:]
        /// Usage of meters in units other than tokens, left out: `"images: 7 (meter images)"`.
        public var leftOut: [String] = []
    }

    /// Writes the export of `range` to `out`, one CSV line at a time. Only meters counting tokens
    /// are exported (as reconcile compares them): `kTok` and images were added to tokens, priced
    /// as tokens, and the round trip through the FOCUS plugin showed a gap (tester O).
    public static func write(
        store: any MeterStore, service: ReconciliationService, range: TimeRange, account: String?, billingAccount: String,
        to out: (String) -> Void
    ) async throws -> Summary {
        // FOCUS writes its periods to the second: a bound inside one wrote microseconds (tester O2).
        for (bound, field) in [(range.from, "from"), (range.to, "to")] where bound.microseconds % 1_000_000 != 0 {
            throw UsageBoxError.invalidArgument("\(bound.rfc3339) is not a whole second: FOCUS charge periods are written to the second", field: field)
        }
        let scope: AccountScope = account.map { .accounts([$0]) } ?? .all
        var summary = Summary()
        let otherUnits = try await store.meters(scope: scope).filter { !MeterUnit.countsTokens($0.unit) }
        var filters: [UsageFilter] = []
        if !otherUnits.isEmpty {
            let ids = otherUnits.map(\.meterID)
            filters = [UsageFilter(field: .meterID, op: .notIn, values: ids)]
            let unitOf = Dictionary(otherUnits.map { ($0.meterID, $0.unit ?? "") }, uniquingKeysWith: { a, _ in a })
            let other = try await store.usage(
                UsageQuery(scope: scope, range: range, groupBy: [.meterID], filters: [UsageFilter(field: .meterID, op: .in, values: ids)]))
            summary.leftOut = other.groups.compactMap { g in
                g.keys[0].map { "\(unitOf[$0] ?? ""): \(DigitGrouping.grouped(g.aggregate.sum)) (meter \($0))" }
            }
        }
        // Token type and vendor are dimensions a meter may not carry: group by them when it does.
        var dims = [UsageField.dimension("token_type"), UsageField.dimension("vendor")]
        func query() -> UsageQuery {
            UsageQuery(scope: scope, range: range, groupBy: [.day, .accountID, .modelID, .kind] + dims, filters: filters)
        }
        // Which of them the store refuses, asked before any row is written (one account's day).
        while true {
            var probe = query()
            probe.range = try TimeRange(from: range.from, to: Timestamp(microseconds: min(range.to.microseconds, range.from.microseconds + 1)))
            do {
                _ = try await store.usage(probe)
                break
            } catch let e as UsageBoxError where e.code == .invalidArgument && dims.contains(where: { $0.name == e.field }) {
                dims.removeAll { $0.name == e.field }
            }
        }
        let tokenIndex = dims.firstIndex(of: .dimension("token_type")).map { 4 + $0 }
        let vendorIndex = dims.firstIndex(of: .dimension("vendor")).map { 4 + $0 }
        out(columns.joined(separator: ",") + "\n")
        let cards = service.cards.values.sorted { $0.vendor < $1.vendor }
        let providers = Dictionary(service.registry.plugins.map { ($0.rateCardName, $0.name) }, uniquingKeysWith: { a, _ in a })
        // Read in sets of accounts when the month is past one answer's bounds (1,000 accounts × 30
        // days × 4 token types failed, naming a `group_by` the command has not: tester O). Groups
        // that sum to 0 are rows too: a correction and its reversal on one day, counted events.
        do {
            try await store.forEachGroup(query()) { group in
                guard let dayText = group.keys[0], let day = Timestamp(rfc3339: dayText + "T00:00:00Z") else { return }
                let accountID = group.keys[1] ?? ""
                let model = group.keys[2]
                let correction = group.keys[3] == EventKind.correction.rawValue
                let tokenType = tokenIndex.flatMap { group.keys[$0] }.map(TokenType.init(rawValue:))
                let vendor = vendorIndex.flatMap { group.keys[$0] }
                let tokens = group.aggregate.sum
                // The card that prices this model and token type on this day (the event's vendor's first).
                var priced: (card: RateCard, price: ResolvedPrice)?
                if let model, let tokenType {
                    for card in cards.filter({ $0.vendor == vendor }) + cards.filter({ $0.vendor != vendor }) {
                        if let price = try? card.price(model: model, tokenType: tokenType, date: day, labels: [:]) {
                            priced = (card, price)
                            break
                        }
                    }
                }
                if priced == nil { summary.unpriced += 1 }
                let currency = priced?.price.currency ?? "USD"
                let cost = priced.map { Decimal(tokens) * $0.price.perToken } ?? 0
                let perMillion = priced?.price.perMillion
                let provider = priced.map { providers[$0.card.vendor] ?? $0.card.vendor } ?? (vendor ?? "unknown")
                let (direction, cache) = focusDirection(tokenType)
                var details: [(String, String)] = []
                if let model { details.append(("ModelId", model)) }
                if let direction { details.append(("TokenDirection", direction)) }
                if let cache { details.append(("TokenCacheAction", cache)) }
                let detailsJSON = "{" + details.map { "\"\($0.0)\": \"\($0.1)\"" }.joined(separator: ", ") + "}"
                let what = [model, tokenType?.rawValue].compactMap { $0 }.joined(separator: " ")
                let row: [String: String] = [
                    "BilledCost": decimal(cost), "BillingAccountId": billingAccount, "BillingAccountName": billingAccount,
                    "BillingAccountType": "Reseller", "BillingCurrency": currency,
                    "BillingPeriodStart": day.startOfMonth.rfc3339, "BillingPeriodEnd": day.startOfNextMonth.rfc3339,
                    "ChargeCategory": "Usage", "ChargeClass": correction ? "Correction" : "",
                    "ChargeDescription": (correction ? "Correction of " : "") + "\(what) tokens".trimmingCharacters(in: .whitespaces),
                    "ChargeFrequency": "Usage-Based",
                    // The day, cut to the exported range: two exports of half a day each claimed the
                    // whole day, two charges of one SKU for it (tester O).
                    "ChargePeriodStart": Timestamp(microseconds: max(day.microseconds, range.from.microseconds)).rfc3339,
                    "ChargePeriodEnd": Timestamp(microseconds: min(day.microseconds + Timestamp.microsPerHour * 24, range.to.microseconds)).rfc3339,
                    "ConsumedQuantity": decimal(Decimal(tokens)), "ConsumedUnit": "Tokens",
                    "ContractedCost": decimal(cost), "ContractedUnitPrice": perMillion.map(decimal) ?? "", "EffectiveCost": decimal(cost),
                    "InvoiceIssuerName": provider, "InvoiceIssuer": provider, "ListCost": decimal(cost), "ListUnitPrice": perMillion.map(decimal) ?? "",
                    "PricingCategory": "Standard", "PricingCurrency": currency,
                    "PricingCurrencyContractedUnitPrice": perMillion.map(decimal) ?? "", "PricingCurrencyEffectiveCost": decimal(cost),
                    "PricingCurrencyListUnitPrice": perMillion.map(decimal) ?? "",
                    "PricingQuantity": decimal(Decimal(tokens) / 1_000_000), "PricingUnit": "1000000 Tokens",
                    "ProviderName": provider, "Provider": provider, "PublisherName": provider, "Publisher": provider,
                    "ServiceCategory": "AI and Machine Learning", "ServiceName": provider + " models", "ServiceSubcategory": "Generative AI",
                    "SkuId": [model ?? "", tokenType?.rawValue ?? ""].joined(separator: "/"), "SkuMeter": skuMeter(tokenType),
                    "SkuPriceDetails": detailsJSON, "SkuPriceId": priced.map { "\($0.card.vendor)@\($0.price.cardVersion)" } ?? "",
                    "SubAccountId": accountID, "SubAccountName": accountID, "SubAccountType": "Customer", "Tags": "{}",
                    "x_TokenType": tokenType?.rawValue ?? "", "x_Vendor": vendor ?? priced?.card.vendor ?? "",
                    "x_RateCardVersion": priced?.price.cardVersion ?? "",
                    "x_MeteredEvents": String(group.aggregate.count),
                ]
                out(columns.map { csvField(row[$0] ?? "") }.joined(separator: ",") + "\n")
                summary.rows += 1
                summary.billed[currency, default: 0] += cost
            }
        } catch  where UsageAccumulator.isAnswerLimit(error) {
            // One account past one read's bounds: the export has no `group_by` to narrow (tester O2).
            throw UsageBoxError.invalidArgument(
                "one account's rows over this range are more than one read answers: export fewer days at a time (--from/--to)", field: "from")
        }
        return summary
    }

    /// FOCUS's direction and cache action for a canonical token type (what the FOCUS plugin reads).
    static func focusDirection(_ t: TokenType?) -> (String?, String?) {
        guard let t else { return (nil, nil) }
        switch t {
        case .input: return ("Input", "Uncached")
        case .output, .reasoning: return ("Output", nil)
        case .cacheRead: return ("Input", "Read")
        case .cacheWrite, .cacheWrite5m, .cacheWrite1h: return ("Input", "Write")
        default: return (t.rawValue.hasPrefix("output") ? "Output" : "Input", nil)
        }
    }

    static func skuMeter(_ t: TokenType?) -> String {
        guard let t else { return "Tokens" }
        return t.rawValue.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ") + " Tokens"
    }

    /// An exact decimal as FOCUS writes numbers, always with a decimal point (so tools read a decimal).
    static func decimal(_ d: Decimal) -> String {
        let text = ExactDecimal.text(d)
        return text.contains(".") || text.contains("E") || text.contains("e") ? text : text + ".0"
    }

    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
