import ExactJSON
import Foundation
import Metering
import RateCardData
import ReconCore
import ReconPlugins
import Testing
import UsageBoxApp

/// Every plugin's own examples, run by one parameterized test: a new vendor adds examples, not tests.
@Suite struct PluginExampleTests {
    static let examples: [(plugin: String, example: PluginExample)] = builtInPlugins.flatMap { p in p.examples.map { (p.id, $0) } }
    static let registry = try! PluginRegistry(builtInPlugins)

    /// The plugin's card; a missing one fails the example that needs it (it stopped the whole
    /// test process, before the registry test could say which card was missing).
    static func card(for pluginID: String) throws -> RateCard {
        let plugin = try #require(registry.plugin(pluginID), "no plugin \(pluginID) in the registry")
        let text = try #require(RateCardData.cards[plugin.rateCardName], "\(pluginID) names the card RateCards/\(plugin.rateCardName).yaml, which is missing")
        return try RateCard.load(text: text, file: "\(plugin.rateCardName).yaml")
    }

    /// Parses and totals lines per canonical `model/token_type` ("(not usage)" for the rest).
    static func totals(_ lines: [InvoiceLine], card: RateCard) -> (amounts: [String: Decimal], quantities: [String: Int64]) {
        var amounts: [String: Decimal] = [:], quantities: [String: Int64] = [:]
        for l in lines {
            let key: String
            if l.nonUsageReason != nil {
                key = "(not usage)"
            } else if let vm = l.vendorModel, let m = card.canonicalModel(vm) ?? (l.modelIsCanonical ? vm : nil),
                let t = l.tokenType ?? card.aliasTokenType(vm)
            {
                key = "\(m)/\(t.rawValue)"
            } else {
                key = "(unmapped)"
            }
            if let a = l.amount { amounts[key, default: 0] += a }
            if let q = l.quantity { quantities[key, default: 0] += q }
        }
        return (amounts, quantities)
    }

    static func variants(_ file: InvoiceFile) -> [InvoiceFile] {
        var out = [file, InvoiceFile(name: file.name, bytes: [0xEF, 0xBB, 0xBF] + file.bytes)]
        // CRLF line endings must read the same.
        var crlf: [UInt8] = []
        for (i, b) in file.bytes.enumerated() {
            if b == 0x0A, i == 0 || file.bytes[i - 1] != 0x0D { crlf.append(0x0D) }
            crlf.append(b)
        }
        out.append(InvoiceFile(name: file.name, bytes: crlf))
        return out
    }

