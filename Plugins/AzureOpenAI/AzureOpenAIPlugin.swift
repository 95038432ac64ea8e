import Foundation
import Metering
import ReconCore

/// Azure OpenAI in Cost Management cost-details exports (EA PascalCase or MCA camelCase, CSV).
/// Cryptic meter names (`gpt-4o 1120 Inp glbl Tokens`, `4o cchd Inp regnl 1M Tokens`) are split
/// into model words, token class, deployment and batch; `Quantity` counts blocks of
/// `UnitOfMeasure` (`1K`, `1M`); money prefers the pricing currency when the export has it.
public enum AzureOpenAIPlugin: VendorPlugin {
    public static let id = "azure-openai"
    public static let name = "Azure OpenAI (Cost Management)"
    public static let rateCardName = "azure-openai"
    public static let tenantKeys: Set<String> = ["SubscriptionId", "SubscriptionName"]
    public static let providerNames: Set<String> = ["microsoft", "microsoft azure", "azure"]
    public static let parsers: [any InvoiceParser] = [AzureCostDetailsParser()]
    public static let tokenTypeMap: [String: TokenType] = ["input": .input, "output": .output, "cached": .cacheRead]

    /// Words in meter names and what they mean.
    static let inputWords: Set<String> = ["inp", "inpt", "input"]
    static let outputWords: Set<String> = ["outp", "opt", "output", "out"]
    static let cachedWords: Set<String> = ["cached", "cchd", "cd", "cache"]
    static let dropWords: Set<String> = ["tokens", "token", "1m", "1k"]

    /// `/subscriptions/<id>/resourceGroups/…` → `<id>`.
    static func subscription(inResourceID path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard let i = parts.firstIndex(where: { $0.lowercased() == "subscriptions" }), i + 1 < parts.count else { return nil }
        return String(parts[i + 1])
    }

    /// `gpt 4o 1120 cached Inp glbl Tokens` → ("gpt-4o-1120", "cached", labels).
    static func meter(_ name: String) -> (model: String, tokenClass: String, labels: [String: String])? {
        // Hyphens part words as spaces do ("gpt-4o-mini-0718-Inp-regnl"): the model's words are
        // joined by hyphens again, and as one word the meter named no token class and its money
        // was read as not usage.
        var words = name.lowercased().replacingOccurrences(of: "data zone", with: "dzone").split { $0 == " " || $0 == "-" }.map(String.init)
        var labels: [String: String] = [:]
        var tokenClass: String?
        var cached = false
        words = words.filter { w in
            if inputWords.contains(w) { tokenClass = tokenClass ?? "input"; return false }
            if outputWords.contains(w) { tokenClass = "output"; return false }
            if cachedWords.contains(w) { cached = true; return false }
            if ["glbl", "gl", "global"].contains(w) { labels["deployment"] = "global"; return false }
            if ["dzone", "dz"].contains(w) { labels["deployment"] = "data_zone"; return false }
            if ["regnl", "regional"].contains(w) { labels["deployment"] = "regional"; return false }
            if w == "batch" { labels["service_tier"] = "batch"; return false }
            // Priority processing and the context band change the price: labelled, so a card
            // that does not price them leaves the line unpriced (its count compared, its cost
            // not checked) instead of pricing it at the base rate, as dropping the words did.
            if w == "pp" { labels["service_tier"] = "priority"; return false }
            if w == "shortco" { labels["context"] = "short"; return false }
            if w == "longco" { labels["context"] = "long"; return false }
            return !dropWords.contains(w)
        }
        // A meter of tokens whose class is not read ("gpt 4o Prompt regnl Tokens") is usage, held
        // (the unread word stays in the model's name: unplaced), not "not usage" (its money left
        // the model's cell short and the meter's tokens read as over-metering).
        let lower = name.lowercased()
        let inference = lower.contains("token") && !["train", "hosting", "embedding", "fine"].contains { lower.contains($0) }
        guard !words.isEmpty, var tc = tokenClass ?? (inference ? "" : nil) else { return nil }
        if cached, tc == "input" { tc = "cached" }
        // "gpt 4o" and "gpt-4o" are one model word; numbers after it are dated snapshots.
        var model = words.joined(separator: "-").replacingOccurrences(of: "gpt--", with: "gpt-")
        if model.hasPrefix("gpt-"), !model.hasPrefix("gpt-4"), !model.hasPrefix("gpt-5"), !model.hasPrefix("gpt-o") { model = String(model) }
        return (model, tc, labels)
    }

