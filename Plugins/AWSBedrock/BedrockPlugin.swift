import ExactJSON
import Foundation
import Metering
import ReconCore

/// Amazon Bedrock in the Cost and Usage Report: CUR 2.0 (snake_case) and legacy CUR
/// (`lineItem/UsageType`) CSV. Model and token class live in the usage type
/// (`USE1-Claude4.6Sonnet-cache-read-input-token-count-cross-region-global`); Marketplace rows
/// (`USE1-MP:USE1_InputTokenCount-Units`) name the model in the product name. Quantities are
/// `usage_amount × pricing_unit` (`1K tokens` = 1,000).
public enum BedrockPlugin: VendorPlugin {
    public static let id = "aws-bedrock"
    public static let name = "AWS Bedrock (CUR)"
    public static let rateCardName = "aws-bedrock"
    public static let tenantKeys: Set<String> = ["usage_account_id"]
    public static let providerNames: Set<String> = ["amazon web services", "aws", "amazon"]
    public static let parsers: [any InvoiceParser] = [BedrockCURParser()]
    public static let tokenTypeMap: [String: TokenType] = [
        "input-tokens": .input, "output-tokens": .output, "cache-read-input-token-count": .cacheRead,
        "cache-write-input-token-count": .cacheWrite, "InputTokenCount": .input, "OutputTokenCount": .output,
        "CacheReadInputTokenCount": .cacheRead, "CacheWriteInputTokenCount": .cacheWrite, "input_tokens": .input, "output_tokens": .output,
    ]

    public static let examples: [PluginExample] = [
        PluginExample(
            name: "aws-bedrock: CUR 2.0 with regional, cross-region, cache and Marketplace rows, tax and a credit",
            file: InvoiceFile(name: "cur2_2026_05.csv", bytes: PackageResources.cur2_2026_05_csv), parserID: "cur-csv",
            expectedLineCount: 7,
            expectedAmounts: [
                "claude-sonnet-4-6/input": "3.703701", "claude-sonnet-4-6/cache_read": "2.7", "claude-sonnet-4-6/output": "15",
                "claude-sonnet-4-5/input": "6", "amazon-nova-pro/output": "3.2", "(not usage)": "-0.5",
            ],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: [
                "claude-sonnet-4-6/input": 1_234_567, "claude-sonnet-4-6/cache_read": 9_000_000,
                "claude-sonnet-4-6/output": 1_000_000, "claude-sonnet-4-5/input": 2_000_000, "amazon-nova-pro/output": 1_000_000,
            ]),
        PluginExample(
            name: "aws-bedrock: legacy CUR columns read the same",
            file: InvoiceFile(name: "cur_legacy.csv", bytes: PackageResources.cur_legacy_csv), parserID: "cur-csv",
            expectedLineCount: 2, expectedAmounts: ["claude-haiku-4-5/input": "0.5", "claude-haiku-4-5/output": "2.5"],
            expectedQuantities: ["claude-haiku-4-5/input": 500_000, "claude-haiku-4-5/output": 500_000]),
        PluginExample(
            name:
                "aws-bedrock: geographic profile (+10%), global profile, a flex line with its stated tokens, a usage refund set aside; the meter writes profile ids",
            file: InvoiceFile(name: "cur2_profiles_2026_05.csv", bytes: PackageResources.cur2_profiles_2026_05_csv), parserID: "cur-csv",
            expectedLineCount: 4,
            expectedAmounts: ["claude-sonnet-4-6/input": "6", "claude-sonnet-4-6/output": "0.75"],
            expectedQuantities: ["claude-sonnet-4-6/input": 1_900_000, "claude-sonnet-4-6/output": 100_000],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["claude-sonnet-4-6/input": 2_000_000, "claude-sonnet-4-6/output": 100_000],
            expectedUnmapped: ["refund": "-0.3"],
            meterModelIDs: ["claude-sonnet-4-6": "us.anthropic.claude-sonnet-4-6-v1:0"]),
        PluginExample(
            name: "aws-bedrock: a missing cost column is refused naming it",
            file: InvoiceFile(name: "cur_wrong_columns.csv", bytes: PackageResources.cur_wrong_columns_csv), parserID: "cur-csv",
            expectedError: "cur_wrong_columns.csv:1: field 'line_item_unblended_cost'"),
    ]
}

