import ExactJSON
import Foundation
import Metering
import Testing
import UsageBoxApp
import VendorAnthropic

@testable import ReconCore

/// The engine's stages, each on its own, and the values that travel between them.
@Suite struct StageTests {
    typealias S = TestSupport
    static func t(_ s: String) -> Timestamp { Timestamp(rfc3339: s)! }

    @Test func coverageIntervalsMergeAndLeaveTheUncoveredParts() {
        let merged = TimeSpans.merge([
            (Self.t("2026-05-03T00:00:00Z"), Self.t("2026-05-05T00:00:00Z")),
            (Self.t("2026-05-01T00:00:00Z"), Self.t("2026-05-03T00:00:00Z")),
            (Self.t("2026-05-10T00:00:00Z"), Self.t("2026-05-11T00:00:00Z")),
        ])
        #expect(merged.map { "\($0.0.dayString)/\($0.1.dayString)" } == ["2026-05-01/2026-05-05", "2026-05-10/2026-05-11"])
        let gaps = TimeSpans.uncovered(by: merged, within: (Self.t("2026-05-01T00:00:00Z"), Self.t("2026-05-12T00:00:00Z")))
        #expect(gaps.map { "\($0.0.dayString)/\($0.1.dayString)" } == ["2026-05-05/2026-05-10", "2026-05-11/2026-05-12"])
        // Unsorted and overlapping, as a plugin's lines come (an item's day lines out of order).
        let unsorted = TimeSpans.uncovered(
            by: [
                (Self.t("2026-05-10T00:00:00Z"), Self.t("2026-05-11T00:00:00Z")), (Self.t("2026-05-01T00:00:00Z"), Self.t("2026-05-05T00:00:00Z")),
                (Self.t("2026-05-03T00:00:00Z"), Self.t("2026-05-04T00:00:00Z")),
            ],
            within: (Self.t("2026-05-01T00:00:00Z"), Self.t("2026-05-12T00:00:00Z")))
        #expect(unsorted.map { "\($0.0.dayString)/\($0.1.dayString)" } == ["2026-05-05/2026-05-10", "2026-05-11/2026-05-12"])
        #expect(CoverageCheck.dayList(Self.t("2026-05-05T00:00:00Z"), Self.t("2026-05-10T00:00:00Z")) == (5...9).map { "2026-05-0\($0)" })
        #expect(CoverageCheck.compact(["2026-05-30", "2026-05-31", "2026-06-01", "2026-06-03"]) == "2026-05-30 … 2026-06-01 (3 days), 2026-06-03")
    }

    @Test func inclusiveEndsCloseOnTheNextBoundary() {
        #expect(InvoiceCoverage.exclusiveEnd(Self.t("2026-05-01T23:59:59Z")) == Self.t("2026-05-02T00:00:00Z"))
        #expect(InvoiceCoverage.exclusiveEnd(Self.t("2026-05-02T00:00:00Z")) == Self.t("2026-05-02T00:00:00Z"))
        let line = InvoiceLine(
            location: "x", vendorModel: nil, vendorTokenType: nil, tokenType: nil, amount: 1, amountScale: 0, currency: "USD",
            date: Self.t("2026-05-04T10:00:00Z"))
        #expect(line.bucket.to == Self.t("2026-05-05T00:00:00Z"), "a line without an end bills its UTC day")
    }

    @Test func shapeIsNoneOnlyWhenNoTokenTypeIsOff() {
        typealias Row = ReconciliationReport.TokenTypeRow
        let opposite = ReconciliationReport.ModelRow(
            modelID: "m",
            tokenTypes: [
                Row(tokenType: .input, metered: 100, vendor: 150, tolerance: 0, vendorAmount: 0, gapAmount: 0),
                Row(tokenType: .output, metered: 100, vendor: 50, tolerance: 0, vendorAmount: 0, gapAmount: 0),
            ])
        #expect(opposite.gap == 0 && GapDiff.shape([opposite], totalMetered: 200, totalVendor: 200).0 == .localized)
        let a = ReconciliationReport.ModelRow(
            modelID: "a", tokenTypes: [Row(tokenType: .input, metered: 1000, vendor: 1050, tolerance: 0, vendorAmount: 0, gapAmount: 0)])
        let b = ReconciliationReport.ModelRow(
            modelID: "b", tokenTypes: [Row(tokenType: .input, metered: 2000, vendor: 2100, tolerance: 0, vendorAmount: 0, gapAmount: 0)])
        let (shape, factor) = GapDiff.shape([a, b], totalMetered: 3000, totalVendor: 3150)
        #expect(shape == .uniform && factor == Decimal(string: "1.05"))
        // The same 5 % in token counts the vendor states: a meter's loss, not a price factor.
        #expect(GapDiff.shape([a, b], totalMetered: 3000, totalVendor: 3150, pricedFromMoney: []).0 == .localized)
        #expect(GapDiff.shape([a, b], totalMetered: 3000, totalVendor: 3150, pricedFromMoney: ["b"]).0 == .uniform)
        // A vendor that billed nothing in the period is no factor either.
        #expect(GapDiff.shape([a, b], totalMetered: 3000, totalVendor: 0).0 == .localized)
        let inside = ReconciliationReport.ModelRow(
            modelID: "m", tokenTypes: [Row(tokenType: .input, metered: 100, vendor: 101, tolerance: 1, vendorAmount: 0, gapAmount: 0)])
        #expect(GapDiff.shape([inside], totalMetered: 100, totalVendor: 101).0 == .none)
    }

