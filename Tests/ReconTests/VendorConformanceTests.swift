import FormatReaders
import Foundation
import Metering
import ReconCore
import ReconPlugins
import Testing
import UsageBoxApp

/// The plugins against files written by others (`../shared/conformance/focus` and `ubl`).
@Suite struct VendorConformanceTests {
    typealias S = TestSupport
    static let focusDir = S.shared.appendingPathComponent("conformance/focus")
    static let ublDir = S.shared.appendingPathComponent("conformance/ubl")
    static func files(_ dir: URL, _ ext: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(ext) }.sorted()
    }
    static let focusFiles = files(focusDir, ".csv")
    static let ublFiles = files(ublDir, ".xml")
    let service = try! ReconciliationService()

    @Test func conformanceFilesArePresent() {
        #expect(Self.focusFiles.count == 4 && Self.ublFiles.count == 7)
    }

    @Test(arguments: focusFiles)
    func focusReconcilesWithGapZeroAgainstItsQuantities(_ name: String) async throws {
        let file = InvoiceFile(name: name, bytes: Array(try Data(contentsOf: Self.focusDir.appendingPathComponent(name))))
        let (plugin, parser) = try #require(service.registry.sniff(file))
        #expect(plugin.id == "focus")
        let lines = try parser.parse(file).lines
        let usage = lines.filter { $0.nonUsageReason == nil && $0.tokenType != nil && $0.quantity != nil }
        #expect(!usage.isEmpty, "\(name) has token usage")
        let store = try S.store()
        var items: [IngestItem] = []
        for (i, l) in usage.enumerated() {
            items.append(.event(UsageEvent(eventID: "f\(i)", accountID: "acct_focus", meterID: "ai_tokens", modelID: l.vendorModel,
                                           quantity: l.quantity!, unit: "tokens", timestamp: Timestamp(microseconds: l.date.microseconds + 3_600_000_000),
                                           dimensions: ["token_type": l.tokenType!.rawValue])))
        }
        #expect(try await store.ingest(items).accepted == items.count)
        let from = lines.map(\.date).min()!
        let range = try TimeRange(from: from.startOfMonth, to: lines.map(\.date).max()!.startOfNextMonth)
        let r = try await service.engine.run(ReconciliationOptions(vendor: "focus", invoices: [file], range: range, account: "acct_focus"), store: store)
        #expect(!r.models.isEmpty)
        for m in r.models {
            #expect(m.gap == 0, "\(name): \(m.modelID) gap \(m.gap)")
            for t in m.tokenTypes { #expect(t.gap == 0 && t.metered == t.vendor && t.vendor > 0, "\(name): \(m.modelID) \(t.tokenType?.rawValue ?? "") gap \(t.gap)") }
        }
        #expect(r.total.gap == 0 && r.shape == .none && r.corrections.isEmpty)
        // Money stays exact: BilledCost of the usage lines is the vendor amount.
        let billed = usage.reduce(Decimal(0)) { $0 + $1.amount! }
        #expect(r.models.reduce(Decimal(0)) { $0 + $1.vendorAmount.value } == billed)
        #expect(usage.allSatisfy { $0.listAmount != nil && $0.labels["effective_cost"] != nil }, "ListCost and EffectiveCost kept")
    }

    /// The document's own line total, read independently of the plugin.
    static func documentLineTotal(_ url: URL) throws -> Decimal {
        var depth = 0, inTotal = false, capture = false, text = "", total: Decimal?
        try XMLStreamReader.read(path: url.path) { e in
            switch e {
            case let .start(_, name, _, _):
                depth += 1
                if depth == 2, name == "LegalMonetaryTotal" { inTotal = true }
                capture = inTotal && depth == 3 && name == "LineExtensionAmount"
                text = ""
            case let .text(t): if capture { text += t }
            case let .end(_, name):
                if capture, name == "LineExtensionAmount" { total = ExactDecimal.parse(text.trimmingCharacters(in: .whitespacesAndNewlines)) }
                capture = false
                if depth == 2, name == "LegalMonetaryTotal" { inTotal = false }
                depth -= 1
            }
        }
        return total ?? -1
    }

    @Test(arguments: ublFiles)
    func ublParsesEveryLineExactlyAndReconcilesWithExitZero(_ name: String) async throws {
        let url = Self.ublDir.appendingPathComponent(name)
        let file = InvoiceFile(name: name, bytes: Array(try Data(contentsOf: url)))
        let (plugin, parser) = try #require(service.registry.sniff(file))
        #expect(plugin.id == "ubl")
        let lines = try parser.parse(file).lines
        let invoiceLines = lines.filter { $0.description?.hasPrefix("line ") == true }
        #expect(!invoiceLines.isEmpty)
        #expect(invoiceLines.reduce(Decimal(0)) { $0 + $1.amount! } == (try Self.documentLineTotal(url)), "\(name): lines sum to the document total")
        let store = try S.store()
        for range in [try TimeRange(from: "2017-01-01T00:00:00Z", to: "2019-01-01T00:00:00Z"), S.may] {
            let r = try await service.engine.run(ReconciliationOptions(vendor: "ubl", invoices: [file], range: range), store: store)
            #expect(r.unmapped.count == lines.count, "\(name): every line reported")
            var byCurrency: [String: Decimal] = [:]
            for l in lines { if let a = l.amount { byCurrency[l.currency, default: 0] += a } }
            #expect(r.invoice.amountsByCurrency == byCurrency.mapValues { ExactDecimal.text($0) }, "every line's money is kept per currency")
            #expect(Set(r.unmapped.map(\.reason)).isSubset(of: ["unknown_model", "out_of_period", "straddles_period", "allowance", "charge", "tax", "credit"]))
        }
    }

    @Test func aCreditNoteNegatesAndTheSuppliersCardIsFoundByName() async throws {
        let xml = """
            <?xml version="1.0"?>
            <CreditNote xmlns="urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
              xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
              xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
              <cbc:ID>CN-1</cbc:ID><cbc:IssueDate>2026-05-31</cbc:IssueDate><cbc:DocumentCurrencyCode>USD</cbc:DocumentCurrencyCode>
              <cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Anthropic, PBC</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
              <cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="USD">1.50</cbc:LineExtensionAmount></cac:LegalMonetaryTotal>
              <cac:CreditNoteLine><cbc:ID>1</cbc:ID><cbc:CreditedQuantity unitCode="C62">1</cbc:CreditedQuantity>
                <cbc:LineExtensionAmount currencyID="USD">1.50</cbc:LineExtensionAmount>
                <cac:Item><cbc:Name>claude-haiku-4-5</cbc:Name>
                  <cac:AdditionalItemProperty><cbc:Name>token_type</cbc:Name><cbc:Value>output</cbc:Value></cac:AdditionalItemProperty></cac:Item>
              </cac:CreditNoteLine>
            </CreditNote>
            """
        let file = InvoiceFile(name: "credit.xml", bytes: Array(xml.utf8))
        let (_, parser) = try #require(service.registry.sniff(file))
        let lines = try parser.parse(file).lines
        #expect(lines.map(\.amount) == [Decimal(string: "-1.5")], "a credit note negates")
        let r = try await service.engine.run(ReconciliationOptions(vendor: "ubl", invoices: [file], range: S.may), store: try S.store())
        #expect(r.rateCard.vendor == "anthropic", "the supplier's name picked the anthropic card")
        #expect(r.unmapped.isEmpty && r.models.first?.vendor == -1, "a credited quantity takes tokens back")
        #expect(r.verdict == .inconclusive && r.reasons.map(\.code) == ["coverage_gap"], "one day's credit note is no evidence for May")
    }

    @Test func aUBLInvoiceWithTheSuppliersCardReconciles() async throws {
        let example = try #require(builtInPlugins.first { $0.id == "ubl" }?.examples.first { $0.expectedError == nil })
        let card = try RateCard.load(text: """
            schema: ratecard/v1
            vendor: acme-ai
            currency: USD
            unit: per_million_tokens
            card_version: "1"
            sources: {contract: {url: "https://example.com/contract"}}
            token_types: [input, output]
            models:
              claude-sonnet-4-6:
                prices:
                  - {from: "2026-01-01", rates: {input: "3", output: "15"}, src: contract}
            aliases:
              - {match: "Claude Sonnet 4\\\\.6 - Input Tokens", model: claude-sonnet-4-6, token_type: input}
              - {match: "Claude Sonnet 4\\\\.6 - Output Tokens", model: claude-sonnet-4-6, token_type: output}
            """, file: "acme.yaml")
        let store = try S.store()
        _ = try await store.ingest([
            TestSupport.event("i", model: "claude-sonnet-4-6", type: "input", quantity: 12_345_670),
            TestSupport.event("o", model: "claude-sonnet-4-6", type: "output", quantity: 900_000),
        ])
        let r = try await service.engine.run(ReconciliationOptions(vendor: "ubl", invoices: [example.file], range: S.may, account: "acct_42", rateCard: card), store: store)
        let model = try #require(r.models.first)
        #expect(model.tokenTypes.map(\.vendor) == [12_345_670, 1_000_000], "stated MIO quantities")
        #expect(r.corrections.map(\.quantity) == [100_000], "the output gap is corrected")
        #expect(r.unmapped.map(\.reason).sorted() == ["allowance", "tax"])
    }
}