    public static let examples: [PluginExample] = [
        PluginExample(
            name: "azure-openai: cost details with 1K/1M blocks, cached input, batch, a storage meter and a purchase",
            file: InvoiceFile(name: "azure_cost_details.csv", bytes: PackageResources.azure_cost_details_csv), parserID: "cost-details-csv",
            expectedLineCount: 6,
            expectedAmounts: [
                "gpt-4.1/input": "2.5008", "gpt-4o/cache_read": "1.25", "gpt-4o/output": "10", "gpt-4o/input": "1.25",
                "(not usage)": "12.34",
            ],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["gpt-4.1/input": 1_250_400, "gpt-4o/cache_read": 1_000_000, "gpt-4o/output": 1_000_000, "gpt-4o/input": 1_000_000]),
        PluginExample(
            name: "azure-openai: billed in euros, priced in dollars, with the export's ExchangeRatePricingToBilling (no --fx needed)",
            file: InvoiceFile(name: "azure_eur_billing.csv", bytes: PackageResources.azure_eur_billing_csv), parserID: "cost-details-csv",
            expectedLineCount: 2,
            expectedAmounts: ["gpt-4o/input": "2.3", "gpt-4o/output": "0.92"],
            expectedQuantities: ["gpt-4o/input": 1_000_000, "gpt-4o/output": 100_000],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["gpt-4o/input": 1_000_000, "gpt-4o/output": 100_000]),
        PluginExample(
            name: "azure-openai: a non-number quantity is refused naming line and field",
            file: InvoiceFile(name: "azure_bad_quantity.csv", bytes: PackageResources.azure_bad_quantity_csv), parserID: "cost-details-csv",
            expectedError: "azure_bad_quantity.csv:2: field 'Quantity'"),
    ]
}

extension AzureOpenAIPlugin {
    /// Tokens per unit of a token meter's `UnitOfMeasure`: `1K`, `1M`, `1000 Tokens`, `10K`,
    /// `1 Tokens`; nil for anything else (an unknown unit read as single tokens was off by 1,000).
    static func tokensPerUnit(_ unit: String) -> Decimal? {
        var t = unit.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: ",", with: "")
        guard !t.isEmpty else { return nil }
        for word in ["tokens", "token"] where t.hasSuffix(word) {
            t = String(t.dropLast(word.count)).trimmingCharacters(in: .whitespaces)
            break
        }
        var multiplier: Decimal = 1
        if t.hasSuffix("k") { multiplier = 1000 } else if t.hasSuffix("m") { multiplier = 1_000_000 }
        if multiplier != 1 { t.removeLast() }
        if t.isEmpty { t = "1" }
        guard let n = ExactDecimal.parse(t), n > 0, let whole = ExactDecimal.wholeInt64(n) else { return nil }
        return n * multiplier
    }
}

struct AzureCostDetailsParser: InvoiceParser {
    let id = "cost-details-csv"
    let format = InvoiceFormat.csv

    func sniff(_ file: InvoiceFile) -> Bool {
        guard let h = file.headerLine?.lowercased() else { return false }
        return h.contains("metername") && h.contains("unitofmeasure") && h.contains("quantity")
    }

