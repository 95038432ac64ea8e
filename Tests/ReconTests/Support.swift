import ExactJSON
import Foundation
import MeterStoreSQLite
import Metering
import RateCardData
import ReconCore
import UsageBoxApp
import UsageBoxTesting

enum TestSupport {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let may = try! TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-06-01T00:00:00Z")

    /// One row of a synthetic Anthropic cost report.
    struct Row {
        var day = 10
        var model: String?
        var tokenType: String?
        var cents: String
        var workspace: String? = nil
        var costType = "tokens"
        var currency = "USD"
        var month = "2026-05"
        /// Whether the row states its `list_amount` (equal to `amount`: no discount). Without it, a
        /// cost report's money may be net and its over-metering corrections wait
        /// (`amounts_may_be_net`); the tests of other evidence state it.
        var atList = true
        var contextWindow = "0-200k"
        var serviceTier = "standard"
    }

    /// A cost report as the Admin API answers for May (a bucket for every day, rows where given);
    /// `days` narrows the buckets, `hasMore` marks it as one page of several.
    static func costReport(
        _ rows: [Row], name: String = "cost.json", days: [Int] = Array(1...31), bucketMonth: String = "2026-05",
        hasMore: Bool = false
    ) -> InvoiceFile {
        var byDay = Dictionary(grouping: rows) { "\($0.month)-\(String(format: "%02d", $0.day))" }
        for d in days { byDay["\(bucketMonth)-\(String(format: "%02d", d))", default: []] += [] }
        let data: [JSONValue] = byDay.keys.sorted().map { day in
            .object([
                ("starting_at", .string(day + "T00:00:00Z")), ("ending_at", .string(day + "T23:59:59Z")),
                (
                    "results",
                    .array(
                        byDay[day]!.map { r in
                            .object(
                                [
                                    ("amount", .string(r.cents)), ("currency", .string(r.currency)), ("cost_type", .string(r.costType)),
                                    ("model", .optionalString(r.model)), ("token_type", .optionalString(r.tokenType)),
                                    ("service_tier", .string(r.serviceTier)), ("context_window", .string(r.contextWindow)),
                                    ("workspace_id", .optionalString(r.workspace)), ("description", .string("test row")),
                                ] + (r.atList ? [("list_amount", .string(r.cents))] : []))
                        })
                ),
            ])
        }
        return InvoiceFile(
            name: name,
            bytes: Array(
                JSONWriter.write(
                    .object([
                        ("data", .array(data)), ("has_more", .bool(hasMore)), ("next_page", hasMore ? .string("page_2") : .null),
                    ])
                ).utf8))
    }

