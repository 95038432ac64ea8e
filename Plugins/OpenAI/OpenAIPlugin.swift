import ExactJSON
import Foundation
import Metering
import ReconCore

/// OpenAI: the Costs API JSON (dollars as JSON numbers, read as the exact digits), the dashboard
/// cost CSV, and the Usage API JSON (token counts as stated quantities; `input_tokens` includes
/// cached tokens, so uncached input = input − cached − cache writes).
public enum OpenAIPlugin: VendorPlugin {
    public static let id = "openai"
    public static let name = "OpenAI"
    public static let rateCardName = "openai"
    public static let tenantKeys: Set<String> = ["project_id"]
    public static let providerNames: Set<String> = ["openai"]
    public static let parsers: [any InvoiceParser] = [OpenAICostsParser(), OpenAIUsageParser(), OpenAICostCSVParser()]
    public static let tokenTypeMap: [String: TokenType] = [
        "input": .input, "input_tokens": .input, "uncached input": .input, "cached input": .cacheRead, "cached_input": .cacheRead,
        "input_cached_tokens": .cacheRead, "output": .output, "output_tokens": .output, "cache write": .cacheWrite,
    ]

    /// Splits a `line_item` ("gpt-4o-2024-08-06, cached input", "priority | gpt-5.6, output, long context", "batch | …")
    /// into model, token class and labels; nil for non-token items ("web search tool calls"), a
    /// token class `tokenTypeMap` does not know kept as written.
    static func lineItem(_ item: String) -> (model: String, tokenClass: String, labels: [String: String])? {
        var text = item
        var labels: [String: String] = [:]
        if let bar = text.range(of: " | ") {
            labels["service_tier"] = String(text[..<bar.lowerBound]).lowercased()
            text = String(text[bar.upperBound...])
        }
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count >= 2 else { return nil }
        var model = parts[0]
        // "gpt-4o-2024-08-06 audio, input": a modality's tokens have their own prices; the label
        // makes a card without them leave the line unpriced (its cell held), never at the text rate.
        for modality in ["audio", "image", "text"] where model.hasSuffix(" " + modality) {
            model = String(model.dropLast(modality.count + 1))
            labels["modality"] = modality
        }
        var tokenClass = parts[1].lowercased()
        if tokenClass.hasPrefix("batch ") { labels["service_tier"] = "batch"; tokenClass = String(tokenClass.dropFirst(6)) }
        if parts.dropFirst(2).contains("long context") { labels["context"] = "long" }
        // A model's line whose token class is not known ("audio input"), or that says more than
        // is read ("input, <modifier>"), stays usage with that class as written: its token type
        // unknown holds the model's downward corrections. As not usage its money left the
        // vendor's side short, and the meter's tokens read as over-metering.
        let unread = parts.dropFirst(2).filter { $0.lowercased() != "long context" }
        if !unread.isEmpty { tokenClass = ([tokenClass] + unread.map { $0.lowercased() }).joined(separator: ", ") }
        return (model, tokenClass, labels)
    }