struct BedrockCURParser: InvoiceParser {
    let id = "cur-csv"
    let format = InvoiceFormat.csv

    static let usageType = ["line_item_usage_type", "lineItem/UsageType"]
    static let cost = ["line_item_unblended_cost", "lineItem/UnblendedCost"]
    static let amount = ["line_item_usage_amount", "lineItem/UsageAmount"]
    static let unit = ["pricing_unit", "pricing/unit"]
    static let type = ["line_item_line_item_type", "lineItem/LineItemType"]
    static let start = ["line_item_usage_start_date", "lineItem/UsageStartDate"]
    static let end = ["line_item_usage_end_date", "lineItem/UsageEndDate"]
    static let currency = ["line_item_currency_code", "lineItem/CurrencyCode"]
    static let product = ["line_item_product_code", "lineItem/ProductCode"]
    static let productName = ["product_product_name", "product/ProductName", "product_name"]
    /// A tag cell as its pairs, in order: CUR 2.0's `resource_tags` is a JSON map whose keys may
    /// come in any order.
    static func tags(_ cell: String) -> String {
        guard cell.hasPrefix("{"), case let .object(members)? = try? JSONParser.parse(cell) else { return cell }
        return members.map { "\($0.0)=\($0.1.stringValue ?? "")" }.sorted().joined(separator: "\u{1}")
    }

    /// The columns that say which charge a row is, whatever delivery it came in.
    static let chargeColumns = [
        usageType, type, product, ["line_item_usage_account_id", "lineItem/UsageAccountId"], ["line_item_operation", "lineItem/Operation"],
        ["line_item_resource_id", "lineItem/ResourceId"], ["line_item_iam_principal"],
    ]

    func sniff(_ file: InvoiceFile) -> Bool {
        // Columns are read whatever their case; so is the file recognized (an upper-cased header was refused).
        guard let h = file.headerLine?.lowercased() else { return false }
        return h.contains("line_item_usage_type") || h.contains("lineitem/usagetype")
    }

