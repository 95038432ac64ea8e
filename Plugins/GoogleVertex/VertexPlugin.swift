import ExactJSON
import Foundation
import Metering
import ReconCore

/// Google Cloud Billing export for Vertex AI / Gemini, as flattened CSV or newline-delimited JSON.
/// Model and token class live in the SKU description (`Gemini 2.5 Flash GA Text Input -
/// Predictions`); token counts are `usage.amount` in `count`; credits are separate negative amounts
/// kept as unmapped lines; windows are hourly.
public enum VertexPlugin: VendorPlugin {
    public static let id = "google-vertex"
    public static let name = "Google Vertex AI (Cloud Billing export)"
    public static let rateCardName = "google-vertex"
    /// The project by each of its names, each a tenant key of its own: an export's query may keep
    /// the number or the name and drop the id (read as given, another project's usage was billed
    /// to the account reconciled), and two files naming one project two ways are not two tenants.
    public static let tenantKeys: Set<String> = Set(projectFields.map { "project_\($0)" })
    static let projectFields = ["id", "number", "name"]
    public static let providerNames: Set<String> = ["google cloud", "google", "google cloud platform", "gcp"]
    public static let parsers: [any InvoiceParser] = [VertexNDJSONParser(), VertexCSVParser()]
    public static let tokenTypeMap: [String: TokenType] = ["input": .input, "output": .output, "cache_read": .cacheRead]

    /// `Gemini 2.5 Flash GA Thinking Text Output - Predictions` → ("Gemini 2.5 Flash", "output", labels).
    /// Read whatever its case: a lower-cased export's token SKUs were "not usage".
    static func sku(_ description: String) -> (model: String, tokenClass: String, labels: [String: String])? {
        var labels: [String: String] = [:]
        let d = description
        let lower = d.lowercased()
        if ["caching storage", "grounding", "provisioned throughput", "tuning", "training"].contains(where: lower.contains) {
            return nil
        }
        let words = Set(lower.split { !$0.isLetter && !$0.isNumber }.map(String.init))
        // Tiers as parts of words too (`BatchPredictions`): a tier missed is priced at the base rate.
        if lower.contains("batch") { labels["service_tier"] = "batch" }
        if lower.contains("priority") { labels["service_tier"] = "priority" }
        if lower.contains("flex") { labels["service_tier"] = "flex" }
        // Long context however it is written (`(Long)`, `Long Context`, `- Long`, `>200K`): other
        // spellings were priced at the ≤200k rate, and money-only lines read twice their tokens.
        if words.contains("long") || ["longcontext", ">200k", "> 200k"].contains(where: lower.contains) { labels["context"] = "long" }
        // "Gemini 2.5 Flash Image Output": a modality's tokens have their own prices; the label
        // makes a card without them leave the line unpriced (its cell held), never at the text
        // rate (image output was read as text output, and +310,000 proposed).
        for modality in ["image", "audio", "video"] where words.contains(modality) { labels["modality"] = modality }
        let tokenClass: String
        if words.contains("character") || words.contains("characters") {
            // Billed by the character, not the token: the model's usage of an unread class.
            tokenClass = ""
        } else if !words.isDisjoint(with: ["caching", "cached", "cache"]),
            words.isDisjoint(with: ["non", "miss", "misses"]), !lower.contains("noncached"), !lower.contains("uncached")
        {
            // Cached input however it is written (`Caching`, `Cached`, `Cache`): `Cached Text Input`
            // was read as input, and 12,400,000 cache reads proposed as lost input (tester P). A
            // cache line naming no input (a write, or a class unread) is the model's usage of an
            // unread class: it holds the model's corrections rather than being priced as input.
            // `Non-Cached Input` and `Cache Miss Input` are input, by the branch below (read as
            // cache reads, money-only lines made a −12,400,000 correction: tester P2).
            tokenClass = words.contains("input") && words.isDisjoint(with: ["write", "writes", "creation"]) ? "cache_read" : ""
        } else if words.contains("output") {
            tokenClass = "output"
        } else if words.contains("input") {
            tokenClass = "input"
        } else if lower.hasPrefix("gemini ") || lower.hasPrefix("claude ") {
            // A model's SKU naming no token class (`Gemini 2.5 Flash Live Tokens`): its usage of an
            // unread class, which holds the model's over-metering corrections; "not usage", its
            // money left the vendor's side short beside a meter counting those tokens.
            tokenClass = ""
        } else {
            return nil
        }
        var cut = d.endIndex
        for marker in [
            " GA ", " Global ", " Text ", " Thinking ", " Input", " Output", " Image", " Audio", " Video", " Batch", " Priority", " Flex", " Long",
            " (Long", " >", " Character", " Cached", " Caching", " Cache ",
            // Words qualifying the cache: without `GA` before them they stayed in the model's name.
            " Non-", " Non ", " Uncached", " Context Cach", " Explicit Cach", " Implicit Cach",
        ] {
            if let r = d.range(of: marker, options: .caseInsensitive), r.lowerBound < cut { cut = r.lowerBound }
        }
        let model = String(d[..<cut]).trimmingCharacters(in: .whitespaces)
        guard !model.isEmpty else { return nil }
        return (model, tokenClass, labels)
    }