    public static let examples: [PluginExample] = [
        PluginExample(
            name: "openai: costs API JSON with cached input, batch and a tool-call line",
            file: InvoiceFile(name: "openai_costs_2026_05.json", bytes: PackageResources.openai_costs_2026_05_json), parserID: "costs-api",
            expectedLineCount: 5,
            expectedAmounts: [
                "gpt-4o-2024-08-06/input": "25", "gpt-4o-2024-08-06/cache_read": "1.25", "gpt-4o-2024-08-06/output": "20.00",
                "gpt-4o-mini-2024-07-18/input": "0.075", "(not usage)": "3.5",
            ],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: [
                "gpt-4o-2024-08-06/input": 10_000_000, "gpt-4o-2024-08-06/cache_read": 1_000_000,
                "gpt-4o-2024-08-06/output": 2_000_000, "gpt-4o-mini-2024-07-18/input": 1_000_000,
            ]),
        PluginExample(
            name: "openai: usage API JSON (input includes cached)",
            file: InvoiceFile(name: "openai_usage_2026_05.json", bytes: PackageResources.openai_usage_2026_05_json), parserID: "usage-api",
            expectedLineCount: 3,
            expectedQuantities: ["gpt-5-2025-08-07/input": 38072, "gpt-5-2025-08-07/cache_read": 8192, "gpt-5-2025-08-07/output": 60000]),
        PluginExample(
            name: "openai: dashboard cost CSV",
            file: InvoiceFile(name: "openai_cost_export.csv", bytes: PackageResources.openai_cost_export_csv), parserID: "dashboard-cost-csv",
            expectedLineCount: 3,
            expectedAmounts: ["gpt-4.1-2025-04-14/input": "2.0000000000", "gpt-4.1-2025-04-14/output": "0.8958740000000000", "(not usage)": "0.01"]),
        PluginExample(
            name: "openai: priority and flex priced at their tiers; a tier the card lacks (scale) never at base",
            file: InvoiceFile(name: "openai_costs_tiers_2026_05.json", bytes: PackageResources.openai_costs_tiers_2026_05_json), parserID: "costs-api",
            expectedLineCount: 3,
            expectedAmounts: ["gpt-4o-2024-08-06/input": "6.75", "gpt-5-2025-08-07/output": "5"],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["gpt-4o-2024-08-06/input": 1_000_000, "gpt-5-2025-08-07/output": 1_000_000],
            expectedUnmapped: ["no_rate_for_tier": "2.5"]),
        PluginExample(
            name: "openai: usage API layout with cache writes (input_tokens includes cached input and cache writes)",
            file: InvoiceFile(name: "openai_usage_cache_writes.json", bytes: PackageResources.openai_usage_cache_writes_json), parserID: "usage-api",
            expectedLineCount: 4,
            expectedQuantities: [
                "gpt-5.5-2026-04-23/input": 5000, "gpt-5.5-2026-04-23/cache_read": 3000, "gpt-5.5-2026-04-23/cache_write": 2000,
                "gpt-5.5-2026-04-23/output": 4000,
            ],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: [
                "gpt-5.5-2026-04-23/input": 5000, "gpt-5.5-2026-04-23/cache_read": 3000, "gpt-5.5-2026-04-23/cache_write": 2000,
                "gpt-5.5-2026-04-23/output": 4000,
            ]),
        PluginExample(
            name: "openai: an amount that is not a number is refused naming the field",
            file: InvoiceFile(name: "openai_costs_bad.json", bytes: PackageResources.openai_costs_bad_json), parserID: "costs-api",
            expectedError: "data[0].results[0].amount.value"),
    ]
}

extension OpenAIPlugin {
    /// Cost results without a quantity are what was billed: after a negotiated discount, or at a
    /// price the card does not have, a total below the meter is not over-metering.
    static func moneyOnly(_ lines: [InvoiceLine]) -> String? {
        lines.contains(where: \.isMoneyOnlyUsage)
            ? "its usage lines state money and no quantity (what was billed, after any negotiated discount)" : nil
    }
}

struct OpenAICostsParser: InvoiceParser {
    let id = "costs-api"
    let format = InvoiceFormat.json