    static let pattern = try! NSRegularExpression(
        pattern: "^([A-Z]{2,4}[0-9]?)-(.+?)-(input-tokens|output-tokens|cache-read-input-token-count|cache-write-input-token-count)(-.*)?$")
    /// The model of a Provisioned Throughput usage type (`USE1-Claude4.6Sonnet-ProvisionedThroughput-ModelUnits`,
    /// `USE1-ProvisionedThroughput-Claude4.6Sonnet-NoCommit`): "" when it names none; nil when it is no such charge.
    static func provisionedThroughput(_ usageType: String) -> String? {
        let joined = usageType.lowercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "")
        guard joined.contains("provisionedthroughput") || joined.contains("modelunit") else { return nil }
        let markers = ["provisioned", "throughput", "modelunit", "nocommit", "commit", "hour", "unit"]
        return usageType.split(separator: "-").dropFirst().map(String.init).filter { p in
            let l = p.lowercased()
            return !markers.contains { l.hasPrefix($0) } && !l.contains("month") && !l.contains("commit")
        }.joined(separator: "-")
    }

    static let marketplace = try! NSRegularExpression(
        pattern:
            "^([A-Z]{2,4}[0-9]?)-MP:[A-Z0-9]+_(InputTokenCount|OutputTokenCount|CacheReadInputTokenCount|CacheWriteInputTokenCount|input_tokens|output_tokens)(_[A-Za-z_]+)?-Units$"
    )

    /// Whether a usage type no pattern reads still bills a model's inference tokens: it names
    /// tokens, on Bedrock or a Marketplace model, and is no model customization (training tokens).
    static func inferenceTokens(_ usageType: String, product: String?) -> Bool {
        let lower = usageType.lowercased()
        return lower.contains("token") && !lower.contains("custom") && !lower.contains("train")
            && (usageType.contains("-MP:") || product == "AmazonBedrock")
    }

    static func groups(_ re: NSRegularExpression, _ s: String) -> [String?]? {
        guard let m = re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) else { return nil }
        return (1..<m.numberOfRanges).map { i in Range(m.range(at: i), in: s).map { String(s[$0]) } }
    }

    /// The labels a usage type's suffix carries. `…-cross-region-global` is a global inference
    /// profile, `…-cross-region` alone a geographic one (us., eu.); what is left is the service
    /// tier (`flex`, `priority`, `batch`, in any case). A suffix no card prices
    /// (`-latency-optimized`, `-reserved`) is a tier too, so its line is never priced at the base
    /// rate (`no_rate_for_tier`): dropped, a 1.25× line read from money made a conclusive
    /// correction of tokens never used (tester P).
    static func suffixLabels(_ suffix: String) -> [String: String] {
        var parts = suffix.lowercased().split(separator: "-").map(String.init)
        var labels: [String: String] = [:]
        if let i = parts.firstIndex(of: "cross"), i + 1 < parts.count, parts[i + 1] == "region" {
            parts.removeSubrange(i...(i + 1))
            if let g = parts.firstIndex(of: "global") {
                parts.remove(at: g)
                labels["routing"] = "global"
            } else {
                labels["routing"] = "geo"
            }
        }
        if !parts.isEmpty {
            labels["service_tier"] = parts.joined(separator: "-")
        } else if labels.isEmpty, !suffix.isEmpty {
            // A suffix of hyphens alone (`…-output-tokens-`) is no tier the plugin knows either.
            labels["service_tier"] = suffix
        }
        return labels
    }

    static func scale(_ unit: String?) -> Decimal? {
        switch unit?.lowercased() {
        case "1k tokens"?: return 1000
        case "1m tokens"?: return 1_000_000
        // Marketplace token meters count single tokens (`…_InputTokenCount-Units`).
        case "tokens"?, "token"?, "units"?: return 1
        default: return nil
        }
    }

    /// CUR restates the month as it fills, so its billing period columns say nothing about how much
    /// of the month is in the file: coverage is the span of the rows' usage dates.
    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        let table = try CSVTable.read(file, required: [Self.usageType, Self.cost, Self.start])
        let judgesRepeats = table.has("identity_line_item_id") || table.has("identity/LineItemId")
        // Tags split one principal's usage of a usage type and hour into rows (session tags). Cost
        // categories are worked out from the other columns (and restated when their rules are
        // edited), so they tell nothing apart.
        let tagColumns = table.header.filter { h in
            let c = h.lowercased()
            return c.hasPrefix("resource_tags") || c.hasPrefix("resourcetags/")
        }.sorted()
        var lines = try table.rows.map { row in
            guard let costText = row.cell(Self.cost), let cost = ExactDecimal.parseNumber(costText) else {
                throw InvoiceError(
                    file: file.name, line: row.line, field: Self.cost[0], ExactDecimal.refusal(row.cell(Self.cost) ?? "", what: "a decimal amount"))
            }
            let lineType = row.cell(Self.type) ?? "Usage"
            let usageType = row.cell(Self.usageType) ?? ""
            var model: String?, tokenClass: String?, labels: [String: String] = [:]
            if let g = Self.groups(Self.pattern, usageType) {
                model = g[1]
                tokenClass = g[2]
                labels["region_code"] = g[0]
                if let suffix = g[3] { labels.merge(Self.suffixLabels(suffix)) { $1 } }
            } else if let g = Self.groups(Self.marketplace, usageType) {
                model = row.cell(Self.productName)
                tokenClass = g[1]
                labels["region_code"] = g[0]
                if g[2]?.lowercased().contains("global") == true { labels["routing"] = "global" }
            }
            var quantity: Int64?
            if tokenClass != nil, let block = Self.scale(row.cell(Self.unit)) {
                quantity = try row.tokens(Self.amount, times: block, file: file.name)
            }
            // A refund of token usage takes its tokens back; a refund with no usage amount is money only.
            let isRefund = lineType == "Refund" && tokenClass != nil && (quantity ?? 0) != 0
            if isRefund, let q = quantity { quantity = q > 0 ? -q : q }
            // Money given back on a token usage type with no tokens stated: usage was billed wrong by
            // an amount nobody priced. Kept as usage (money only), which holds its model
            // (`usage_refund`); "not usage", the doubled usage it corrects stood and was proposed.
            let moneyBack = lineType == "Refund" && tokenClass != nil && !isRefund && cost < 0
            if moneyBack { quantity = nil }
            var attribution: [String: String] = [:]
            for (k, names) in [
                ("usage_account_id", ["line_item_usage_account_id", "lineItem/UsageAccountId"]),
                ("iam_principal", ["line_item_iam_principal"]), ("resource_id", ["line_item_resource_id", "lineItem/ResourceId"]),
            ] {
                if let v = row.cell(names) { attribution[k] = v }
            }
            var nonUsage: String?
            if let capacityModel = Self.provisionedThroughput(usageType) {
                // Model units by the hour: tokens served on them are on no token line.
                nonUsage = "capacity:provisioned_throughput"
                model = capacityModel.isEmpty ? nil : capacityModel
            } else if !["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"].contains(lineType) && !isRefund && !moneyBack {
                nonUsage = "not_usage:\(lineType.lowercased())"
            } else if tokenClass == nil, !Self.inferenceTokens(usageType, product: row.cell(Self.product)) {
                nonUsage = "not_usage:\(row.cell(Self.product) ?? "other")"
            } else if tokenClass == nil {
                // A Bedrock usage type of inference tokens neither form reads (a region or class
                // spelt another way) stays usage: of the Marketplace product's model (its token
                // type unread), else of no model (unplaced); either holds downward corrections,
                // where as not usage its money left a model's cell short.
                if usageType.contains("-MP:") { model = row.cell(Self.productName) }
            }
            var line = InvoiceLine(
                location: "\(file.name):\(row.line)", vendorModel: model, vendorTokenType: tokenClass,
                tokenType: tokenClass.flatMap { BedrockPlugin.tokenTypeMap[$0] }, amount: cost, amountScale: ExactDecimal.scale(of: costText),
                currency: row.cell(Self.currency) ?? "USD", quantity: nonUsage == nil ? quantity : nil,
                date: try row.timestamp(Self.start, file: file.name), end: try row.optionalTimestamp(Self.end, file: file.name),
                labels: labels, attribution: attribution, nonUsageReason: nonUsage, description: usageType)
            line.isCorrection = isRefund
            line.isRefund = isRefund
            if let idColumn = ["identity_line_item_id", "identity/LineItemId"].first(where: table.has) {
                line.lineItemID = row.cell(idColumn)
                // Ids of a legacy CUR and a CUR 2.0, or of files with other tag columns (a tag
                // activated mid-month adds one), are never one delivery's: part files share them.
                line.lineItemScheme = ([idColumn] + tagColumns.map { $0.lowercased() }).joined(separator: "|")
                // What the charge is, by name (not the row: `bill_invoice_id` is empty until the
                // bill is final, columns move between deliveries, amounts are restated).
                // Dates as read, so a legacy CUR and a CUR 2.0 of the same charge agree.
                var hasher = Hasher()
                hasher.combine(line.date)
                hasher.combine(line.end)
                for names in Self.chargeColumns { hasher.combine(row.cell(names)) }
                for column in tagColumns {
                    hasher.combine(column.lowercased())
                    hasher.combine(row.cell(column).map(Self.tags))
                }
                line.chargeRow = hasher.finalize()
            }
            // Identical rows are one charge listed twice only when the export keeps line-item ids
            // (a CUR with columns picked away can hold two accounts' identical rows): held then.
            return line.withSourceRow(row.fingerprint, mayRepeat: !judgesRepeats)
        }
        // One charge under two ids in one file (two deliveries pasted together: +16,500,000 was
        // proposed) is no charge one can be sure of: its rows hold their model (`identical_rows`).
        // (The same id twice is one row listed twice, refused as such.)
        var ids: [Int: Set<String>] = [:]
        for line in lines { if let c = line.chargeRow { ids[c, default: []].insert(line.lineItemID ?? "") } }
        for i in lines.indices {
            if let c = lines[i].chargeRow, ids[c, default: []].count > 1 { lines[i] = lines[i].withSourceRow(c, mayRepeat: true) }
        }
        if !judgesRepeats {
            // Without ids, a second pull pasted in repeats a charge with its cost restated or its
            // dates written another way: not the same row, so it was read as a second charge
            // (+3,342,230 on an exact meter). Rows of one span, usage type, account, operation,
            // resource, principal, tags and token count hold their cell as one charge twice.
            let charges = zip(table.rows, lines).map { row, line in
                var hasher = Hasher()
                hasher.combine(line.date)
                hasher.combine(line.end)
                hasher.combine(line.quantity)
                for names in Self.chargeColumns { hasher.combine(row.cell(names)) }
                for column in tagColumns { hasher.combine(row.cell(column).map(Self.tags)) }
                return hasher.finalize()
            }
            lines = InvoiceLine.markingRepeatedCharges(lines, charges: charges)
        }
        return ParsedInvoice(lines: lines)
    }
}