    static func line(
        file: String, location: String, service: String?, sku: String?, cost: String?, currency: String?, amount: Decimal?,
        unit: String?, start: Timestamp, end: Timestamp?, costType: String?, project: [String: String],
        conversionRate: String? = nil, listCost: String? = nil
    ) throws -> InvoiceLine {
        guard let cost, let value = ExactDecimal.parseNumber(cost) else {
            throw InvoiceError(file: file, field: "cost", "\(location): '\(cost ?? "")' is not a number")
        }
        let isVertex = ["vertex ai", "gemini api"].contains(service?.lowercased() ?? "")
        let parsed = isVertex ? sku.flatMap(VertexPlugin.sku) : nil
        var quantity: Int64?
        if parsed != nil, let amount, Self.tokenUnits.contains((unit ?? "count").lowercased()) {
            guard let whole = ExactDecimal.wholeInt64(amount) else {
                throw InvoiceError(file: file, field: "usage.amount", "\(location): a token count must be whole, got \(amount)")
            }
            quantity = whole
        }
        // An adjustment of a token SKU (`USAGE_CORRECTION`) restates usage: it nets, and says neither
        // which usage it returns nor whether it was served, so it is held.
        let restates = costType == "adjustment" && parsed != nil && (quantity ?? 0) != 0
        if restates, let q = quantity, value < 0 { quantity = q > 0 ? -q : q }
        // A cost type the export does not document (a row cut to `regu`, a kind added later) on a
        // token SKU may be usage or give some back: a charge stays the model's usage of an unread
        // token class (its over-metering corrections held), money back is set aside like a refund
        // (the cell held). "Not usage", a cut `regular` row left the vendor's side short.
        // So is an adjustment of a token SKU stating no tokens, either way: money back holds the
        // model (`usage_refund`), money more its downward corrections; "not usage", the usage it
        // corrects stood and ±400,000 was proposed.
        let unreadKind =
            parsed != nil && value != 0 && (costType.map { !Self.costTypes.contains($0) } ?? false || (costType == "adjustment" && !restates))
        var nonUsage: String?
        var capacityModel: String?
        if isVertex, let sku, let r = sku.range(of: "Provisioned Throughput", options: .caseInsensitive) {
            // GSUs by the hour: tokens served on them are on no token SKU.
            nonUsage = "capacity:provisioned_throughput"
            let named = String(sku[..<r.lowerBound]).trimmingCharacters(in: .whitespaces)
            capacityModel = named.isEmpty ? nil : named
        } else if let costType, costType != "regular", !restates, !unreadKind {
            nonUsage = "not_usage:\(costType)"
        } else if parsed == nil {
            nonUsage = "not_usage:\(sku ?? service ?? "other")"
        }
        // cost ÷ currency_conversion_rate is the cost in US dollars (the rate the export itself used).
        var rate: Decimal?
        if let conversionRate, (currency ?? "USD") != "USD" {
            guard let r = ExactDecimal.parseNumber(conversionRate), r > 0 else {
                throw InvoiceError(file: file, field: "currency_conversion_rate", "\(location): '\(conversionRate)' is not a positive number")
            }
            rate = r
        }
        // cost_at_list: the list price, beside `cost` at the account's (negotiated) price.
        var list: Decimal?
        if let listCost {
            guard let l = ExactDecimal.parseNumber(listCost) else {
                throw InvoiceError(file: file, field: "cost_at_list", "\(location): '\(listCost)' is not a number")
            }
            list = l
        }
        let givesBack = unreadKind && value < 0
        // Tokens given back are a refund of them (the cell held); none stated, money only (the model).
        if givesBack { quantity = quantity.flatMap { $0 == 0 ? nil : ($0 > 0 ? -$0 : $0) } }
        var line = InvoiceLine(
            location: location, vendorModel: parsed?.model ?? capacityModel,
            vendorTokenType: unreadKind && !givesBack ? "\(parsed?.tokenClass ?? "") (cost_type \(costType ?? ""))" : parsed?.tokenClass,
            tokenType: unreadKind && !givesBack ? nil : parsed.flatMap { tokenTypeMap[$0.tokenClass] }, amount: value,
            amountScale: ExactDecimal.scale(of: cost),
            currency: currency ?? "USD", listAmount: list, quantity: nonUsage == nil && !(unreadKind && !givesBack) ? quantity : nil,
            date: start, end: end, labels: parsed?.labels ?? [:],
            attribution: project, nonUsageReason: nonUsage, description: sku)
        line.exchangeRate = rate
        line.isCorrection = restates
        line.isRefund = restates || givesBack
        return line
    }