    /// `file` (an Anthropic cost report) with every row's `list_amount` beside its `amount`, equal
    /// to it: amounts at list price, so a short total is read as such (not held as maybe net).
    static func atList(_ file: InvoiceFile) -> InvoiceFile {
        let text = file.text.replacingOccurrences(
            of: #""amount": ("[^"]*")"#, with: #""amount": $1, "list_amount": $1"#, options: .regularExpression)
        precondition(text != file.text, "\(file.name) has no \"amount\": \"…\" to state at list")
        return InvoiceFile(name: file.name, bytes: Array(text.utf8))
    }

    /// A UBL invoice for May 2026 from Anthropic with `(item, token_type, amount)` lines.
    static func ublInvoice(lines: [(String, String, String)], documentTotal: String, name: String = "invoice.xml") -> InvoiceFile {
        let body = lines.enumerated().map { i, l in
            """
            <cac:InvoiceLine><cbc:ID>\(i + 1)</cbc:ID><cbc:InvoicedQuantity unitCode="EA">1</cbc:InvoicedQuantity>
              <cbc:LineExtensionAmount currencyID="USD">\(l.2)</cbc:LineExtensionAmount>
              <cac:Item><cbc:Name>\(l.0)</cbc:Name>
                <cac:AdditionalItemProperty><cbc:Name>token_type</cbc:Name><cbc:Value>\(l.1)</cbc:Value></cac:AdditionalItemProperty></cac:Item>
              <cac:Price><cbc:PriceAmount currencyID="USD">\(l.2)</cbc:PriceAmount></cac:Price>
            </cac:InvoiceLine>
            """
        }.joined(separator: "\n")
        return ubl(
            header: """
                <cac:InvoicePeriod><cbc:StartDate>2026-05-01</cbc:StartDate><cbc:EndDate>2026-05-31</cbc:EndDate></cac:InvoicePeriod>
                <cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Anthropic, PBC</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
                <cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="USD">\(documentTotal)</cbc:LineExtensionAmount>
                  <cbc:PayableAmount currencyID="USD">\(documentTotal)</cbc:PayableAmount></cac:LegalMonetaryTotal>
                """, body: body, name: name)
    }

    /// A UBL `Invoice` or `CreditNote` (USD, its ID and issue date) around a header and lines a test writes.
    static func ubl(
        _ root: String = "Invoice", id: String = "INV-1", issued: String = "2026-06-02", header: String = "", body: String, name: String = "invoice.xml"
    ) -> InvoiceFile {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <\(root) xmlns="urn:oasis:names:specification:ubl:schema:xsd:\(root)-2"
              xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
              xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
              <cbc:ID>\(id)</cbc:ID><cbc:IssueDate>\(issued)</cbc:IssueDate><cbc:DocumentCurrencyCode>USD</cbc:DocumentCurrencyCode>
            \(header)
            \(body)
            </\(root)>
            """
        return InvoiceFile(name: name, bytes: Array(xml.utf8))
    }

    static func anthropicCard() throws -> RateCard {
        try RateCard.load(text: RateCardData.cards["anthropic"]!, file: "anthropic.yaml")
    }

    /// A May event; `vendor` is the dimension that says which vendor served it.
    static func event(
        _ id: String, account: String = "acct_42", meter: String = "claude_tokens", model: String, type: String,
        quantity: Int64, day: Int = 10, vendor: String? = nil
    ) -> IngestItem {
        var dims = ["token_type": type]
        if let vendor { dims["vendor"] = vendor }
        return .event(
            UsageEvent(
                eventID: id, accountID: account, meterID: meter, modelID: model, quantity: quantity, unit: "tokens",
                timestamp: Timestamp(rfc3339: "2026-05-\(String(format: "%02d", day))T12:00:00Z")!, dimensions: dims))
    }

    static func store() throws -> SQLiteMeterStore { try SQLiteMeterStore(location: .newMemory()) }

    /// acct_42's input of `model` on a meter whose unit counts tokens at another scale (`tokens_k`).
    static func ingestScaled(
        _ store: SQLiteMeterStore, id: String, meter: String, unit: String, model: String, quantity: Int64, at: String
    ) async throws {
        _ = try await store.setMeter(meter, unit: unit, rollupDimensions: nil)
        _ = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: id, accountID: "acct_42", meterID: meter, modelID: model, quantity: quantity, unit: unit,
                    timestamp: Timestamp(rfc3339: at)!, dimensions: ["token_type": "input", "vendor": "anthropic"]))
        ])
    }
}

/// Answers verify with drift.
struct DriftingStore: ForwardingStore {
    let inner: any MeterStore
    func verify(_ request: VerifyRequest) async throws -> VerifyReport {
        var r = try await inner.verify(request)
        r.ok = false
        r.drift = 7
        return r
    }
}

/// A store whose grouped reads hold at most `maxGroups` groups, as a big org's store at the
/// read's real limit (100,000) would: a run must not group by more than it needs.
struct GroupCappedStore: ForwardingStore {
    let inner: any MeterStore
    let maxGroups: Int
    func usage(_ query: UsageQuery) async throws -> UsageResult {
        let r = try await inner.usage(query)
        guard r.groups.count <= maxGroups else {
            throw UsageBoxError.invalidArgument("the answer would hold more than \(maxGroups) groups", field: "group_by")
        }
        return r
    }
}

/// Answers each ingest only after a pause, as a loaded server would: a concurrent caller reads
/// in between the write and whatever the writer records after it.
struct SlowToAnswerIngestStore: ForwardingStore {
    let inner: any MeterStore
    func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        let answer = try await inner.ingest(batch)
        try await Task.sleep(for: .milliseconds(100))
        return answer
    }
}

/// A store that waits before it ingests: two applies made at once both check the meter before
/// either posts, as two processes can.
struct SlowToPostStore: ForwardingStore {
    let inner: any MeterStore
    func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        try await Task.sleep(for: .milliseconds(300))
        return try await inner.ingest(batch)
    }
}

/// Posts each report's corrections at once, as two processes do: each checks the meter, waits,
/// then posts (`SlowToPostStore`), so both check before either posts; the in-process turn-taking
/// of `apply` is not used.
func postAsSeparateProcesses(
    _ reports: [ReconciliationReport], runner: ReconciliationRunner, store: any MeterStore & ReconciliationLog
) async throws
    -> [IngestResponse]
{
    try await withThrowingTaskGroup(of: IngestResponse.self) { group in
        for report in reports {
            group.addTask {
                var report = report
                return try await runner.post(&report, confirmLarge: false, store: SlowToPostStore(inner: store), log: store).0
            }
        }
        return try await group.reduce(into: []) { $0.append($1) }
    }
}