    @Test func aLimitBlocksOnlyWhatItsScopeAndEffectSay() {
        func finding(_ q: Int64, _ tt: TokenType? = .input, account: String? = "a") -> ReconciliationReport.Finding {
            .init(
                modelID: "m", tokenType: tt, accountID: account, quantity: q, amount: .zero, metered: 0, vendor: 0, gapClass: .meteringGap,
                rule: "r", classifier: "c", reason: "x", blockedBy: [])
        }
        let negative = EvidenceReason(code: "x", effect: .blocksNegative, modelID: "m", tokenType: .input, detail: "")
        #expect(negative.applies(to: finding(-1)) && !negative.applies(to: finding(1)) && !negative.applies(to: finding(-1, .output)))
        #expect(negative.applies(to: finding(-1, nil)), "a per-model finding includes the blocked token type")
        let everywhere = EvidenceReason(code: "y", effect: .blocksNegative, detail: "")
        #expect(everywhere.applies(to: finding(-5, .output, account: "b")))
        let model = EvidenceReason(code: "z", effect: .blocksModel, modelID: "m", detail: "")
        #expect(model.applies(to: finding(7)) && model.applies(to: finding(-7)))
        #expect(!EvidenceReason(code: "n", effect: .note, detail: "").applies(to: finding(-1)))
    }

    // MARK: the request

    /// A run's ids skip every slot whose id an event holds, of any kind: a slot skipped once left
    /// the count behind the slots used, and the next run proposed its predecessor's id again
    /// (stopping at a correction), so every apply conflicted. The count apply compares stays the
    /// corrections' own.
    @Test func correctionSlotsSkipEveryHeldId() async throws {
        let store = try S.store()
        func event(_ slot: Int64, kind: EventKind) -> IngestItem {
            .event(
                UsageEvent(
                    eventID: CorrectionSlots.eventID(account: "acct_1", slot: slot), accountID: "acct_1", meterID: "m", modelID: "x", kind: kind,
                    correctionRef: kind == .correction ? "r" : nil, quantity: 1, unit: "tokens", timestamp: Self.t("2026-05-31T23:59:59Z")))
        }
        // Slot 0 taken by a Usage event, slot 1 by the correction a run posted after skipping it.
        _ = try await store.ingest([event(0, kind: .usage), event(1, kind: .correction)])
        let slots = try await CorrectionSlots.read(accounts: ["acct_1"], store: store, holding: ["acct_1": 3])
        #expect(slots.count(account: "acct_1") == 1)
        #expect([0, 1, 2].map { slots.slot(account: "acct_1", index: $0) } == [2, 3, 4])
        _ = try await store.ingest([event(3, kind: .usage)])
        let again = try await CorrectionSlots.read(accounts: ["acct_1"], store: store, holding: ["acct_1": 3])
        #expect([0, 1, 2].map { again.slot(account: "acct_1", index: $0) } == [2, 4, 5], "a held id later in the run's slots too")
    }

    @Test func periodBoundsAreDatesOrUTC() throws {
        let range = try ReconciliationRequest.period(from: "2026-06-01", to: "2026-07-01T00:00:00Z")
        #expect(range.from == Self.t("2026-06-01T00:00:00Z") && range.to == Self.t("2026-07-01T00:00:00Z"))
        #expect(try ReconciliationRequest.period(from: "2026-06-01T00:00:00+00:00", to: "2026-06-02").from == range.from)
        do {
            _ = try ReconciliationRequest.period(from: "2026-06-01T00:00:00+02:00", to: "2026-07-01")
            Issue.record("a local offset was accepted")
        } catch let e as UsageBoxError {
            #expect(e.field == "from" && e.message.contains("UTC") && e.message.contains("2026-05-31T22:00:00Z"))
            // The date offered is the day written, not the previous UTC day (2026-05-31 was offered).
            #expect(e.message.contains("as a date (2026-06-01)"), "\(e.message)")
        }
        #expect(throws: UsageBoxError.self) { _ = try ReconciliationRequest.period(from: "June", to: "2026-07-01") }
    }