    /// The export's documented `cost_type`s.
    static let costTypes: Set<String> = ["regular", "tax", "adjustment", "rounding error", "rounding_error"]

    /// `usage.unit` of a token count ("count" in the export, "token(s)" in some).
    static let tokenUnits: Set<String> = ["count", "tokens", "token"]

    /// `cost` is at the account's price (after a negotiated discount): token lines with neither a
    /// count nor `cost_at_list` may bill less than the card says without less usage. A row of
    /// `unit: "token"` read as money at a contract price 20 % below list proposed −6,200,000.
    static func moneyOnly(_ lines: [InvoiceLine]) -> String? {
        lines.contains { $0.vendorModel != nil && $0.isMoneyOnlyUsage }
            ? "token lines state money and no token count nor cost_at_list (cost is at the account's price, after any negotiated discount)"
            : nil
    }

    public static let examples: [PluginExample] = [
        PluginExample(
            name: "google-vertex: NDJSON export with thinking output, caching, storage and a credit",
            file: InvoiceFile(name: "vertex_export.json", bytes: PackageResources.vertex_export_json), parserID: "billing-export-ndjson",
            expectedLineCount: 5,
            expectedAmounts: [
                "gemini-2.5-flash/input": "0.3195", "gemini-2.5-flash/output": "2.5", "gemini-2.5-flash/cache_read": "0.03",
                "(not usage)": "-0.0450",
            ],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["gemini-2.5-flash/input": 1_065_000, "gemini-2.5-flash/output": 1_000_000, "gemini-2.5-flash/cache_read": 1_000_000]),
        PluginExample(
            name: "google-vertex: flattened CSV export",
            file: InvoiceFile(name: "vertex_export.csv", bytes: PackageResources.vertex_export_csv), parserID: "billing-export-csv",
            expectedLineCount: 3,
            expectedAmounts: ["gemini-2.5-pro/input": "1.25", "gemini-2.5-pro/output": "10", "(not usage)": "-1"],
            expectedQuantities: ["gemini-2.5-pro/input": 1_000_000, "gemini-2.5-pro/output": 1_000_000]),
        PluginExample(
            name: "google-vertex: billed in euros with the export's own currency_conversion_rate (no --fx needed)",
            file: InvoiceFile(name: "vertex_export_eur.json", bytes: PackageResources.vertex_export_eur_json), parserID: "billing-export-ndjson",
            expectedLineCount: 2,
            expectedAmounts: ["gemini-2.5-flash/input": "0.27", "gemini-2.5-flash/output": "4.5"],
            expectedQuantities: ["gemini-2.5-flash/input": 1_000_000, "gemini-2.5-flash/output": 2_000_000],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["gemini-2.5-flash/input": 1_000_000, "gemini-2.5-flash/output": 2_000_000],
            meterModelIDs: ["gemini-2.5-flash": "publishers/google/models/gemini-2.5-flash@001"]),
        PluginExample(
            name:
                "google-vertex: a contract price below list: stated counts (unit token) and cost_at_list give the volume, not cost; image output is no text output",
            file: InvoiceFile(name: "vertex_list_and_modality.json", bytes: PackageResources.vertex_list_and_modality_json),
            parserID: "billing-export-ndjson",
            expectedLineCount: 3,
            expectedAmounts: ["gemini-2.5-flash/input": "0.24", "gemini-2.5-flash/output": "2.30"],
            expectedQuantities: ["gemini-2.5-flash/input": 1_000_000, "gemini-2.5-flash/output": 10_000],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["gemini-2.5-flash/input": 1_000_000, "gemini-2.5-flash/output": 1_000_000],
            expectedUnmapped: ["no_rate_for_tier": "0.3"]),
        PluginExample(
            name: "google-vertex: a truncated NDJSON line is refused naming its line",
            file: InvoiceFile(name: "vertex_truncated.json", bytes: PackageResources.vertex_truncated_json), parserID: "billing-export-ndjson",
            expectedError: "vertex_truncated.json:2:"),
    ]
}