    /// Cost details are daily rows; the billing period columns name the month being billed, not how
    /// much of it the export holds, so coverage is the span of the rows' dates.
    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        let table = try CSVTable.read(
            file,
            required: [["MeterName"], ["Quantity"], ["UnitOfMeasure"], ["CostInBillingCurrency", "Cost", "CostInPricingCurrency"], ["Date", "UsageDate"]])
        let judgesRepeats = table.has("ResourceId") || table.has("InstanceName")
        var lines = try table.rows.map { row in
            // The pricing currency (USD for Azure OpenAI) matches the card; the billing currency may not.
            let usePricing = row.cell("CostInPricingCurrency") != nil && row.cell("PricingCurrency") != nil
            let costColumns = usePricing ? ["CostInPricingCurrency"] : ["CostInBillingCurrency", "Cost"]
            guard let costText = row.cell(costColumns), let cost = ExactDecimal.parseNumber(costText) else {
                throw InvoiceError(
                    file: file.name, line: row.line, field: costColumns[0], ExactDecimal.refusal(row.cell(costColumns) ?? "", what: "a decimal amount"))
            }
            // No currency column: the pricing currency of Azure OpenAI, USD. Taken as blank it
            // left the money unchecked against the stated counts, the check a misread unit
            // (1K for 1M) is caught by.
            let currency = usePricing ? row.cell("PricingCurrency")! : (row.cell(["BillingCurrencyCode", "BillingCurrency"]) ?? "USD")
            let meterName = row.cell("MeterName") ?? ""
            let service = (row.cell(["MeterCategory", "ServiceName"]) ?? "") + " " + (row.cell(["MeterSubCategory", "ProductName"]) ?? "")
            // Exports differ in case ("Azure OpenAI", "azure openai"): a mis-cased one is still read.
            let isOpenAI = service.localizedCaseInsensitiveContains("OpenAI") || service.localizedCaseInsensitiveContains("Foundry")
            let parsed = isOpenAI ? AzureOpenAIPlugin.meter(meterName) : nil
            let chargeType = (row.cell("ChargeType") ?? "Usage").lowercased()
            var quantity: Int64?
            if parsed != nil {
                let unit = row.cell("UnitOfMeasure") ?? ""
                guard let block = AzureOpenAIPlugin.tokensPerUnit(unit) else {
                    throw InvoiceError(
                        file: file.name, line: row.line, field: "UnitOfMeasure",
                        "'\(unit.prefix(48))' is not a unit of tokens (1K, 1M, 1000 Tokens, …)")
                }
                quantity = try row.tokens(["Quantity"], times: block, file: file.name)
            } else {
                _ = try row.decimal(["Quantity"], file: file.name)
            }
            var attribution: [String: String] = [:]
            for k in ["ResourceGroup", "ResourceId", "SubscriptionName"] { if let v = row.cell(k) { attribution[k] = v } }
            // The tenant: a legacy EA export names it SubscriptionGuid, and an export without the
            // column still names it in every ResourceId (read as given, another subscription's
            // usage was billed to the account reconciled). One namespace, lowercased as Azure
            // compares ids; the display name is a tenant key of its own, so two files naming
            // one subscription two ways are not taken for two tenants' usage.
            if let id = row.cell(["SubscriptionId", "SubscriptionGuid"]) ?? row.cell("ResourceId").flatMap(AzureOpenAIPlugin.subscription(inResourceID:)) {
                attribution["SubscriptionId"] = id.lowercased()
            }
            // A refund or adjustment of a token meter gives tokens back (or bills more): it nets,
            // and says neither which usage it returns nor whether it was served, so it is held.
            let restates = ["refund", "adjustment"].contains(chargeType) && parsed != nil && (quantity ?? 0) != 0
            if restates, let q = quantity, chargeType == "refund" || cost < 0 { quantity = q > 0 ? -q : q }
            // Money given back on a token meter with no tokens: kept as usage (money only), which
            // holds the model (`usage_refund`) instead of leaving the usage it corrects standing.
            let moneyBack = ["refund", "adjustment"].contains(chargeType) && parsed != nil && !restates && cost < 0
            if moneyBack { quantity = nil }
            // An adjustment billing more with no tokens: the model's usage of an unread kind,
            // which holds its downward corrections (as not usage, −400,000 was proposed).
            let moneyMore = chargeType == "adjustment" && parsed != nil && !restates && cost > 0
            if moneyMore { quantity = nil }
            var nonUsage: String?
            if isOpenAI,
                meterName.localizedCaseInsensitiveContains("provisioned") || meterName.localizedCaseInsensitiveContains("throughput unit")
            {
                // PTU: a deployment's capacity by the hour; tokens served on it are on no token meter.
                nonUsage = "capacity:provisioned_throughput_units"
            } else if chargeType != "usage" && !restates && !moneyBack && !moneyMore {
                nonUsage = "not_usage:\(chargeType)"
            } else if parsed == nil {
                nonUsage = "not_usage:\(meterName)"
            }
            // Billed in another currency than the USD pricing: the export states the rate it used.
            var rate: Decimal?
            if !usePricing, row.cell("PricingCurrency") == "USD", let r = try row.decimal(["ExchangeRatePricingToBilling"], file: file.name), r > 0 {
                rate = r
            }
            var line = InvoiceLine(
                location: "\(file.name):\(row.line)", vendorModel: parsed?.model, vendorTokenType: parsed?.tokenClass,
                tokenType: moneyMore ? nil : parsed.flatMap { AzureOpenAIPlugin.tokenTypeMap[$0.tokenClass] }, amount: cost,
                amountScale: ExactDecimal.scale(of: costText),
                currency: currency, quantity: nonUsage == nil ? quantity : nil, date: try row.timestamp(["Date", "UsageDate"], file: file.name),
                labels: parsed?.labels ?? [:], attribution: attribution, nonUsageReason: nonUsage, description: meterName)
            line.exchangeRate = rate
            line.isCorrection = restates
            line.isRefund = restates
            // Identical rows are one charge listed twice only when the rows name their resource.
            line = line.withSourceRow(row.fingerprint, mayRepeat: !judgesRepeats)
            return line
        }
        if !judgesRepeats {
            // Without the resource, a second pull pasted in repeats a row with its cost restated or
            // its date written another way: not the same row, so it was read as a second charge
            // (+3,023,377 on an exact meter). Rows alike in every other cell, of one day, hold
            // their cell as one charge twice.
            let charges = zip(table.rows, lines).map { row, line in
                var hasher = Hasher()
                hasher.combine(line.date)
                hasher.combine(row.fingerprint(excluding: Self.restated))
                return hasher.finalize()
            }
            lines = InvoiceLine.markingRepeatedCharges(lines, charges: charges)
        }
        // Cost is at the account's price (EffectivePrice, after a negotiated discount): a token row
        // with a blank Quantity gives volume only through money, and a total below the meter may
        // be the discount (0.94× list on May 1–9 beside a real outage proposed +10,359,049 of
        // 12,601,998 lost).
        // (Money given back or billed more without tokens holds its model on its own.)
        let moneyOnly = lines.first { $0.tokenType != nil && !$0.isCorrection && ($0.amount ?? 0) > 0 && $0.isMoneyOnlyUsage }
        return ParsedInvoice(
            lines: lines,
            amountsMayBeNet: moneyOnly.map {
                "token rows state money and no Quantity (the first at \($0.location)): cost is at the account's price, after any negotiated discount"
            })
    }

    /// Cells a re-export restates or writes another way for the same charge: its money and prices,
    /// and its date (read as a date instead).
    static let restated = [
        "CostInBillingCurrency", "CostInPricingCurrency", "Cost", "CostInUsd", "PaygCostInBillingCurrency", "PaygCostInUsd", "EffectivePrice",
        "UnitPrice", "PayGPrice", "ExchangeRatePricingToBilling", "Date", "UsageDate",
    ]
}