    @Test func theJSONRequestRefusesUnknownFieldsAndNamesBadOnes() throws {
        let invoice = #"[{"name": "a.json", "content_base64": "e30="}]"#
        let ok = try ReconciliationRequest.decode(
            json: Array(
                #"{"vendor": "anthropic", "from": "2026-05-01", "to": "2026-06-01", "invoices": \#(invoice), "invoice_scope": "account", "account_id": "acct_42"}"#
                    .utf8))
        #expect(ok.invoices.first?.bytes == Array("{}".utf8) && ok.invoiceScope == .account)
        func refusal(_ body: String) -> UsageBoxError? {
            do { _ = try ReconciliationRequest.decode(json: Array(body.utf8)); return nil } catch let e as UsageBoxError { return e } catch { return nil }
        }
        #expect(refusal(#"{"vendor": "anthropic", "from": "2026-05-01", "to": "2026-06-01", "invoices": \#(invoice), "acount_id": "x"}"#)?.field == "acount_id")
        #expect(refusal(#"{"vendor": "anthropic", "from": "2026-05-01", "to": "2026-06-01"}"#)?.field == "invoices")
        #expect(
            refusal(#"{"vendor": "anthropic", "from": "2026-05-01", "to": "2026-06-01", "invoices": [{"name": "a", "content_base64": "%%%"}]}"#)?
                .field == "invoices[0].content_base64")
        #expect(refusal(#"{"vendor": 7, "from": "2026-05-01", "to": "2026-06-01", "invoices": []}"#)?.field == "vendor")
        let scoped = try ReconciliationRequest(vendor: "anthropic", from: "2026-05-01", to: "2026-06-01", invoices: [AnthropicPlugin.demoCostReport])
        var wrong = scoped
        wrong.invoiceScope = .account
        #expect(throws: UsageBoxError.self, "invoice_scope account needs the account") { _ = try wrong.resolve(scope: .all, runBy: "t") }
        wrong.fx = ["EURO": "1.1"]
        wrong.invoiceScope = nil
        #expect(throws: UsageBoxError.self) { _ = try wrong.resolve(scope: .all, runBy: "t") }
        _ = try scoped.resolve(scope: .all, runBy: "t")
    }

    // MARK: the report

    @Test func theReportReadsBackEqualWithNullsAndExactNumbers() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        var r = try await ReconciliationService().engine.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may), store: store)
        r.total.metered = Int64.max - 1
        let text = r.jsonText
        #expect(text.contains("\"account_id\":null") && text.contains("\"metered\":\(Int64.max - 1)") && text.contains("\"gap_amount\":\"3.36\""))
        #expect(text.hasPrefix("{\"id\":\"rec_"), "members in declaration order")
        let back = try ReconciliationJSON.decode(ReconciliationReport.self, from: text)
        #expect(back == r)
    }

    // MARK: classifiers

    struct EvalsClassifier: GapClassifier {
        let name = "plugin:test"
        func classify(_ f: GapFinding) -> GapClassification? {
            f.accountID == "acct_internal" ? GapClassification(gapClass: .passThrough, rule: "internal-evals", reason: "internal_evals") : nil
        }
    }

    @Test func theChainAsksPluginThenTeamThenDefaultsAndNamesWhoDecided() throws {
        let team = try ClassificationRules.load(
            text: """
                version: 1
                rules:
                  - id: cache-reads-are-billable
                    when: {token_type: cache_read, attributed: true}
                    class: metering_gap
                    reason: cache_reads_billed_to_customers
                """, file: "team.yaml")
        let chain = ClassifierChain(plugin: [EvalsClassifier()], team: team)
        #expect(chain.names == ["plugin:test", "rules:team.yaml", "defaults"])
        func f(_ tt: TokenType, _ account: String?) -> GapFinding {
            GapFinding(modelID: "m", tokenType: tt, accountID: account, quantity: 10, amount: 1, metered: 0, vendor: 10, shape: .localized, unmetered: true)
        }
        let evals = chain.classify(f(.input, "acct_internal"))
        #expect(evals.gapClass == .passThrough && evals.classifier == "plugin:test" && evals.rule == "internal-evals")
        let cache = chain.classify(f(.cacheRead, "acct_42"))
        #expect(cache.gapClass == .meteringGap && cache.classifier == "rules:team.yaml")
        let input = chain.classify(f(.input, "acct_42"))
        #expect(
            input.gapClass == .meteringGap && input.classifier == "defaults" && input.rule == "metered-residual",
            "rules the team did not write fall through to the defaults")
    }

    static let shippedExamples = ClassificationRules.defaults().examples

    /// Every shipped rule's examples, through the default chain: changing a rule shows what it broke.
    @Test(arguments: shippedExamples.indices)
    func shippedRuleExamplesHold(_ index: Int) {
        let example = Self.shippedExamples[index]
        let (passed, got) = example.check(ClassifierChain())
        #expect(passed, "rule \(example.rule) line \(example.line): \(example.summary) → \(got.gapClass.rawValue), expected \(example.expect.rawValue)")
    }

    @Test func everyShippedRuleHasAnExample() {
        for rule in ClassificationRules.defaults().rules { #expect(!rule.examples.isEmpty, "\(rule.id) has no example") }
    }

    @Test func badExamplesAreRefusedWithTheirLine() {
        do {
            _ = try ClassificationRules.load(
                text: "version: 1\nrules:\n  - id: x\n    class: pass_through\n    examples:\n      - {model: m, expect: pass_through}\n",
                file: "r.yaml")
            Issue.record("an example without a quantity was accepted")
        } catch let e as ConfigError {
            #expect(e.line == 6 && e.message.contains("quantity"))
        } catch { Issue.record("\(error)") }
    }
}