struct VertexNDJSONParser: InvoiceParser {
    let id = "billing-export-ndjson"
    let format = InvoiceFormat.json

    func sniff(_ file: InvoiceFile) -> Bool {
        let head = String(decoding: file.head, as: UTF8.self)
        return file.firstCharacter == "{" && head.contains("\"sku\"") && head.contains("\"usage_start_time\"")
    }

    /// The export is appended to as the month goes (and `invoice.month` names the month billed, not
    /// what has arrived), so coverage is the span of the rows' usage windows.
    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        var lines: [InvoiceLine] = []
        var restatements = VertexPlugin.Restatements()
        try file.jsonLines { lineNo, row in
            guard let startText = row["usage_start_time"]?.stringValue, let start = Timestamp(exportText: startText) else {
                throw InvoiceError(
                    file: file.name, line: lineNo, field: "usage_start_time", "must be an RFC 3339 timestamp (or BigQuery's `YYYY-MM-DD hh:mm:ss UTC`)")
            }
            // An end that is there but unread was dropped silently; it bounds the line's window.
            let endText = row["usage_end_time"]?.stringValue
            let end = try endText.map { text in
                guard let ts = Timestamp(exportText: text) else {
                    throw InvoiceError(
                        file: file.name, line: lineNo, field: "usage_end_time", "must be an RFC 3339 timestamp (or BigQuery's `YYYY-MM-DD hh:mm:ss UTC`)")
                }
                return ts
            }
            let amountText = row["usage"]?["amount"]?.decimalText
            let location = "\(file.name):\(lineNo)"
            var line = try VertexPlugin.line(
                file: file.name, location: location, service: row["service"]?["description"]?.stringValue,
                sku: row["sku"]?["description"]?.stringValue,
                cost: row["cost"]?.decimalText,
                currency: row["currency"]?.stringValue, amount: amountText.flatMap { ExactDecimal.parseNumber($0) },
                unit: row["usage"]?["unit"]?.stringValue, start: start,
                end: end, costType: row["cost_type"]?.stringValue,
                project: VertexPlugin.projectFields.reduce(into: [:]) { out, field in
                    out["project_\(field)"] = row["project"]?[field].flatMap { $0.stringValue ?? $0.decimalText }
                },
                conversionRate: row["currency_conversion_rate"]?.decimalText, listCost: row["cost_at_list"]?.decimalText)
            if line.amount == nil { line.amount = 0 }
            // Identical rows are one charge listed twice only in the export as written (its
            // export_time); a query's reduced columns can make two charges alike.
            line = line.withSourceRow(row.hashValue, mayRepeat: row["export_time"] == nil)
            if case let .object(cells) = row {
                restatements.add(
                    line: lines.count, row: JSONValue.object(cells.filter { $0.0 != "export_time" }).hashValue, exportTime: row["export_time"]?.stringValue)
            }
            lines.append(line)
            for (c, credit) in (row["credits"]?.arrayValue ?? []).enumerated() {
                guard case let .number(n)? = credit["amount"], let amount = ExactDecimal.parseNumber(n) else {
                    throw InvoiceError(file: file.name, line: lineNo, field: "credits[\(c)].amount", "must be a number")
                }
                lines.append(
                    InvoiceLine(
                        location: "\(location)#credits[\(c)]", vendorModel: nil, vendorTokenType: nil, tokenType: nil, amount: amount,
                        amountScale: ExactDecimal.scale(of: n), currency: row["currency"]?.stringValue ?? "USD", date: start,
                        nonUsageReason: "credit:\(credit["type"]?.stringValue ?? "credit")", description: credit["name"]?.stringValue))
            }
        }
        restatements.hold(&lines)
        return ParsedInvoice(lines: lines, amountsMayBeNet: VertexPlugin.moneyOnly(lines))
    }
}

