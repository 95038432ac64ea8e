import FormatReaders
import Foundation
import Metering
import ReconCore
import ReconPlugins
import Testing
import UsageBoxApp

/// Where files written by others live: csv-spectrum, UBL/Peppol examples and FOCUS samples, in
/// `csv/`, `ubl/` and `focus/`. Not part of the repository: `scripts/conformance DIR` sets
/// USAGEBOX_CONFORMANCE_DIR and runs this suite; without it the suite is skipped.
enum OutsideCorpus {
    static let root: URL? = ProcessInfo.processInfo.environment["USAGEBOX_CONFORMANCE_DIR"].map { URL(fileURLWithPath: $0) }
    static func dir(_ name: String) -> URL { (root ?? URL(fileURLWithPath: "/nonexistent")).appendingPathComponent(name) }
    static func files(_ name: String, _ ext: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir(name).path)) ?? []).filter { $0.hasSuffix(ext) }.sorted()
    }
}

/// The readers and plugins against files written by others.
@Suite(.enabled(if: OutsideCorpus.root != nil, "set USAGEBOX_CONFORMANCE_DIR (scripts/conformance)"))
struct OutsideCorpusTests {
    typealias S = TestSupport
    static let focusDir = OutsideCorpus.dir("focus")
    static let ublDir = OutsideCorpus.dir("ubl")
    static let csvDir = OutsideCorpus.dir("csv")
    static let focusFiles = OutsideCorpus.files("focus", ".csv")
    static let ublFiles = OutsideCorpus.files("ubl", ".xml")
    static let csvNames = CSVCase.names(in: csvDir)
    let service = try! ReconciliationService()

    @Test func theCorporaArePresent() {
        #expect(
            Self.focusFiles.count >= 4 && Self.ublFiles.count >= 7 && Self.csvNames.count >= 12,
            "FOCUS \(Self.focusFiles.count), UBL \(Self.ublFiles.count), CSV \(Self.csvNames.count) files under \(OutsideCorpus.root?.path ?? "-")")
    }

    @Test(arguments: csvNames)
    func csvSpectrum(_ name: String) throws {
        try CSVCase.check(name, in: Self.csvDir) { name, want, got in
            if name == "location_coordinates", !want.isEmpty {
                // Upstream's JSON for this file carries another phone number than its CSV; every other
                // field must match exactly.
                #expect(got.first?["Contact Phone Number"] == "2095257564")
                want[0]["Contact Phone Number"] = "2095257564"
            }
        }
    }

    @Test(arguments: ublFiles)
    func everyUBLFileStreamsWithNamespacesByURI(_ name: String) throws {
        try UBLCase.check(Self.ublDir.appendingPathComponent(name))
    }

    @Test(arguments: focusFiles)
    func focusReconcilesWithGapZeroAgainstItsQuantities(_ name: String) async throws {
        let file = InvoiceFile(name: name, bytes: Array(try Data(contentsOf: Self.focusDir.appendingPathComponent(name))))
        let (plugin, parser) = try #require(try service.registry.sniff(file))
        #expect(plugin.id == "focus")
        let lines = try parser.parse(file).lines
        let usage = lines.filter { $0.nonUsageReason == nil && $0.tokenType != nil && $0.quantity != nil }
        #expect(!usage.isEmpty, "\(name) has token usage")
        let store = try S.store()
        var items: [IngestItem] = []
        for (i, l) in usage.enumerated() {
            items.append(
                .event(
                    UsageEvent(
                        eventID: "f\(i)", accountID: "acct_focus", meterID: "ai_tokens", modelID: l.vendorModel,
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
            for t in m.tokenTypes {
                #expect(t.gap == 0 && t.metered == t.vendor && t.vendor > 0, "\(name): \(m.modelID) \(t.tokenType?.rawValue ?? "") gap \(t.gap)")
            }
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
        let (plugin, parser) = try #require(try service.registry.sniff(file))
        #expect(plugin.id == "ubl")
        let lines = try parser.parse(file).lines
        let invoiceLines = lines.filter { $0.description?.hasPrefix("line ") == true }
        #expect(!invoiceLines.isEmpty)
        #expect(invoiceLines.reduce(Decimal(0)) { $0 + $1.amount! } == (try Self.documentLineTotal(url)), "\(name): lines sum to the document total")
        let store = try S.store()
        // The year from the invoice's first month (a run covers at most 366 days), and May 2026.
        let first = try #require(lines.map(\.date).min()).startOfMonth
        let year = try TimeRange(from: first, to: Timestamp(microseconds: first.microseconds + 366 * 24 * Timestamp.microsPerHour))
        for range in [year, S.may] {
            let r = try await service.engine.run(ReconciliationOptions(vendor: "ubl", invoices: [file], range: range), store: store)
            #expect(r.unmapped.count == lines.count, "\(name): every line reported")
            var byCurrency: [String: Decimal] = [:]
            for l in lines { if let a = l.amount { byCurrency[l.currency, default: 0] += a } }
            #expect(r.invoice.amountsByCurrency == byCurrency.mapValues { ExactDecimal.text($0) }, "every line's money is kept per currency")
            #expect(Set(r.unmapped.map(\.reason)).isSubset(of: ["unknown_model", "out_of_period", "straddles_period", "allowance", "charge", "tax", "credit"]))
        }
    }
}