    func sniff(_ file: InvoiceFile) -> Bool {
        let head = String(decoding: file.head, as: UTF8.self)
        return (file.firstCharacter == "{" || file.firstCharacter == "[") && head.contains("organization.costs.result")
    }

    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        var lines: [InvoiceLine] = []
        let coverage = try OpenAIJSON.buckets(file) { at, bucket, start, end in
            for (r, row) in (bucket["results"]?.arrayValue ?? []).enumerated() {
                let field = "\(at).results[\(r)]"
                guard case let .number(text)? = row["amount"]?["value"] ?? nil, let amount = ExactDecimal.parseNumber(text) else {
                    throw InvoiceError(file: file.name, field: "\(field).amount.value", "the amount must be a number of dollars")
                }
                let item = row["line_item"]?.stringValue
                let parsed = item.flatMap(OpenAIPlugin.lineItem)
                var quantity: Int64?
                // Scaled before it is made whole: 1234.678 thousand tokens are 1,234,678 tokens
                // (rounding first stated 1,235,000, a gap of its own); a count still not whole is refused.
                let scale: Decimal? =
                    switch row["quantity_unit"]?.stringValue {
                    case "tokens"?: 1
                    case "1000_tokens"?: 1000
                    default: nil
                    }
                if let scale, let text = row["quantity"]?.numberText {
                    guard let q = ExactDecimal.parseNumber(text), let tokens = ExactDecimal.wholeInt64(q * scale) else {
                        throw InvoiceError(
                            file: file.name, field: "\(field).quantity",
                            "\(text) \(row["quantity_unit"]?.stringValue ?? "") is not a whole number of tokens that fits 64 bits")
                    }
                    quantity = tokens
                }
                var attribution: [String: String] = [:]
                if let p = row["project_id"]?.stringValue { attribution["project_id"] = p }
                if let k = row["api_key_id"]?.stringValue { attribution["api_key_id"] = k }
                lines.append(
                    InvoiceLine(
                        location: "\(file.name)#\(field)", vendorModel: parsed?.model, vendorTokenType: parsed?.tokenClass,
                        tokenType: parsed.flatMap { OpenAIPlugin.tokenTypeMap[$0.tokenClass] }, amount: amount,
                        amountScale: ExactDecimal.scale(of: text), currency: (row["amount"]?["currency"]?.stringValue ?? "usd").uppercased(),
                        quantity: quantity, date: start, end: end, labels: parsed?.labels ?? [:], attribution: attribution,
                        // A result in tokens whose line item names no model (`input_tokens`) is
                        // some model's usage: unplaced, it holds downward corrections.
                        nonUsageReason: parsed == nil && scale == nil ? "not_usage" : nil, description: item
                    ).withSourceRow(row.hashValue))
            }
        }
        return ParsedInvoice(lines: lines, coverage: coverage, amountsMayBeNet: OpenAIPlugin.moneyOnly(lines))
    }
}

struct OpenAIUsageParser: InvoiceParser {
    let id = "usage-api"
    let format = InvoiceFormat.json

    func sniff(_ file: InvoiceFile) -> Bool {
        String(decoding: file.head, as: UTF8.self).contains("organization.usage.completions.result")
    }

    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        var lines: [InvoiceLine] = []
        let coverage = try OpenAIJSON.buckets(file) { at, bucket, start, end in
            for (r, row) in (bucket["results"]?.arrayValue ?? []).enumerated() {
                let field = "\(at).results[\(r)]"
                func count(_ name: String) throws -> Int64? {
                    guard let v = row[name], v != .null else { return nil }
                    guard let n = v.exactInt64, n >= 0 else { throw InvoiceError(file: file.name, field: "\(field).\(name)", "must be a whole number ≥ 0") }
                    return n
                }
                let input = try count("input_tokens") ?? 0
                let cached = try count("input_cached_tokens") ?? 0
                let writes = try count("input_cache_write_tokens") ?? 0
                // input_tokens includes cached input (and, in newer layouts, cache writes).
                guard input >= cached, input - cached >= writes else {
                    throw InvoiceError(
                        file: file.name, field: "\(field).input_tokens",
                        "input_tokens (\(input)) is less than the cached and cache-write tokens it includes (\(cached) + \(writes))")
                }
                let uncached = try count("input_uncached_tokens") ?? (input - cached - writes)
                var labels: [String: String] = [:]
                // The tier a row counts (a report grouped by it, or pulled for one), so money of a
                // tier no row counts is seen as such (`stated_quantities_omit_tiers`).
                if row["batch"] == .bool(true) {
                    labels["service_tier"] = "batch"
                } else if let tier = row["service_tier"]?.stringValue {
                    labels["service_tier"] = tier.lowercased()
                }
                var attribution: [String: String] = [:]
                if let p = row["project_id"]?.stringValue { attribution["project_id"] = p }
                if let k = row["api_key_id"]?.stringValue { attribution["api_key_id"] = k }
                for (name, q, type) in [
                    ("input_uncached_tokens", uncached, TokenType.input), ("input_cached_tokens", cached, .cacheRead),
                    ("input_cache_write_tokens", writes, .cacheWrite), ("output_tokens", try count("output_tokens") ?? 0, .output),
                ] where q > 0 {
                    lines.append(
                        InvoiceLine(
                            location: "\(file.name)#\(field).\(name)", vendorModel: row["model"]?.stringValue, vendorTokenType: name, tokenType: type,
                            amount: nil, amountScale: 0, currency: "USD", quantity: q, date: start, end: end, labels: labels,
                            attribution: attribution, nonUsageReason: row["model"]?.stringValue == nil ? "no_model" : nil
                        ).withSourceRow(row.hashValue))
                }
                // Audio tokens (and generated images) are priced apart from text, and whether
                // input_tokens and output_tokens include them changed between layouts (2025: text
                // only). A model with any is held for downward corrections (its usage of a token
                // type not read): a meter counting audio as input read as over-metering (−400,000
                // proposed). Image input is billed as text input, inside input_tokens: not held.
                for name in ["input_audio_tokens", "output_audio_tokens", "output_image_tokens"] {
                    guard let q = try count(name), q > 0 else { continue }
                    lines.append(
                        InvoiceLine(
                            location: "\(file.name)#\(field).\(name)", vendorModel: row["model"]?.stringValue, vendorTokenType: name, tokenType: nil,
                            amount: nil, amountScale: 0, currency: "USD", date: start, end: end, labels: labels,
                            attribution: attribution, nonUsageReason: row["model"]?.stringValue == nil ? "no_model" : nil
                        ).withSourceRow(row.hashValue))
                }
            }
        }
        return ParsedInvoice(lines: lines, coverage: coverage)
    }
}