struct VertexCSVParser: InvoiceParser {
    let id = "billing-export-csv"
    let format = InvoiceFormat.csv

    func sniff(_ file: InvoiceFile) -> Bool {
        guard let h = file.headerLine?.lowercased() else { return false }
        return (h.contains("sku_description") || h.contains("sku.description")) && h.contains("usage_start_time")
    }

    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        let table = try CSVTable.read(file, required: [["sku_description", "sku.description"], ["cost"], ["usage_start_time"]])
        let judgesRepeats = table.has("export_time")
        var lines: [InvoiceLine] = []
        var restatements = VertexPlugin.Restatements()
        for row in table.rows {
            let location = "\(file.name):\(row.line)"
            if judgesRepeats { restatements.add(line: lines.count, row: row.fingerprint(excluding: ["export_time"]), exportTime: row.cell("export_time")) }
            lines.append(
                try VertexPlugin.line(
                    file: file.name, location: location, service: row.cell(["service_description", "service.description"]),
                    sku: row.cell(["sku_description", "sku.description"]), cost: row.cell("cost"), currency: row.cell("currency"),
                    amount: try row.decimal(["usage_amount", "usage.amount"], file: file.name), unit: row.cell(["usage_unit", "usage.unit"]),
                    start: try row.timestamp(["usage_start_time"], file: file.name),
                    end: try row.optionalTimestamp(["usage_end_time"], file: file.name), costType: row.cell("cost_type"),
                    project: VertexPlugin.projectFields.reduce(into: [:]) { out, field in
                        out["project_\(field)"] = row.cell(["project_\(field)", "project.\(field)"])
                    },
                    conversionRate: row.cell("currency_conversion_rate"),
                    listCost: row.cell("cost_at_list")
                ).withSourceRow(row.fingerprint, mayRepeat: !judgesRepeats))
            if let credits = try row.decimal(["credits"], file: file.name), credits != 0 {
                lines.append(
                    InvoiceLine(
                        location: "\(location)#credits", vendorModel: nil, vendorTokenType: nil, tokenType: nil, amount: credits,
                        amountScale: ExactDecimal.scale(of: row.cell("credits")!), currency: row.cell("currency") ?? "USD",
                        date: try row.timestamp(["usage_start_time"], file: file.name), nonUsageReason: "credit"))
            }
        }
        restatements.hold(&lines)
        return ParsedInvoice(lines: lines, amountsMayBeNet: VertexPlugin.moneyOnly(lines))
    }
}

extension VertexPlugin {
    /// Rows alike in everything but `export_time`: the same usage exported again (a snapshot of the
    /// table appended to another, or restated) — not a second charge one can be sure of, nor one
    /// to drop. Both are kept and marked as rows that may repeat, so the run holds their model
    /// (`identical_rows`, with the places of the pair) instead of adding or refusing them.
    struct Restatements {
        private var exportTimes: [Int: Set<String>] = [:]
        private var linesOfRow: [Int: [Int]] = [:]

        mutating func add(line: Int, row: Int, exportTime: String?) {
            exportTimes[row, default: []].insert(exportTime ?? "")
            linesOfRow[row, default: []].append(line)
        }

        func hold(_ lines: inout [InvoiceLine]) {
            for (row, times) in exportTimes where times.count > 1 {
                for i in linesOfRow[row] ?? [] { lines[i] = lines[i].withSourceRow(row, mayRepeat: true) }
            }
        }
    }
}