    /// Empty pages look alike across vendors; each plugin claims only its own, from what its own
    /// format is made of, and a file two vendors could claim is refused rather than guessed.
    @Test func emptyPagesAreClaimedByTheirOwnVendorOnly() throws {
        let anthropic = InvoiceFile(name: "a.json", bytes: Array(#"{"data": [], "has_more": false, "next_page": null}"#.utf8))
        let openai = InvoiceFile(name: "o.json", bytes: Array(#"{"object": "page", "data": [], "has_more": false, "next_page": null}"#.utf8))
        #expect(try Self.registry.sniff(anthropic)?.0.id == "anthropic")
        #expect(try Self.registry.sniff(openai)?.0.id != "anthropic")
        #expect(Self.registry.claims(openai).allSatisfy { $0.plugin.id != "anthropic" })
    }

    @Test(arguments: examples.map(\.example.name))
    func example(_ name: String) throws {
        let (pluginID, example) = Self.examples.first { $0.example.name == name }!
        let card = try Self.card(for: pluginID)
        for file in Self.variants(example.file) {
            let claimed = try Self.registry.sniff(file)
            #expect(claimed?.0.id == pluginID, "\(name): the registry picks \(pluginID)")
            #expect(claimed?.1.id == example.parserID, "\(name): the parser \(example.parserID) claims it")
            let parser = Self.registry.plugin(pluginID)!.parsers.first { $0.id == example.parserID }!
            if let expectedError = example.expectedError {
                do {
                    _ = try parser.parse(file).lines
                    Issue.record("\(name): parsed a file that must be refused")
                } catch let e as InvoiceError {
                    #expect(e.description.contains(expectedError), "\(name): \(e.description)")
                }
                continue
            }
            let lines = try parser.parse(file).lines
            #expect(lines.count == example.expectedLineCount, "\(name): line count")
            let (amounts, quantities) = Self.totals(lines, card: card)
            for (key, text) in example.expectedAmounts {
                #expect(amounts[key] == ExactDecimal.parse(text), "\(name): amount of \(key) is \(amounts[key].map { "\($0)" } ?? "missing")")
            }
            #expect(Set(amounts.keys) == Set(example.expectedAmounts.keys), "\(name): no other totals")
            for (key, q) in example.expectedQuantities { #expect(quantities[key] == q, "\(name): quantity of \(key)") }
        }
    }

    /// Every positive example cut short at several points must give an `InvoiceError` naming the
    /// file (or, where the cut still leaves a valid file, lines): never a crash, never another error.
    @Test(arguments: examples.filter { $0.example.expectedError == nil }.map(\.example.name))
    func truncatedExamplesFailCleanly(_ name: String) throws {
        let (pluginID, example) = Self.examples.first { $0.example.name == name }!
        let parser = Self.registry.plugin(pluginID)!.parsers.first { $0.id == example.parserID }!
        let bytes = example.file.bytes
        for cut in [bytes.count / 3, bytes.count / 2, bytes.count * 4 / 5, bytes.count - 3] where cut > 0 {
            let file = InvoiceFile(name: example.file.name, bytes: Array(bytes.prefix(cut)))
            do {
                _ = try parser.parse(file).lines
            } catch let e as InvoiceError {
                #expect(e.file == example.file.name, "\(name) cut at \(cut): \(e)")
            }
        }
    }

    static let reconcilable = examples.filter { $0.example.reconcilePeriod != nil }.map(\.example.name)

    /// Every plugin example that says so reconciles end to end with gap 0 against a meter holding
    /// exactly the vendor's quantities.
    @Test(arguments: reconcilable)
    func exampleReconcilesEndToEnd(_ name: String) async throws {
        let (pluginID, example) = Self.examples.first { $0.example.name == name }!
        let period = try #require(example.reconcilePeriod)
        let range = try TimeRange(from: period.from, to: period.to)
        let store = try TestSupport.store()
        var items: [IngestItem] = []
        for (i, (key, tokens)) in example.expectedVendorTokens.sorted(by: { $0.key < $1.key }).enumerated() {
            let parts = key.split(separator: "/").map(String.init)
            items.append(
                .event(
                    UsageEvent(
                        eventID: "x\(i)", accountID: "acct_example", meterID: "m", modelID: example.meterModelIDs[parts[0]] ?? parts[0], quantity: tokens,
                        unit: "tokens", timestamp: Timestamp(microseconds: range.from.microseconds + 3_600_000_000),
                        dimensions: ["token_type": parts[1]])))
        }
        _ = try await store.ingest(items)
        let service = try ReconciliationService()
        let r = try await service.engine.run(
            ReconciliationOptions(vendor: pluginID, invoices: [example.file], range: range, account: "acct_example"),
            store: store)
        var vendor: [String: Int64] = [:]
        for m in r.models { for t in m.tokenTypes where t.vendor != 0 { vendor["\(m.modelID)/\(t.tokenType?.rawValue ?? "")"] = t.vendor } }
        #expect(vendor == example.expectedVendorTokens, "\(name)")
        #expect(r.total.gap == 0 && r.shape == .none && r.corrections.isEmpty, "\(name): \(r.findings.map { "\($0.modelID) \($0.quantity)" })")
        #expect(!r.reasons.contains { $0.code == "missing_fx" }, "\(name): an exchange rate the export states needs no --fx")
        // One customer's example (several API keys or IAM users are one customer's) is not held as an organisation's bill.
        #expect(!r.reasons.contains { $0.code == "several_attributions_in_invoice" }, "\(name): \(r.reasons.map(\.detail))")
        if !example.expectedUnmapped.isEmpty {
            var unmapped: [String: Decimal] = [:]
            for u in r.unmapped where !u.reason.hasPrefix("not_usage") { unmapped[u.reason, default: 0] += u.amount?.value ?? 0 }
            #expect(unmapped == example.expectedUnmapped.mapValues { ExactDecimal.parse($0)! }, "\(name): unmapped \(unmapped)")
        }
    }

    /// The example with every row written twice: a CSV's body or NDJSON's lines twice, each API
    /// page's `results` twice. Nil for formats whose lines carry their own ids (UBL).
    static func everyRowTwice(_ file: InvoiceFile, format: InvoiceFormat) -> InvoiceFile? {
        var text = String(decoding: file.bytes, as: UTF8.self)
        if !text.hasSuffix("\n") { text += "\n" }
        func twice(_ v: JSONValue) -> JSONValue {
            switch v {
            case let .array(a): return .array(a.map(twice))
            case let .object(members):
                return .object(members.map { k, v in (k, k == "results" ? .array((v.arrayValue ?? []) + (v.arrayValue ?? [])) : twice(v)) })
            default: return v
            }
        }
        switch format {
        case .csv:
            guard let header = text.firstIndex(of: "\n") else { return nil }
            let body = text[text.index(after: header)...]
            return InvoiceFile(name: file.name, bytes: Array((text + body).utf8))
        case .json:
            if let root = try? JSONParser.parse(text), root["data"] != nil || root.arrayValue != nil {
                return InvoiceFile(name: file.name, bytes: Array(JSONWriter.write(twice(root)).utf8))
            }
            return InvoiceFile(name: file.name, bytes: Array((text + text).utf8))
        case .xml: return nil
        }
    }

    /// A usage row listed twice in one file is one charge written twice, in every format whose
    /// rows tell charges apart (the plugin marks those lines with `InvoiceLine.sourceRow`); the
    /// example as written is not refused; one whose rows may be two charges alike (a reduced
    /// export) is held (`identical_rows`).
    @Test(arguments: examples.filter { $0.example.expectedError == nil }.map(\.example.name))
    func everyExampleWithItsRowsTwiceIsRefusedWhereRowsAreCharges(_ name: String) async throws {
        let (pluginID, example) = Self.examples.first { $0.example.name == name }!
        let parser = try #require(Self.registry.plugin(pluginID)?.parsers.first { $0.id == example.parserID })
        guard let doubled = Self.everyRowTwice(example.file, format: parser.format) else { return }
        let usage = try parser.parse(example.file).lines.filter { $0.nonUsageReason == nil && !$0.isCorrection }
        guard !usage.isEmpty else { return }
        let judged = usage.contains { $0.sourceRow != nil && !$0.sourceRowMayRepeat }
        let held = !judged && usage.contains { $0.sourceRow != nil }
        let first = try #require(usage.map(\.date).min()).startOfMonth
        let range = try TimeRange(from: first, to: Timestamp(microseconds: first.microseconds + 366 * 24 * Timestamp.microsPerHour))
        let engine = try ReconciliationService().engine
        _ = try await engine.run(ReconciliationOptions(vendor: pluginID, invoices: [example.file], range: range), store: try TestSupport.store())
        do {
            let r = try await engine.run(ReconciliationOptions(vendor: pluginID, invoices: [doubled], range: range), store: try TestSupport.store())
            #expect(!judged, "\(name): its rows twice were read as more usage")
            #expect(
                !held || (r.reasons.contains { $0.code == "identical_rows" } && r.corrections.isEmpty), "\(name): its rows twice were not held")
        } catch let e as UsageBoxError {
            #expect(judged && e.message.contains("lists the same line twice"), "\(name): \(e.message)")
        }
    }

    /// Which examples are judged: every format but UBL, the reduced CUR and Azure exports without
    /// line-item ids or resources, and the Vertex rows without export_time.
    @Test func theFormatsJudgedForRepeatedRowsAreTheOnesWhoseRowsAreCharges() throws {
        var judged: [String: Bool] = [:], held: [String: Bool] = [:]
        for (pluginID, example) in Self.examples where example.expectedError == nil {
            let parser = try #require(Self.registry.plugin(pluginID)?.parsers.first { $0.id == example.parserID })
            let usage = try parser.parse(example.file).lines.filter { $0.nonUsageReason == nil && !$0.isCorrection }
            judged[example.file.name] = usage.contains { $0.sourceRow != nil && !$0.sourceRowMayRepeat }
            held[example.file.name] = usage.contains { $0.sourceRow != nil && $0.sourceRowMayRepeat }
        }
        #expect(judged["cur2_2026_05.csv"] == true && judged["cur_legacy.csv"] == false, "CUR: only with identity_line_item_id")
        #expect(judged["azure_cost_details.csv"] == true && judged["azure_eur_billing.csv"] == false, "Azure: only with ResourceId")
        #expect(judged["vertex_export.json"] == true && judged["vertex_export.csv"] == false, "Vertex: only with export_time")
        #expect(judged["ubl_ai_invoice.xml"] == false && held["ubl_ai_invoice.xml"] == false)
        #expect(held["cur_legacy.csv"] == true && held["azure_eur_billing.csv"] == true && held["vertex_export.csv"] == true, "the reduced exports are held")
    }

    @Test func registryIsSoundAndEveryPluginDocumentsItself() throws {
        #expect(throws: PluginRegistry.RegistryError.self) { try PluginRegistry(builtInPlugins + builtInPlugins) }
        for p in builtInPlugins {
            #expect(p.examples.contains { $0.expectedError == nil }, "\(p.id) has a positive example")
            #expect(p.examples.contains { $0.expectedError != nil }, "\(p.id) has a negative example")
            #expect(RateCardData.cards[p.rateCardName] != nil, "\(p.id) has a rate card")
            _ = try Self.card(for: p.id)
            #expect(Set(p.parsers.map(\.id)).count == p.parsers.count, "\(p.id) parser ids are unique")
        }
    }
}
