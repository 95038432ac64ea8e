import ExactJSON
import Foundation
import Metering
import ReconCore

/// `GET /v1/organizations/cost_report` (grouped by description): daily buckets, amounts as
/// decimal strings in cents. One page object, or an array of pages.
struct AnthropicCostReportParser: InvoiceParser {
    let id = "admin-cost-report"
    let format = InvoiceFormat.json

    func sniff(_ file: InvoiceFile) -> Bool {
        guard file.firstCharacter == "{" || file.firstCharacter == "[" else { return false }
        let head = String(decoding: file.head, as: UTF8.self)
        // What an Admin API cost page is made of: rows with token_type / cost_type and an amount, or
        // buckets (starting_at, results) with no rows yet, or an empty page — which carries nothing
        // but data, has_more and next_page. The usage report is the one with token counts.
        let bucketsOnly = head.contains("\"starting_at\"") && head.contains("\"results\"") && !head.contains("_tokens\":")
        return Self.isEmptyPage(file) || bucketsOnly
            || head.contains("\"data\"") && head.contains("\"amount\"") && (head.contains("\"token_type\"") || head.contains("\"cost_type\""))
    }

    /// A page (or an array of pages) with no buckets: an object holding only `data: []`,
    /// `has_more` and `next_page`.
    static func isEmptyPage(_ file: InvoiceFile) -> Bool {
        guard file.bytes.count < 4096, let root = try? file.json() else { return false }
        let pages = root.arrayValue ?? [root]
        return !pages.isEmpty
            && pages.allSatisfy { page in
                guard let members = page.objectValue, page["data"] == .array([]) else { return false }
                return members.allSatisfy { ["data", "has_more", "next_page"].contains($0.0) }
            }
    }

    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        var lines: [InvoiceLine] = []
        var coverage = InvoiceCoverage()
        let pages = try file.forEachPagedElement(dataRequired: "a cost report has a \"data\" array of daily buckets") { at, bucket in
            let date = try AnthropicJSON.timestamp(bucket["starting_at"], file: file.name, field: "\(at).starting_at")
            let end = try AnthropicJSON.optionalTimestamp(bucket["ending_at"], file: file.name, field: "\(at).ending_at")
            try coverage.declare(from: date, to: end, file: file.name, field: "\(at).ending_at")
            guard case let .array(results)? = bucket["results"] else {
                throw InvoiceError(file: file.name, field: "\(at).results", "each bucket has a \"results\" array")
            }
            for (r, row) in results.enumerated() {
                let field = "\(at).results[\(r)]"
                guard case .object = row else { throw InvoiceError(file: file.name, field: field, "a result must be an object") }
                guard let amountText = row["amount"]?.decimalText else {
                    throw InvoiceError(
                        file: file.name, field: "\(field).amount",
                        "the amount must be a decimal string in cents, got \(row["amount"].map { JSONWriter.write($0) } ?? "nothing")")
                }
                guard let cents = ExactDecimal.parse(amountText) else {
                    throw InvoiceError(file: file.name, field: "\(field).amount", ExactDecimal.refusal(amountText))
                }
                let costType = row["cost_type"]?.stringValue
                let model = row["model"]?.stringValue
                let vendorTokenType = row["token_type"]?.stringValue
                var nonUsage: String?
                // A row naming a token type is tokens whatever its cost_type: one not read (a kind
                // added later, a cut cell) stays the model's usage of an unread token type, which
                // holds its downward corrections; as not usage its money left the cell short.
                let unreadKind = costType.map { $0 != "tokens" } ?? false && vendorTokenType != nil
                if let costType, costType != "tokens", !unreadKind {
                    nonUsage = "not_usage:\(costType)"
                } else if model == nil && vendorTokenType == nil {
                    nonUsage = "not_usage"
                }
                // Every label the card prices by, speed among them (fast mode at its own price).
                let labels = AnthropicPlugin.labels(of: row)
                var attribution: [String: String] = [:]
                if let w = row["workspace_id"]?.stringValue { attribution["workspace_id"] = w }
                // The analytics cost report's list_amount: the same usage at list price (cents).
                var listAmount: Decimal?
                if let listText = row["list_amount"]?.decimalText {
                    guard let list = ExactDecimal.parse(listText) else {
                        throw InvoiceError(file: file.name, field: "\(field).list_amount", ExactDecimal.refusal(listText))
                    }
                    listAmount = list / 100
                }
                var line = InvoiceLine(
                    location: "\(file.name)#\(field)", vendorModel: model,
                    vendorTokenType: unreadKind ? "\(vendorTokenType ?? "") (cost_type \(costType ?? ""))" : vendorTokenType,
                    tokenType: unreadKind ? nil : vendorTokenType.flatMap { AnthropicPlugin.tokenTypeMap[$0] },
                    amount: cents / 100, amountScale: ExactDecimal.scale(of: amountText) + 2,
                    currency: row["currency"]?.stringValue ?? "USD", listAmount: listAmount, date: date, end: end, labels: labels,
                    attribution: attribution,
                    nonUsageReason: nonUsage, description: row["description"]?.stringValue)
                line.sourceRow = row.hashValue
                lines.append(line)
            }
        }
        coverage.addPages(pages)
        // What the organization is charged: after a negotiated discount where it has one (the
        // analytics report says so of its `amount`, and gives `list_amount` beside it). A short
        // total read from it alone may be the discount.
        let usage = lines.filter { $0.nonUsageReason == nil && ($0.amount ?? 0) != 0 }
        let withoutList = usage.filter { $0.listAmount == nil }.count
        return ParsedInvoice(
            lines: lines, coverage: coverage,
            amountsMayBeNet: withoutList == 0
                ? nil
                : "a cost report's amounts are what the organization is charged, after any negotiated discount, and "
                    + (withoutList == usage.count ? "it states no list_amount" : "\(withoutList) of its \(usage.count) usage rows state no list_amount"))
    }
}

