import Foundation
import Metering
import ReconCore

/// The Console's cost export (`claude_api_cost_YYYY_MM.csv`): dollars, display model names, one
/// row per day × model × token type. Columns are matched by name, never by position.
struct AnthropicConsoleCostParser: InvoiceParser {
    let id = "console-cost-csv"
    let format = InvoiceFormat.csv

    /// Which charge a row is, however a second pull writes it: its day, model (a display name
    /// and an API id alike: `Claude Sonnet 4.5`, `claude-sonnet-4-5-20250929`), token and cost
    /// type, labels with base values left out (`standard` speed, `not_available` or `global` geo),
    /// workspace, and key (by id where there is one: a key renamed since keeps its id). Not its
    /// amounts, nor its key's status.
    static func charge(of line: InvoiceLine, model: String?, key: String?) -> Int {
        var hasher = Hasher()
        hasher.combine(line.date)
        var name = (model ?? "").lowercased().filter { $0.isLetter || $0.isNumber }
        if name.count > 8, name.suffix(8).allSatisfy(\.isNumber), name.suffix(8).hasPrefix("20") { name.removeLast(8) }
        hasher.combine(name)
        hasher.combine(line.vendorTokenType)
        hasher.combine(line.description)
        let base = ["speed": ["standard"], "inference_geo": ["not_available", "global"]]
        for (k, v) in line.labels.sorted(by: { $0.key < $1.key }) where !(base[k]?.contains(v) ?? false) {
            hasher.combine(k)
            hasher.combine(v)
        }
        hasher.combine(line.attribution["workspace"])
        hasher.combine(key)
        return hasher.finalize()
    }

    func sniff(_ file: InvoiceFile) -> Bool {
        guard let header = file.headerLine?.lowercased() else { return false }
        return header.contains("cost_usd") && header.contains("token_type") && header.contains("usage_date_utc")
    }

    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        let table = try CSVTable.read(file, required: [["usage_date_utc"], ["model"], ["token_type"], ["cost_usd"]])
        var lines: [InvoiceLine] = []
        var charges: [Int] = []
        for row in table.rows {
            func cell(_ name: String) -> String? { row.cell(name) }
            guard let dateText = cell("usage_date_utc"), let date = Timestamp(rfc3339: dateText + "T00:00:00Z") else {
                throw InvoiceError(file: file.name, line: row.line, field: "usage_date_utc", "must be a date written YYYY-MM-DD")
            }
            guard let costText = cell("cost_usd"), let cost = ExactDecimal.parseNumber(costText) else {
                throw InvoiceError(file: file.name, line: row.line, field: "cost_usd", ExactDecimal.refusal(cell("cost_usd") ?? "", what: "a decimal amount"))
            }
            var listAmount: Decimal?
            var listScale: Int?
            if let l = cell("list_price_usd") {
                guard let d = ExactDecimal.parseNumber(l) else {
                    throw InvoiceError(file: file.name, line: row.line, field: "list_price_usd", ExactDecimal.refusal(l, what: "a decimal amount"))
                }
                listAmount = d
                listScale = ExactDecimal.scale(of: l)
            }
            let costType = cell("cost_type")
            let model = cell("model")
            let vendorTokenType = cell("token_type")
            var nonUsage: String?
            // A row naming a token type is tokens whatever its cost_type (as in the cost report).
            let unreadKind = costType.map { $0 != "token" } ?? false && vendorTokenType != nil
            if let costType, costType != "token", !unreadKind {
                nonUsage = "not_usage:\(costType)"
            } else if model == nil {
                nonUsage = "not_usage"
            }
            var labels: [String: String] = [:]
            if let c = AnthropicPlugin.contextWindow(cell("context_window")) { labels["context_window"] = c }
            // `message` (and `standard`) is the base price, `batch` half; any other usage type is
            // a tier the card must price itself (never at the base rate: `no_rate_for_tier`).
            if let usageType = cell("usage_type")?.lowercased(), !["message", "standard"].contains(usageType) {
                labels["service_tier"] = usageType
            }
            // In any letter case, as the cost report reads them.
            if let g = cell("inference_geo") { labels["inference_geo"] = g.lowercased() }
            if let speed = cell("speed") { labels["speed"] = speed.lowercased() }
            var attribution: [String: String] = [:]
            if let w = cell("workspace") { attribution["workspace"] = w }
            if let k = cell("api_key_id") { attribution["api_key_id"] = k }
            if let k = cell("api_key") { attribution["api_key"] = k }
            var line = InvoiceLine(
                location: "\(file.name):\(row.line)", vendorModel: model,
                vendorTokenType: unreadKind ? "\(vendorTokenType ?? "") (cost_type \(costType ?? ""))" : vendorTokenType,
                tokenType: unreadKind ? nil : vendorTokenType.flatMap { AnthropicPlugin.tokenTypeMap[$0] }, amount: cost,
                amountScale: ExactDecimal.scale(of: costText), currency: "USD", listAmount: listAmount, date: date, labels: labels,
                attribution: attribution, nonUsageReason: nonUsage, description: costType)
            line.sourceRow = row.fingerprint
            line.listAmountScale = listScale
            charges.append(Self.charge(of: line, model: model, key: cell("api_key_id") ?? cell("api_key")))
            lines.append(line)
        }
        // Two pulls of the export pasted into one file repeat the overlapping days' rows with an
        // amount revised or a key archived since: one charge under two rows, no row the same
        // (+42,600,000 was proposed on an exact meter). Such rows hold their cell (`identical_rows`);
        // rows the same in every cell stay refused as a line listed twice.
        lines = InvoiceLine.markingRepeatedCharges(lines, charges: charges)
        // The export states no period: its days are what it covers. Its cost_usd is after any
        // discount; list_price_usd is what turns into tokens, and without it the volume may be short.
        return ParsedInvoice(
            lines: lines,
            amountsMayBeNet: !table.has("list_price_usd")
                ? "no list_price_usd column: cost_usd is after any discount"
                : lines.contains { $0.nonUsageReason == nil && $0.listAmount == nil }
                    ? "usage rows with an empty list_price_usd: their cost_usd is after any discount" : nil)
    }
}