struct OpenAICostCSVParser: InvoiceParser {
    let id = "dashboard-cost-csv"
    let format = InvoiceFormat.csv

    func sniff(_ file: InvoiceFile) -> Bool {
        guard let h = file.headerLine?.lowercased() else { return false }
        return h.contains("amount_value") && h.contains("start_time")
    }

    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        let table = try CSVTable.read(file, required: [["start_time"], ["amount_value"]])
        let lines = try table.rows.map { row in
            guard let text = row.cell("amount_value"), let amount = ExactDecimal.parseNumber(text) else {
                throw InvoiceError(file: file.name, line: row.line, field: "amount_value", ExactDecimal.refusal(row.cell("amount_value") ?? ""))
            }
            let item = row.cell("line_item")
            let parsed = item.flatMap(OpenAIPlugin.lineItem)
            var attribution: [String: String] = [:]
            if let p = row.cell("project_id") { attribution["project_id"] = p }
            return InvoiceLine(
                location: "\(file.name):\(row.line)", vendorModel: parsed?.model, vendorTokenType: parsed?.tokenClass,
                tokenType: parsed.flatMap { OpenAIPlugin.tokenTypeMap[$0.tokenClass] }, amount: amount, amountScale: ExactDecimal.scale(of: text),
                currency: (row.cell("amount_currency") ?? "usd").uppercased(), date: try row.timestamp(["start_time_iso", "start_time"], file: file.name),
                end: try row.optionalTimestamp(["end_time_iso", "end_time"], file: file.name),
                labels: parsed?.labels ?? [:], attribution: attribution, nonUsageReason: parsed == nil ? "not_usage" : nil, description: item
            ).withSourceRow(row.fingerprint)
        }
        return ParsedInvoice(lines: lines, amountsMayBeNet: OpenAIPlugin.moneyOnly(lines))
    }
}

enum OpenAIJSON {
    /// Walks the buckets of one page, or of an array of pages, declaring each bucket's range and
    /// reporting every page's `has_more` / `next_page`.
    static func buckets(_ file: InvoiceFile, _ body: (String, JSONValue, Timestamp, Timestamp?) throws -> Void) throws -> InvoiceCoverage {
        var coverage = InvoiceCoverage()
        let pages = try file.forEachPagedElement { at, bucket in
            guard let start = bucket["start_time"]?.exactInt64.flatMap(Timestamp.init(unixSeconds:)) else {
                throw InvoiceError(file: file.name, field: "\(at).start_time", "must be Unix seconds")
            }
            var end: Timestamp?
            if let value = bucket["end_time"], value != .null {
                guard let t = value.exactInt64.flatMap(Timestamp.init(unixSeconds:)) else {
                    throw InvoiceError(file: file.name, field: "\(at).end_time", "must be Unix seconds")
                }
                end = t
            }
            try coverage.declare(from: start, to: end, file: file.name, field: "\(at).end_time")
            try body(at, bucket, start, end)
        }
        coverage.addPages(pages)
        return coverage
    }

}