/// `GET /v1/organizations/usage_report/messages`: token counts per bucket, used as stated quantities.
struct AnthropicUsageReportParser: InvoiceParser {
    let id = "admin-usage-report"
    let format = InvoiceFormat.json

    func sniff(_ file: InvoiceFile) -> Bool {
        guard file.firstCharacter == "{" || file.firstCharacter == "[" else { return false }
        let head = String(decoding: file.head, as: UTF8.self)
        return head.contains("\"data\"") && head.contains("uncached_input_tokens\":")
    }

    static let fields: [(path: [String], name: String)] = [
        (["uncached_input_tokens"], "uncached_input_tokens"),
        (["output_tokens"], "output_tokens"),
        (["cache_read_input_tokens"], "cache_read_input_tokens"),
        (["cache_creation", "ephemeral_5m_input_tokens"], "cache_creation.ephemeral_5m_input_tokens"),
        (["cache_creation", "ephemeral_1h_input_tokens"], "cache_creation.ephemeral_1h_input_tokens"),
    ]

    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        var lines: [InvoiceLine] = []
        var coverage = InvoiceCoverage()
        let pages = try file.forEachPagedElement(dataRequired: "a usage report has a \"data\" array of buckets") { at, bucket in
            let date = try AnthropicJSON.timestamp(bucket["starting_at"], file: file.name, field: "\(at).starting_at")
            let end = try AnthropicJSON.optionalTimestamp(bucket["ending_at"], file: file.name, field: "\(at).ending_at")
            try coverage.declare(from: date, to: end, file: file.name, field: "\(at).ending_at")
            for (r, row) in (bucket["results"]?.arrayValue ?? []).enumerated() {
                let field = "\(at).results[\(r)]"
                let labels = AnthropicPlugin.labels(of: row)
                var attribution: [String: String] = [:]
                if let w = row["workspace_id"]?.stringValue { attribution["workspace_id"] = w }
                if let k = row["api_key_id"]?.stringValue { attribution["api_key_id"] = k }
                for (path, name) in Self.fields {
                    var value: JSONValue? = row
                    for p in path { value = value?[p] }
                    guard let value, value != .null else { continue }
                    guard let q = value.exactInt64, q >= 0 else {
                        throw InvoiceError(file: file.name, field: "\(field).\(name)", "a token count must be a whole number ≥ 0")
                    }
                    guard q > 0 else { continue }
                    lines.append(
                        InvoiceLine(
                            location: "\(file.name)#\(field).\(name)", vendorModel: row["model"]?.stringValue, vendorTokenType: name,
                            tokenType: AnthropicPlugin.tokenTypeMap[name], amount: nil, amountScale: 0, currency: "USD", quantity: q,
                            date: date, end: end, labels: labels, attribution: attribution,
                            nonUsageReason: row["model"]?.stringValue == nil ? "no_model" : nil
                        ).withSourceRow(row.hashValue))
                }
            }
        }
        coverage.addPages(pages)
        return ParsedInvoice(lines: lines, coverage: coverage)
    }
}

/// Shared JSON helpers for the Admin API exports.
enum AnthropicJSON {
    /// One page object, or an array of pages (several API responses saved together).
    static func optionalTimestamp(_ v: JSONValue?, file: String, field: String) throws -> Timestamp? {
        guard let v, v != .null else { return nil }
        return try timestamp(v, file: file, field: field)
    }

    static func timestamp(_ v: JSONValue?, file: String, field: String) throws -> Timestamp {
        guard let s = v?.stringValue, let t = Timestamp(rfc3339: s) else {
            throw InvoiceError(file: file, field: field, "must be an RFC 3339 timestamp")
        }
        return t
    }
}

extension AnthropicPlugin {
    /// The tier and modifier labels of a cost or usage report row: the cost report read none of
    /// `speed`, so fast mode's money was turned into tokens at the base price.
    static func labels(of row: JSONValue) -> [String: String] {
        var labels: [String: String] = [:]
        if let c = contextWindow(row["context_window"]?.stringValue) { labels["context_window"] = c }
        // Values as the card writes them, in any letter case: `Batch` was a tier no card prices.
        if let s = row["service_tier"]?.stringValue { labels["service_tier"] = s.lowercased() }
        if let g = row["inference_geo"]?.stringValue { labels["inference_geo"] = g.lowercased() }
        if let speed = row["speed"]?.stringValue { labels["speed"] = speed.lowercased() }
        return labels
    }
}
