import ExactJSON
import Foundation
import MeterStoreSQLite
import Metering
import ReconCore
import ReportPages
import Testing
import UsageBoxApp
import VendorAnthropic

/// One test per rule of "evidence before corrections": each names what it protects, and each
/// answer was decided before the run.
@Suite struct EvidenceTests {
    typealias S = TestSupport
    let service = try! ReconciliationService()

    func run(
        _ store: any MeterStore, _ invoices: [InvoiceFile], account: String? = "acct_42", vendor: String = "anthropic",
        range: TimeRange = S.may, configure: (inout ReconciliationOptions) -> Void = { _ in }
    ) async throws -> ReconciliationReport {
        var o = ReconciliationOptions(vendor: vendor, invoices: invoices, range: range, account: account)
        configure(&o)
        return try await service.engine.run(o, store: store)
    }

    /// 1M Sonnet input metered on acct_42 on May 10; the vendor billed `cents` for it.
    func sonnet(metered: Int64 = 1_000_000, account: String = "acct_42", day: Int = 10) async throws -> SQLiteMeterStore {
        let store = try S.store()
        _ = try await store.ingest([Self.event("a", account: account, model: "claude-sonnet-4-5", type: "input", quantity: metered, day: day)])
        return store
    }

    func codes(_ r: ReconciliationReport) -> [String] { r.reasons.map(\.code) }

    /// Events that say which vendor served them (else a shortfall may be another vendor's traffic).
    static func event(
        _ id: String, account: String = "acct_42", model: String, type: String, quantity: Int64, day: Int = 10,
        vendor: String = "anthropic"
    ) -> IngestItem {
        S.event(id, account: account, model: model, type: type, quantity: quantity, day: day, vendor: vendor)
    }

    // MARK: completeness

    /// Totals past 64 bits are refused or reported, never trapped on: two rows another vendor
    /// served of 5e18 tokens each (two token types, two segments) stopped the process at any
    /// reconcile of the account, a reader's dry run included. The invoice's own models adding up
    /// past 64 bits across token types are refused naming the period.
    @Test func meteredTotalsPast64BitsAreReportedOrRefusedNotTrappedOn() async throws {
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300")])
        let store = try await sonnet()
        _ = try await store.ingest([Self.event("big-1", model: "claude-sonnet-4-5", type: "input", quantity: 5_000_000_000_000_000_000, vendor: "openrouter")])
        try await store.sealOpenSegments()
        _ = try await store.ingest([Self.event("big-2", model: "claude-sonnet-4-5", type: "output", quantity: 5_000_000_000_000_000_000, vendor: "openrouter")])
        try await store.sealOpenSegments()
        do {
            let r = try await run(store, [invoice])
            let elsewhere = r.meteredOutOfScope.first { $0.reason == "served_by:openrouter" }
            #expect(elsewhere?.tokens == .max, "\(r.meteredOutOfScope)")
        } catch let e as UsageBoxError {
            // The read of every account's models (by label, not token type) is the store's to refuse.
            #expect(e.code == .invalidArgument && e.message.contains("overflows") && e.field == "from", "\(e.message)")
        }

        let own = try await sonnet()
        _ = try await own.ingest([Self.event("big-1", model: "claude-sonnet-4-5", type: "output", quantity: 5_000_000_000_000_000_000)])
        try await own.sealOpenSegments()
        _ = try await own.ingest([Self.event("big-2", model: "claude-sonnet-4-5", type: "cache_read", quantity: 5_000_000_000_000_000_000)])
        try await own.sealOpenSegments()
        do {
            let report = try await run(own, [invoice])
            Issue.record("a run over 1e19 tokens answered \(report.verdict)")
        } catch let e as UsageBoxError {
            // Refused by the store's read or the run's own count, naming the period either way.
            #expect(e.code == .invalidArgument && (e.message.contains("past 64 bits") || e.message.contains("overflows")) && e.field == "from", "\(e.message)")
        }
    }

    @Test func onePageOfAPaginatedExportProposesNothing() async throws {
        let store = try await sonnet()
        // $2.40 is 800,000 tokens: without the evidence rule this backs out 200,000 metered tokens.
        let page1 = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "240")], hasMore: true)
        let r = try await run(store, [page1])
        #expect(r.verdict == .inconclusive && codes(r) == ["partial_export"])
        #expect(r.reasons[0].detail.contains("has_more") && r.reasons[0].remedy?.contains("next_page") == true)
        #expect(r.corrections.isEmpty && r.held.isEmpty)
        #expect(
            r.findings.first?.gapClass == .unexplained && r.findings.first?.blockedBy == ["partial_export"],
            "a residual the evidence blocks is never a metering gap")
        #expect(r.models.first?.gap == -200_000, "the report is still complete")
        // The chain ends on the second page: both pages together are the whole export.
        let page2 = S.costReport(
            [.init(day: 20, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "60")],
            name: "page2.json", days: [20])
        let whole = try await run(store, [page1, page2])
        #expect(whole.verdict == .conclusive && whole.models.first?.gap == 0 && whole.coverage.pages.count == 2)
    }

    @Test func aDocumentTotalTheLinesDoNotSumToIsAPartialExport() async throws {
        let xml = S.ublInvoice(lines: [("claude-haiku-4-5", "input", "1.00")], documentTotal: "2.00")
        let store = try S.store()
        _ = try await store.ingest([Self.event("a", model: "claude-haiku-4-5", type: "input", quantity: 2_000_000)])
        let r = try await run(store, [xml], vendor: "ubl") { $0.rateCard = try? S.anthropicCard() }
        #expect(codes(r).contains("partial_export") && r.reasons.first { $0.code == "partial_export" }!.detail.contains("2.00"))
        #expect(r.corrections.isEmpty, "1,000,000 fewer tokens billed is not evidence while a line is missing")
    }

    // MARK: period and coverage

    @Test func anInvoiceForAnotherPeriodHasNoLinesInThisOne() async throws {
        let store = try await sonnet()
        let june = S.costReport(
            [.init(day: 3, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", month: "2026-06")],
            days: [])
        let r = try await run(store, [june])
        #expect(r.verdict == .inconclusive && codes(r).contains("no_lines_in_period"))
        #expect(r.reasons.first { $0.code == "no_lines_in_period" }!.detail.contains("2026-06-03"), "it says where the invoice's lines are")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "the vendor billing nothing here is not the meter being wrong")
    }

    /// A UBL invoice billing June and July: its lines run to July 31, not to the day they begin.
    @Test func anInvoiceSpanningTwoLaterMonthsNamesItsWholeSpan() async throws {
        let store = try await sonnet()
        let text = S.ublInvoice(lines: [("claude-sonnet-4-5", "input", "3.00")], documentTotal: "3.00").text
            .replacingOccurrences(of: "2026-05-01", with: "2026-06-01").replacingOccurrences(of: "2026-05-31", with: "2026-07-31")
        let r = try await run(store, [InvoiceFile(name: "invoice.xml", bytes: Array(text.utf8))], vendor: "ubl") { $0.rateCard = try? S.anthropicCard() }
        let none = try #require(r.reasons.first { $0.code == "no_lines_in_period" })
        #expect(none.detail.contains("run 2026-06-01 to 2026-07-31"), "\(none.detail)")
    }

    /// Two models metered in May, the invoice for June: every model is "−100 %", which is not a
    /// price factor; and no finding may read as a pricing gap while the evidence is partial.
    @Test func anotherMonthsInvoiceIsNotAUniformPricingGap() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([Self.event("h", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000)])
        let june = S.costReport(
            [
                .init(day: 3, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", month: "2026-06"),
                .init(day: 3, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100", month: "2026-06"),
            ],
            days: [])
        let r = try await run(store, [june])
        #expect(r.verdict == .inconclusive && codes(r).contains("no_lines_in_period"))
        #expect(r.shape != .uniform, "a vendor that billed nothing here is not a rate card off by a factor")
        #expect(r.findings.count == 2)
        #expect(
            r.findings.allSatisfy { $0.gapClass == .unexplained && $0.blockedBy.contains("no_lines_in_period") },
            "\(r.findings.map { "\($0.modelID) \($0.gapClass) \($0.reason)" })")
    }

    /// One page of an export that happens to carry the same share of every model: the uniform
    /// shape is the missing pages', so it is held, not called a rate-card mismatch.
    @Test func aUniformShapeOnOnePageIsNotAPricingGap() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([Self.event("h", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000)])
        let page1 = S.costReport(
            [
                .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "150"),
                .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "50"),
            ], hasMore: true)
        let r = try await run(store, [page1])
        #expect(r.verdict == .inconclusive && codes(r) == ["partial_export", "uniform_gap"])
        #expect(r.shape == .uniform, "half of each model: the shape alone reads as a factor")
        #expect(
            r.findings.count == 2 && r.findings.allSatisfy { $0.gapClass == .unexplained && $0.blockedBy == ["partial_export"] },
            "\(r.findings.map { "\($0.modelID) \($0.gapClass) \($0.reason)" })")
        #expect(r.corrections.isEmpty && r.held.isEmpty)
    }

    /// Every model billed 10 % above the meter (a price rise the card lacks): the defaults class it
    /// a pricing gap, but a team rule tried before them (`input` and positive is a metering gap)
    /// turned it into corrections. A uniform gap now blocks corrections whatever the rules say.
    /// A rule naming the model as the invoice spells it (`claude-sonnet-4-5-20250929`) matched
    /// no finding (findings name the card's model) while its example passed: the gap the team
    /// meant to absorb was proposed. Plain names are read through the run's card.
    @Test func aRuleNamingTheModelAsTheInvoiceSpellsItApplies() async throws {
        let store = try await sonnet()
        let rules = try ClassificationRules.load(
            text: "version: 1\nrules:\n  - id: ours\n    when: {model: claude-sonnet-4-5-20250929}\n    class: pass_through\n", file: "team.yaml")
        let r = try await run(store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "330")])]) {
            $0.teamRules = rules
        }
        #expect(r.findings.first?.rule == "ours" && r.corrections.isEmpty, "\(r.findings.map(\.rule)) \(r.corrections.map(\.quantity))")
    }

    /// A rules file whose own examples fail (`usagebox rules test` exits 1) was used by reconcile
    /// saying nothing, its corrections proposed through rules that do not do what they say. The
    /// run is inconclusive now, naming the examples; the same file with passing examples is not.
    @Test func rulesWhoseExamplesFailMakeTheRunInconclusive() async throws {
        let store = try await sonnet()
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "330")])
        func rules(expect: String) throws -> ClassificationRules {
            try ClassificationRules.load(
                text: "version: 1\nrules:\n  - id: big-only\n    when: {min_tokens: 1000000000}\n    class: pass_through\n    examples:\n"
                    + "      - {model: claude-sonnet-4-5, token_type: input, account: acct_42, quantity: 5000, expect: \(expect)}\n", file: "team.yaml")
        }
        let failing = try await run(store, [invoice]) { $0.teamRules = try! rules(expect: "pass_through") }
        #expect(failing.verdict == .inconclusive && failing.corrections.isEmpty, "\(failing.corrections.map(\.quantity))")
        let reason = failing.reasons.first { $0.code == "rules_examples_fail" }
        #expect(reason?.detail.contains("team.yaml:7") == true && reason?.effect == .inconclusive, "\(failing.reasons.map(\.code))")
        let passing = try await run(store, [invoice]) { $0.teamRules = try! rules(expect: "metering_gap") }
        #expect(passing.verdict == .conclusive && !passing.reasons.contains { $0.code == "rules_examples_fail" } && !passing.corrections.isEmpty)
    }

    @Test func aTeamRuleCannotTurnAUniformGapIntoCorrections() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([Self.event("h", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000)])
        let invoice = S.costReport([
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "330"),
            .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "110"),
        ])
        let rules = try ClassificationRules.load(
            text: "version: 1\nrules:\n  - id: input-is-ours\n    when: {token_type: input, sign: positive, attributed: true}\n    class: metering_gap\n",
            file: "team.yaml")
        let r = try await run(store, [invoice]) { $0.teamRules = rules }
        #expect(r.verdict == .conclusive && r.shape == .uniform && codes(r) == ["uniform_gap"])
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map { "\($0.modelID) \($0.quantity)" })")
        #expect(r.findings.count == 2 && r.findings.allSatisfy { $0.gapClass == .unexplained && $0.blockedBy == ["uniform_gap"] })
        // What a reader sees (tester N): the evidence decided, not the team's rule; the verdict
        // counts what it blocked; a hold naming no cell blocks every correction.
        let text = Rendering.reconciliation(r)
        #expect(text.contains("VERDICT: conclusive: 0 correction(s) proposed, 0 held for review, 2 finding(s) kept back by the evidence"), "\(text)")
        #expect(text.contains("evidence, over rules:team.yaml input-is-ours") && text.contains("uniform_gap [blocks every correction]"), "\(text)")
        let markdown = Rendering.reconciliationMarkdown(r)
        #expect(
            markdown.contains("evidence, over rules:team.yaml input-is-ours") && markdown.contains("| uniform_gap | blocks every correction |"), "\(markdown)")
        #expect(markdown.contains("0 held for review, 2 finding(s) kept back by the evidence"))
        let page = ReportPages.report(r)
        #expect(page.contains("evidence, over rules:team.yaml input-is-ours"))
    }

    /// Input billed 10 % above the meter on Sonnet and 11.5 % on Haiku, output exact: `localized`
    /// overall, and the input gaps were corrected (a vendor's input price rise billed to the
    /// customer). One token type off by one share on every model blocks it; one model's loss does not.
    @Test func oneTokenTypeOffByOneShareOnEveryModelIsNotCorrected() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([
            Self.event("h", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000),
            Self.event("so", model: "claude-sonnet-4-5", type: "output", quantity: 100_000),
            Self.event("ho", model: "claude-haiku-4-5", type: "output", quantity: 100_000),
        ])
        /// Input of the three models at these cents (Opus's left out when nil), output exact.
        func inputs(sonnet: String, haiku: String, opus: String?) -> InvoiceFile {
            S.costReport(
                [
                    .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: sonnet),
                    .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: haiku),
                ] + (opus.map { [.init(model: "claude-opus-4-8", tokenType: "uncached_input_tokens", cents: $0)] } ?? []) + [
                    .init(model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: "150"),
                    .init(model: "claude-haiku-4-5", tokenType: "output_tokens", cents: "50"),
                ])
        }
        let r = try await run(store, [inputs(sonnet: "330", haiku: "111.5", opus: nil)])
        #expect(r.shape != .uniform && r.reasons.map { "\($0.code) \($0.tokenType?.rawValue ?? "")" } == ["uniform_gap input"])
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map { "\($0.modelID) \($0.quantity)" })")
        // Opus too small for the share to show past its cent (2,000 tokens, a cent billed): it
        // says nothing against the share; it let the two large models' rise through.
        _ = try await store.ingest([Self.event("o", model: "claude-opus-4-8", type: "input", quantity: 2_000)])
        let small = try await run(store, [inputs(sonnet: "330", haiku: "111.5", opus: "1")])
        #expect(small.reasons.map(\.code) == ["uniform_gap"] && small.corrections.isEmpty, "\(small.corrections.map(\.quantity))")
        // Two real losses, 1 % and 2.5 % of input: shares a fifth apart or more are no one factor.
        let twoLosses = try await run(store, [inputs(sonnet: "303", haiku: "102.5", opus: "1")])
        #expect(!twoLosses.reasons.contains { $0.code == "uniform_gap" }, "\(twoLosses.reasons.map(\.detail))")
        #expect(
            twoLosses.corrections.map(\.quantity).sorted() == [10_000, 25_000], "\(twoLosses.findings.map { "\($0.modelID) \($0.quantity) \($0.reason)" })")
        // Input 10 % above the card on Sonnet and Haiku, and Opus input 30 % above (10 % and a loss
        // of its own): the two at one share are the factor; it was proposed on them.
        _ = try await store.ingest([Self.event("o2", model: "claude-opus-4-8", type: "input", quantity: 998_000)])
        let withALoss = try await run(store, [inputs(sonnet: "330", haiku: "110", opus: "650")])
        #expect(withALoss.corrections.isEmpty && withALoss.reasons.contains { $0.code == "uniform_gap" }, "\(withALoss.corrections.map(\.quantity))")
        // Drift of 0.05 % on two models is no factor beneath a third's loss (half a point at
        // least): a Sonnet loss was held behind it.
        let drift = try await sonnet()
        _ = try await drift.ingest([
            Self.event("hd", model: "claude-haiku-4-5", type: "input", quantity: 100_000_000),
            Self.event("od", model: "claude-opus-4-8", type: "input", quantity: 100_000_000),
        ])
        let drifted = try await run(
            drift,
            [
                S.costReport([
                    .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "375"),
                    .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "10005"),
                    .init(model: "claude-opus-4-8", tokenType: "uncached_input_tokens", cents: "50025"),
                ])
            ])
        #expect(
            !drifted.reasons.contains { $0.code == "uniform_gap" }
                && drifted.corrections.contains { $0.modelID == "claude-sonnet-4-5" && $0.quantity == 250_000 },
            "\(drifted.reasons.map(\.code)) \(drifted.corrections.map { "\($0.modelID ?? "") \($0.quantity)" })")
        let one = try await run(store, [inputs(sonnet: "330", haiku: "100", opus: nil)])
        #expect(one.corrections.map { "\($0.modelID ?? "") \($0.quantity)" } == ["claude-sonnet-4-5 100000"], "\(one.reasons.map(\.code))")
    }

    @Test func halfAMonthIsACoverageGapNamingTheDays() async throws {
        let store = try await sonnet(day: 20)
        _ = try await store.ingest([Self.event("b", model: "claude-sonnet-4-5", type: "input", quantity: 1_000_000, day: 2)])
        let firstHalf = S.costReport([.init(day: 2, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300")], days: Array(1...15))
        let r = try await run(store, [firstHalf])
        let gap = try #require(r.reasons.first { $0.code == "coverage_gap" })
        #expect(gap.days == (16...31).map { "2026-05-\($0)" } && gap.detail.contains("2026-05-16 … 2026-05-31 (16 days)"))
        #expect(r.coverage.coveredDays == 15 && r.coverage.periodDays == 31 && r.coverage.basis == "declared")
        #expect(r.corrections.isEmpty && r.held.isEmpty)
        // Reconciling only the covered days is conclusive (the May 20 usage is then outside).
        let covered = try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-05-16T00:00:00Z")
        let firstHalfOnly = try await run(store, [firstHalf], range: covered)
        #expect(firstHalfOnly.verdict == .conclusive && firstHalfOnly.models.first?.gap == 0)
        // The meter silent on the uncovered days too (an account idle at the month's end): still a
        // coverage gap, and the remedy names the --to that reconciles the rest.
        let idle = try await sonnet(day: 2)
        let quiet = try await run(idle, [firstHalf])
        let named = try #require(quiet.reasons.first { $0.code == "coverage_gap" })
        #expect(quiet.verdict == .inconclusive && named.remedy?.contains("(--from 2026-05-01 --to 2026-05-16)") == true, "\(named.remedy ?? "")")
        #expect(gap.remedy?.contains("--to 2026-05-16") != true, "the meter has usage on May 20: no such hint")
    }

    @Test func daysWithoutTrafficInsideADeclaredRangeAreNotACoverageGap() async throws {
        let store = try await sonnet(metered: 2_000_000)
        // Buckets for every day; rows only on two weekdays.
        let r = try await run(
            store,
            [
                S.costReport([
                    .init(day: 4, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300"),
                    .init(day: 10, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300"),
                ])
            ])
        #expect(r.verdict == .conclusive && r.reasons.isEmpty && r.models.first?.gap == 0)
        #expect(r.coverage.models.first.map { "\($0.days) \($0.firstDay) \($0.lastDay)" } == "2 2026-05-04 2026-05-10")
    }

    @Test func aBucketAcrossAPeriodBoundIsLeftOutAndItsDayIsACoverageGap() async throws {
        let store = try await sonnet()
        let range = try TimeRange(from: "2026-05-01T12:00:00Z", to: "2026-06-01T00:00:00Z")
        let r = try await run(
            store,
            [
                S.costReport([
                    .init(day: 1, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "50"),
                    .init(day: 10, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300"),
                ])
            ], range: range)
        #expect(r.unmapped.map(\.reason) == ["straddles_period"])
        #expect(r.reasons.first { $0.code == "coverage_gap" }?.days == ["2026-05-01"])
        #expect(r.corrections.isEmpty)
    }

    /// Every line across a bound of the period (a day bucket read from noon): the run said "no
    /// usage line in the period" and sent the reader to --from/--to; it names the lines' whole
    /// span, and the period that would hold them (tester Z: a UBL invoice of April 30 – May 30).
    @Test func linesThatAllCrossAPeriodBoundNameTheSpanThatHoldsThem() async throws {
        let store = try await sonnet()
        let range = try TimeRange(from: "2026-05-01T12:00:00Z", to: "2026-05-01T18:00:00Z")
        let r = try await run(
            store, [S.costReport([.init(day: 1, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "50")])], range: range)
        let none = try #require(r.reasons.first { $0.code == "no_lines_in_period" }, "\(r.reasons.map(\.code))")
        #expect(none.detail.contains("runs past its bounds") && none.detail.contains("from 2026-05-01T00:00:00Z to 2026-05-02T00:00:00Z"), "\(none.detail)")
        #expect(none.remedy?.contains("--from 2026-05-01 --to 2026-05-02") == true, "\(none.remedy ?? "")")
        #expect(r.verdict == .inconclusive && r.corrections.isEmpty)
    }

    // MARK: currency

    @Test func moneyWithNoExchangeRateAndNoQuantityIsInconclusive() async throws {
        let store = try await sonnet()
        let r = try await run(store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "250", currency: "EUR")])])
        let fx = try #require(r.reasons.first { $0.code == "missing_fx" })
        #expect(fx.effect == .inconclusive && fx.remedy?.contains("--fx EUR=") == true)
        #expect(r.corrections.isEmpty && r.held.isEmpty, "a vendor total of 0 here is a currency problem, not over-metering")
        let converted = try await run(
            store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "250", currency: "EUR")])]
        ) {
            $0.fx = ["EUR": Decimal(string: "1.2")!]
        }
        #expect(converted.verdict == .conclusive && converted.models.first?.vendor == 1_000_000)
    }

    /// A rate the export states divides the amount (units of its currency per dollar): 2.30 EUR
    /// at 0.92 is 2.50 USD exactly, not 2.30 × the reciprocal rounded (2.4999…).
    @Test func aStatedExchangeRateConvertsExactly() async throws {
        let csv = """
            Date,MeterCategory,MeterSubCategory,MeterName,Quantity,UnitOfMeasure,CostInBillingCurrency,BillingCurrencyCode,PricingCurrency,ExchangeRatePricingToBilling,ChargeType
            05/04/2026,Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,1000,1K,2.3,EUR,USD,0.92,Usage
            05/04/2026,Foundry Models,Azure OpenAI,gpt 4o Outp glbl Tokens,100,1K,0.92,EUR,USD,0.92,Usage
            """
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("a", model: "gpt-4o", type: "input", quantity: 1_000_000, day: 4, vendor: "azure-openai"),
            Self.event("b", model: "gpt-4o", type: "output", quantity: 100_000, day: 4, vendor: "azure-openai"),
        ])
        let r = try await run(store, [InvoiceFile(name: "azure.csv", bytes: Array(csv.utf8))], vendor: "azure-openai")
        #expect(r.invoice.amount.value == Decimal(string: "3.5"), "\(r.invoice.amount.value)")
        #expect(r.days.compactMap(\.vendorAmount).map { ExactDecimal.text($0.value) }.sorted() == ["1", "2.5"])
        // A rate for the card's own currency is a mistake, not a no-op to pass over.
        do {
            _ = try await run(store, [InvoiceFile(name: "azure.csv", bytes: Array(csv.utf8))], vendor: "azure-openai") {
                $0.fx = ["USD": 2]
            }
            Issue.record("--fx USD=2 was ignored")
        } catch let e as UsageBoxError {
            #expect(e.field == "fx" && e.message.contains("own currency"), "\(e.message)")
        }
        // "usd" written in lower case is the dollar.
        let lower = try await run(store, [S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100", currency: "usd")])])
        #expect(lower.invoice.unconvertedCurrencies.isEmpty && !lower.reasons.contains { $0.code == "missing_fx" })
    }

    /// `EUR` and `eur` (HTTP), or `--fx EUR=1 --fx EUR=0.9`: two rates for one currency were
    /// taken in dictionary order, so one request corrected −620,000 on some runs and nothing on others.
    @Test func oneCurrencyGivenTwoRatesIsRefused() throws {
        for refused in [
            { try ReconciliationRequest.fxRates(flags: ["EUR=1", "EUR=0.9"]) }, { try ReconciliationRequest.fxRates(["EUR": "1", "eur": "0.9"]) },
        ] {
            #expect(throws: UsageBoxError.self) { _ = try refused() }
        }
        #expect(try ReconciliationRequest.fxRates(flags: ["EUR=1", "gbp=1.2"]) == ["EUR": 1, "GBP": Decimal(string: "1.2")!])
        // The same rate given twice (a script's flag and a user's) says one thing.
        #expect(try ReconciliationRequest.fxRates(flags: ["EUR=1.08", "EUR=1.080"]) == ["EUR": Decimal(string: "1.08")!])
        #expect(try ReconciliationRequest.fxRates(["EUR": "1.08", "eur": "1.08"]) == ["EUR": Decimal(string: "1.08")!])
    }

    /// A request's file names are repeated in the report (every unmapped line): a 2 MiB name took
    /// a server past a gigabyte, and 400,001 empty files 900 MB. Both are refused, naming the field.
    @Test func aRequestsFilesAreBoundedInNumberAndNameLength() throws {
        let file = InvoiceFile(name: "cost.json", bytes: Array("{}".utf8))
        func refused(_ r: ReconciliationRequest) -> String? {
            do {
                _ = try r.resolve(scope: .all, runBy: "t")
                return nil
            } catch let e as UsageBoxError { return e.field } catch { return "\(error)" }
        }
        let base = ReconciliationRequest(vendor: "anthropic", from: "2026-05-01", to: "2026-06-01", invoices: [file])
        #expect(refused(base) == nil)
        var long = base
        long.invoices = [file, InvoiceFile(name: String(repeating: "n", count: 2_000), bytes: file.bytes)]
        #expect(refused(long) == "invoices[1].name")
        var many = base
        many.invoices = Array(repeating: file, count: ReconciliationRequest.maxInvoices + 1)
        #expect(refused(many) == "invoices")
        var rules = base
        rules.rulesName = "a\u{0}b"
        #expect(refused(rules) == "rules_name")
        // Tester N: a name without its text was dropped without a word (the defaults alone ran),
        // and an empty name made the classifier `rules:`.
        rules.rulesName = "team.yaml"
        #expect(refused(rules) == "rules_name")
        rules.rulesYAML = "version: 1\nrules: []\n"
        #expect(refused(rules) == nil)
        rules.rulesName = ""
        #expect(refused(rules) == "rules_name")
        var card = base
        card.rateCardName = "ours.yaml"
        #expect(refused(card) == "rate_card_name")
    }

    /// A team rule naming what no finding carries is said in the report, and decides nothing.
    @Test func aRuleNamingATokenTypeNoFindingCarriesIsNoted() async throws {
        let store = try await sonnet()
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "330")])
        let rules = try ClassificationRules.load(
            text: "version: 1\nrules:\n  - id: bill-cache\n    when: {token_type: [cache_read, cache_write_5min]}\n    class: metering_gap\n",
            file: "team.yaml")
        let r = try await run(store, [invoice]) { $0.teamRules = rules }
        let note = r.reasons.first { $0.code == "rules_name_what_no_finding_carries" }
        #expect(note?.effect == .note && note?.detail.contains("team.yaml:3 rule bill-cache: token_type 'cache_write_5min'") == true, "\(r.reasons)")
        #expect(r.verdict == .conclusive && !r.corrections.isEmpty, "a note blocks nothing")
    }

    /// A team rule below a broader one never decides; the report says so (tester N2).
    @Test func aRuleThatNeverDecidesIsNoted() async throws {
        let store = try await sonnet()
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "330")])
        let rules = try ClassificationRules.load(
            text: """
                version: 1
                rules:
                  - id: everything
                    class: metering_gap
                  - id: sonnet-input
                    when: {model: claude-sonnet-4-5-20250929, token_type: input}
                    class: pass_through
                """, file: "team.yaml")
        let r = try await run(store, [invoice]) { $0.teamRules = rules }
        let note = r.reasons.first { $0.code == "rules_that_never_decide" }
        #expect(note?.effect == .note && note?.detail.contains("team.yaml:5 rule sonnet-input") == true, "\(r.reasons)")
    }

    @Test func statedQuantitiesSurviveAMissingExchangeRate() async throws {
        let csv = """
            Date,MeterCategory,MeterSubCategory,MeterName,Quantity,UnitOfMeasure,CostInBillingCurrency,BillingCurrencyCode,ChargeType
            05/01/2026,Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,400,1K,0.92,EUR,Usage
            05/31/2026,Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,600,1K,1.38,EUR,Usage
            """
        let store2 = try S.store()
        _ = try await store2.ingest([Self.event("a", model: "gpt-4o", type: "input", quantity: 900_000, day: 31, vendor: "azure-openai")])
        let r = try await run(store2, [InvoiceFile(name: "azure.csv", bytes: Array(csv.utf8))], vendor: "azure-openai")
        #expect(r.models.first?.vendor == 1_000_000 && r.models.first?.gap == 100_000, "the volume comes from the stated quantities")
        #expect(r.reasons.map { "\($0.code) \($0.effect.rawValue)" } == ["missing_fx note"], "the money side says missing_fx and holds nothing")
        #expect(r.unmapped.map(\.reason) == ["missing_fx:money_only", "missing_fx:money_only"])
        #expect(r.verdict == .conclusive && r.corrections.map(\.quantity) == [100_000])
    }

    // MARK: scope

    @Test func otherAccountsMeteringTheModelsHoldASingleAccountRun() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([Self.event("b", account: "acct_7", model: "claude-sonnet-4-5", type: "input", quantity: 3_000_000)])
        // The org-wide invoice bills both accounts: $12 = 4M tokens.
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "1200")])
        let r = try await run(store, [invoice])
        let other = try #require(r.reasons.first { $0.code == "other_accounts_in_scope" })
        #expect(other.accounts == [.init(accountID: "acct_7", metered: 3_000_000)] && other.remedy?.contains("--invoice-scope account") == true)
        #expect(r.verdict == .inconclusive && r.corrections.isEmpty, "without the rule acct_42 would get +3,000,000 of acct_7's usage")
        #expect(r.models.first?.gap == 3_000_000, "its gaps are still the invoice against acct_42's meter")
        // Asserting the invoice is acct_42's alone makes the comparison the caller's claim, but a
        // gap of what acct_7 metered, token for token, says the invoice bills acct_7 too (an org
        // invoice of two workspaces proposed acct_43's +43,352,335 on acct_42: tester Q).
        let asserted = try await run(store, [invoice]) { $0.invoiceScope = .account }
        let matches = try #require(asserted.reasons.first { $0.code == "gap_matches_another_accounts_usage" }, "\(codes(asserted))")
        #expect(matches.effect == .blocksPositive && matches.accounts == [.init(accountID: "acct_7", metered: 3_000_000)], "\(matches)")
        #expect(asserted.corrections.isEmpty && asserted.held.isEmpty && asserted.findings.first?.blockedBy == ["gap_matches_another_accounts_usage"])
        // acct_7 metering another amount is no match: the caller's claim stands.
        _ = try await store.ingest([Self.event("c", account: "acct_7", model: "claude-sonnet-4-5", type: "input", quantity: 500_000)])
        let claimed = try await run(store, [invoice]) { $0.invoiceScope = .account }
        #expect(!codes(claimed).contains("gap_matches_another_accounts_usage") && claimed.held.map(\.correction.quantity) == [3_000_000])
    }

    /// `--invoice-scope account` on an invoice naming two workspaces while two other accounts
    /// metered its model: the gap is their usage together, which no one account's total matches
    /// (+64,569,593 was proposed so: tester Q2). Held as the invoice's tenants say.
    @Test func anAssertedScopeIsHeldWhenTheInvoiceNamesSeveralTenantsAndOthersMeterItsModels() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([
            Self.event("b", account: "acct_7", model: "claude-sonnet-4-5", type: "input", quantity: 1_000_000),
            Self.event("c", account: "acct_8", model: "claude-sonnet-4-5", type: "input", quantity: 2_000_000),
        ])
        let invoice = S.costReport([
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", workspace: "wrkspc_42"),
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "900", workspace: "wrkspc_B"),
        ])
        let r = try await run(store, [invoice]) { $0.invoiceScope = .account }
        #expect(!codes(r).contains("gap_matches_another_accounts_usage"), "no one account's total is the gap")
        let several = try #require(r.reasons.first { $0.code == "several_attributions_in_invoice" }, "\(codes(r))")
        #expect(several.effect == .blocksPositive && several.modelID == "claude-sonnet-4-5" && several.accounts?.count == 2, "\(several)")
        #expect(r.corrections.isEmpty && r.held.isEmpty && r.findings.first?.blockedBy == ["several_attributions_in_invoice"], "\(r.findings)")
    }

    /// An organisation's invoice naming two workspaces, run for one account while the other
    /// workspace's customer is not metered here: nothing in the meter says the bill is shared,
    /// the invoice does.
    @Test func anInvoiceNamingSeveralWorkspacesHoldsASingleAccountRun() async throws {
        let store = try await sonnet()
        let invoice = S.costReport([
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", workspace: "wrkspc_42"),
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "900", workspace: "wrkspc_TeamB"),
        ])
        let r = try await run(store, [invoice])
        let several = try #require(r.reasons.first { $0.code == "several_attributions_in_invoice" })
        #expect(several.detail.contains("wrkspc_42, wrkspc_TeamB") && several.remedy?.contains("--invoice-scope account") == true)
        #expect(r.verdict == .inconclusive && r.corrections.isEmpty, "without the rule acct_42 would get +3,000,000 of wrkspc_TeamB's usage")
        // Four times what acct_42 metered: proposed, but held for a person (--confirm-large).
        let asserted = try await run(store, [invoice]) { $0.invoiceScope = .account }
        #expect(asserted.verdict == .conclusive && asserted.corrections.isEmpty && asserted.held.map(\.correction.quantity) == [3_000_000])
        #expect(asserted.held.first?.detail.contains("doubling it or more") == true)
        // One workspace throughout: nothing to hold.
        let one = try await run(
            store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", workspace: "wrkspc_42")])])
        #expect(!one.reasons.contains { $0.code == "several_attributions_in_invoice" })
        // Lines with no workspace are the default workspace's: a second tenant.
        let withDefault = try await run(
            store,
            [
                S.costReport([
                    .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", workspace: "wrkspc_42"),
                    .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "900"),
                ])
            ])
        let both = try #require(withDefault.reasons.first { $0.code == "several_attributions_in_invoice" })
        #expect(both.detail.contains("none (the default)") && withDefault.corrections.isEmpty)
    }

    /// A key of one account learns nothing of the others: a reader probing one-line invoices day
    /// by day read "(1 account(s) this key may not see)" on the days another account used the
    /// model. Whether or not one did, the run holds alike (`invoice_scope_unchecked`), and so does
    /// a mapped run's upward correction; an admin key's runs still tell the two apart.
    @Test func accountsAKeyMayNotSeeChangeNothingItIsTold() async throws {
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "1200", workspace: "wrkspc_42")])
        func report(otherAccountMeters: Bool, mapped: Bool, scoped: Bool = true) async throws -> ReconciliationReport {
            let store = try await sonnet()
            if otherAccountMeters {
                _ = try await store.ingest([Self.event("b", account: "acct_7", model: "claude-sonnet-4-5", type: "input", quantity: 3_000_000)])
            }
            return try await run(store, [invoice], account: mapped ? nil : "acct_42") {
                if scoped { $0.scope = .accounts(["acct_42"]) }
                if mapped { $0.accountMap = ["wrkspc_42": "acct_42"] }
            }
        }
        for mapped in [false, true] {
            let seen = try await report(otherAccountMeters: true, mapped: mapped), unseen = try await report(otherAccountMeters: false, mapped: mapped)
            #expect(seen.verdict == unseen.verdict && codes(seen) == codes(unseen), "mapped \(mapped): \(codes(seen)) against \(codes(unseen))")
            #expect(codes(seen).contains("invoice_scope_unchecked") && seen.corrections.isEmpty, "mapped \(mapped): \(codes(seen)) \(seen.corrections)")
            #expect(!seen.reasons.contains { $0.detail.contains("acct_7") || $0.detail.contains("may not see)") })
        }
        let admin = try await report(otherAccountMeters: true, mapped: false, scoped: false)
        #expect(codes(admin).contains("other_accounts_in_scope") && !codes(admin).contains("invoice_scope_unchecked"))
        // Nor does a read of the accounts it may not see fail it (a hidden account's sums past 64
        // bits, its groups past the read's limit): the scoped run reads its own accounts only.
        for mapped in [false, true] {
            let store = RefusesUnscopedReads(inner: try await sonnet())
            _ = try await store.ingest([Self.event("b", account: "acct_7", model: "claude-sonnet-4-5", type: "input", quantity: 3_000_000)])
            let r = try await run(store, [invoice], account: mapped ? nil : "acct_42") {
                $0.scope = .accounts(["acct_42"])
                if mapped { $0.accountMap = ["wrkspc_42": "acct_42"] }
            }
            let unseen = try await report(otherAccountMeters: false, mapped: mapped)
            #expect(r.verdict == unseen.verdict && codes(r) == codes(unseen), "mapped \(mapped): \(codes(r)) against \(codes(unseen))")
        }
    }

    @Test func anUnknownMeterIsNamedNotReadAsNoUsage() async throws {
        let store = try await sonnet()
        await #expect {
            _ = try await run(store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300")])]) {
                $0.meterID = "claude_tokenz"
            }
        } throws: { error in
            let e = try #require(error as? UsageBoxError)
            return e.field == "meter_id" && e.message.contains("no meter 'claude_tokenz'")
        }
    }

    @Test func anAccountWithNoEventsIsInconclusiveNamingThoseWithUsage() async throws {
        let store = try await sonnet()
        let r = try await run(
            store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300")])],
            account: "acct_24"
        ) { $0.invoiceScope = .account }
        let none = try #require(r.reasons.first { $0.code == "no_metered_usage" })
        #expect(none.accounts?.map(\.accountID) == ["acct_42"] && none.detail.contains("mistyped"))
        #expect(r.verdict == .inconclusive && r.corrections.isEmpty, "a typo must not book 1,000,000 tokens onto acct_24")
    }

    @Test func unattributedVolumeBlocksOverMeteringButNotAPositiveResidual() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("a", account: "acct_1", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000),
            Self.event("b", account: "acct_2", model: "claude-haiku-4-5", type: "input", quantity: 2_000_000),
        ])
        let invoice = S.costReport([
            .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "70", workspace: "wrkspc_1"),
            .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "230", workspace: "wrkspc_2"),
            .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "30", workspace: nil),
        ])
        let r = try await run(store, [invoice], account: nil) { $0.accountMap = ["wrkspc_1": "acct_1", "wrkspc_2": "acct_2"] }
        #expect(r.corrections.map { "\($0.accountID) \($0.quantity)" } == ["acct_2 300000"], "acct_2's own lines exceed its meter")
        let acct1 = try #require(r.findings.first { $0.accountID == "acct_1" })
        #expect(
            acct1.quantity == -300_000 && acct1.gapClass == .unexplained && acct1.blockedBy == ["unattributed_vendor_volume"],
            "the 300,000 unattributed tokens may be acct_1's")
        #expect(r.unattributed.map { "\($0.modelID) \($0.vendor)" } == ["claude-haiku-4-5 300000"])
        #expect(r.verdict == .conclusive)
    }

    /// acct_1, mapped from wrkspc_1, metering 1,000,000 Haiku input and billed it; acct_3, which
    /// no map entry names, metering 5,000,000 input of `model`. The invoice, to be mapped
    /// `["wrkspc_1": "acct_1"]`.
    func meterAnAccountOutsideTheMap(_ store: SQLiteMeterStore, model: String) async throws -> InvoiceFile {
        _ = try await store.ingest([
            Self.event("a", account: "acct_1", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000),
            Self.event("b", account: "acct_3", model: model, type: "input", quantity: 5_000_000),
        ])
        return S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100", workspace: "wrkspc_1")])
    }

    @Test func anAccountTheMapDoesNotNameIsNotOverMetered() async throws {
        let store = try S.store()
        let invoice = try await meterAnAccountOutsideTheMap(store, model: "claude-haiku-4-5")
        let r = try await run(store, [invoice], account: nil) { $0.accountMap = ["wrkspc_1": "acct_1"] }
        let acct3 = try #require(r.findings.first { $0.accountID == "acct_3" })
        #expect(acct3.gapClass == .unexplained && acct3.blockedBy == ["account_not_in_map"])
        #expect(r.corrections.isEmpty && r.held.isEmpty, "acct_3's 5,000,000 tokens are not erased because the map forgot it")
    }

    /// acct_3 meters Haiku and the map names only acct_1's workspace, under which the vendor
    /// bills acct_3's traffic too: acct_1's excess was proposed whole (+3,050,000 for a real loss
    /// of 1,500,000 in an outside tester's run), with or without `--account acct_1`. Blocked.
    @Test func anAccountTheMapDoesNotNameBlocksTheMappedAccountsExcess() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("a", account: "acct_1", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000),
            Self.event("b", account: "acct_3", model: "claude-haiku-4-5", type: "input", quantity: 500_000),
        ])
        // acct_1's 1,000,000 plus a lost 500,000, plus acct_3's 500,000: $2.00.
        let invoice = S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "200", workspace: "wrkspc_1")])
        for account in [nil, "acct_1"] {
            let r = try await run(store, [invoice], account: account) { $0.accountMap = ["wrkspc_1": "acct_1"] }
            let acct1 = try #require(r.findings.first { $0.accountID == "acct_1" })
            #expect(acct1.quantity == 1_000_000 && acct1.blockedBy == ["unmapped_account_meters_model"], "\(acct1.blockedBy)")
            #expect(r.corrections.isEmpty && r.held.isEmpty, "\(account ?? "every account"): \(r.corrections.map(\.quantity))")
            #expect(r.reasons.first { $0.code == "unmapped_account_meters_model" }?.accounts?.map(\.accountID) == ["acct_3"])
        }
        // acct_3's Haiku served by Bedrock is on no Anthropic bill: no block.
        let bedrock = try S.store()
        _ = try await bedrock.ingest([
            Self.event("a", account: "acct_1", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000),
            Self.event("b", account: "acct_3", model: "claude-haiku-4-5", type: "input", quantity: 500_000, vendor: "aws-bedrock"),
        ])
        let served = S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "150", workspace: "wrkspc_1")])
        let elsewhere = try await run(bedrock, [served], account: nil) { $0.accountMap = ["wrkspc_1": "acct_1"] }
        #expect(elsewhere.corrections.map { "\($0.accountID) \($0.quantity)" } == ["acct_1 500000"], "\(elsewhere.reasons.map(\.code))")
        // Mapped, acct_3's own lines are its own: acct_1's real loss is corrected.
        let both = S.costReport([
            .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "150", workspace: "wrkspc_1"),
            .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "50", workspace: "wrkspc_3"),
        ])
        let r = try await run(store, [both], account: nil) { $0.accountMap = ["wrkspc_1": "acct_1", "wrkspc_3": "acct_3"] }
        #expect(r.corrections.map { "\($0.accountID) \($0.quantity)" } == ["acct_1 500000"])
    }

    @Test func aMapWithOneAccountLeavesOtherAccountsLinesOut() async throws {
        let store = try await sonnet()
        let invoice = S.costReport([
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", workspace: "wrkspc_42"),
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "900", workspace: "wrkspc_7"),
        ])
        let r = try await run(store, [invoice]) { $0.accountMap = ["wrkspc_42": "acct_42", "wrkspc_7": "acct_7"] }
        #expect(r.models.first?.vendor == 1_000_000 && r.models.first?.gap == 0, "acct_7's lines are not acct_42's vendor volume")
        #expect(r.unmapped.map(\.reason) == ["other_account:acct_7"] && r.corrections.isEmpty)
    }

    // MARK: what the vendor could not be read for

    @Test func aLineForAModelTheCardDoesNotKnowBlocksOverMetering() async throws {
        let store = try await sonnet()
        // A new dated snapshot the card has no alias for: its $0.60 may be Sonnet's missing 200,000 tokens.
        let invoice = S.costReport([
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "240"),
            .init(model: "claude-sonnet-4-5-20270101", tokenType: "uncached_input_tokens", cents: "60"),
        ])
        let r = try await run(store, [invoice])
        #expect(r.findings.first?.blockedBy == ["unplaced_vendor_usage"] && r.corrections.isEmpty && r.held.isEmpty)
        #expect(r.reasons.first { $0.code == "unplaced_vendor_usage" }?.amount == ExactAmount(Decimal(string: "0.6")!))
    }

    @Test func aLineTheCardCannotPriceBlocksOverMeteringOfItsModelAndType() async throws {
        let store = try S.store()
        let jan = try TimeRange(from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z")
        _ = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: "a", accountID: "acct_42", meterID: "m", modelID: "claude-sonnet-4-6", quantity: 1_000_000,
                    unit: "tokens", timestamp: Timestamp(rfc3339: "2026-01-10T12:00:00Z")!,
                    dimensions: ["token_type": "input", "vendor": "anthropic"]))
        ])
        // Sonnet 4.6 is priced from 2026-02-17 on: a January line has no rate.
        let invoice = S.costReport(
            [.init(day: 10, model: "claude-sonnet-4-6", tokenType: "uncached_input_tokens", cents: "300", month: "2026-01")],
            bucketMonth: "2026-01")
        let r = try await run(store, [invoice], range: jan)
        #expect(r.unmapped.map(\.reason) == ["no_rate"])
        #expect(r.reasons.contains { $0.code == "unpriced_vendor_usage" && $0.modelID == "claude-sonnet-4-6" })
        #expect(r.corrections.isEmpty && r.held.isEmpty, "an unpriced line is not a vendor that billed nothing")
    }

    /// The meter counts the tokens of a line the card cannot price while the vendor's side leaves
    /// them out: a gap above the meter is short of them. February, Sonnet 4.6 priced from the 17th:
    /// 1,000,000 metered on the 10th (unpriced) and the 18th, 2,000,000 lost on the 19th–20th; the
    /// gap reads +1,000,000, which was proposed (priority tokens beside a loss: tester Q). Held.
    @Test func aLineTheCardCannotPriceHoldsUnderMeteringOfItsModelAndTypeToo() async throws {
        let store = try S.store()
        let feb = try TimeRange(from: "2026-02-01T00:00:00Z", to: "2026-03-01T00:00:00Z")
        _ = try await store.ingest(
            [10, 18].map { d in
                .event(
                    UsageEvent(
                        eventID: "e\(d)", accountID: "acct_42", meterID: "m", modelID: "claude-sonnet-4-6", quantity: 1_000_000,
                        unit: "tokens", timestamp: Timestamp(rfc3339: "2026-02-\(d)T12:00:00Z")!,
                        dimensions: ["token_type": "input", "vendor": "anthropic"]))
            })
        let invoice = S.costReport(
            [10, 18, 19, 20].map { .init(day: $0, model: "claude-sonnet-4-6", tokenType: "uncached_input_tokens", cents: "300", month: "2026-02") },
            days: Array(1...28), bucketMonth: "2026-02")
        let r = try await run(store, [invoice], range: feb)
        #expect(r.unmapped.map(\.reason) == ["no_rate"])
        let unpriced = try #require(r.reasons.first { $0.code == "unpriced_vendor_usage" }, "\(codes(r))")
        #expect(unpriced.effect == .blocksCell && unpriced.tokenType == .input, "\(unpriced)")
        #expect(r.findings.map { "\($0.quantity) \($0.blockedBy)" } == ["1000000 [\"unpriced_vendor_usage\"]"], "\(r.findings)")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections)")
        // A hundredth of a cent beside $9 hides too few tokens to matter: the loss is corrected
        // (100 priority tokens held a 5,878,027 loss: tester Q2).
        let tiny = S.costReport(
            [.init(day: 10, model: "claude-sonnet-4-6", tokenType: "uncached_input_tokens", cents: "0.01", month: "2026-02")]
                + [18, 19, 20].map { .init(day: $0, model: "claude-sonnet-4-6", tokenType: "uncached_input_tokens", cents: "300", month: "2026-02") },
            days: Array(1...28), bucketMonth: "2026-02")
        let corrected = try await run(store, [tiny], range: feb)
        #expect(corrected.reasons.first { $0.code == "unpriced_vendor_usage" }?.effect == .blocksNegative, "\(codes(corrected))")
        #expect(corrected.corrections.map(\.quantity) == [1_000_000], "\(corrected.findings)")
    }

    @Test func moneyRefundedWithoutAQuantityBlocksItsModel() async throws {
        let store = try await sonnet()
        let r = try await run(
            store,
            [
                S.costReport([
                    .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "360"),
                    .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "-60"),
                ])
            ])
        #expect(r.models.first?.gap == 200_000 && r.findings.first?.blockedBy == ["usage_refund"])
        #expect(r.corrections.isEmpty, "200,000 more tokens may be exactly what the refund took back")
    }

    // MARK: what the meter holds

    @Test func meterRowsNoCardKnowsAreReportedNotDropped() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([Self.event("g", model: "gpt-4o", type: "input", quantity: 777)])
        _ = try await store.setMeter("requests", unit: "requests", rollupDimensions: nil)
        _ = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: "r", accountID: "acct_42", meterID: "requests", modelID: "claude-sonnet-4-5",
                    quantity: 5, unit: "requests", timestamp: Timestamp(rfc3339: "2026-05-10T12:00:00Z")!))
        ])
        let r = try await run(store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300")])])
        #expect(
            r.meteredOutOfScope.map { "\($0.modelID ?? "") \($0.tokens) \($0.reason)" }
                == ["claude-sonnet-4-5 5 meter_unit:requests", "gpt-4o 777 model_unknown_to_card"])
        #expect(r.models.first?.metered == 1_000_000, "requests are not tokens")
        #expect(!r.reasons.contains { $0.code == "metered_in_other_units" }, "a request count beside the token meter counts the same traffic")
    }

    /// Haiku metered in thousands of tokens (`tokens_k`), billed exactly: the meter's token
    /// reading holds none of it, so 62,000,000 tokens were held as "metered none" on that very
    /// meter, and `--confirm-large` posted them (1,000 times the usage). The model is blocked, and
    /// no correction in tokens goes to a meter in another unit.
    @Test func aModelMeteredInAnotherUnitIsNeitherComparedNorCorrected() async throws {
        let store = try S.store()
        try await S.ingestScaled(store, id: "k", meter: "haiku_k", unit: "kTok", model: "claude-haiku-4-5", quantity: 2_000, at: "2026-05-10T12:00:00Z")
        let r = try await run(store, [S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "200")])])
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.held.map { "\($0.correction.quantity) on \($0.correction.meterID)" })")
        #expect(r.findings.first?.blockedBy.contains("metered_in_other_units") == true, "\(r.findings.map(\.blockedBy))")
        #expect(
            r.reasons.first { $0.code == "metered_in_other_units" }?.detail.contains("haiku_k (unit kTok)") == true,
            "kTok, as tokens_k or MTok: tokens at another scale")
        // With --meter-id of the token meter, the tokens_k meter was skipped and its 2,000,000
        // tokens proposed again on the token meter; --meter-id of the tokens_k meter is refused.
        _ = try await store.ingest([Self.event("t", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000)])
        let one = try await run(store, [S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "300")])]) {
            $0.meterID = "claude_tokens"
        }
        #expect(one.corrections.isEmpty && one.findings.first?.blockedBy.contains("metered_in_other_units") == true, "\(one.findings.map(\.blockedBy))")
        await #expect {
            _ = try await run(store, [S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "300")])]) {
                $0.meterID = "haiku_k"
            }
        } throws: { ($0 as? UsageBoxError)?.field == "meter_id" }
    }

    /// The every-account read grouped by account × model × meter to skip meters in other units,
    /// so an org with a few request and image meters reached the read's group limit (100,000)
    /// where accounts × models alone would not: 3 accounts × 2 models × 4 meters here, capped at 12.
    @Test func theEveryAccountReadDoesNotMultiplyByMeters() async throws {
        let store = try S.store()
        var items: [IngestItem] = []
        for meter in ["requests", "images", "seconds"] {
            _ = try await store.setMeter(meter, unit: meter, rollupDimensions: nil)
        }
        for account in ["acct_42", "acct_7", "acct_9"] {
            for model in ["claude-sonnet-4-5", "claude-haiku-4-5"] {
                items.append(Self.event("\(account)-\(model)", account: account, model: model, type: "input", quantity: 1_000_000))
                for meter in ["requests", "images", "seconds"] {
                    items.append(
                        .event(
                            UsageEvent(
                                eventID: "\(account)-\(model)-\(meter)", accountID: account, meterID: meter, modelID: model, quantity: 5,
                                unit: meter, timestamp: Timestamp(rfc3339: "2026-05-10T12:00:00Z")!)))
                }
            }
        }
        _ = try await store.ingest(items)
        let r = try await run(
            GroupCappedStore(inner: store, maxGroups: 12),
            [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "900")])], account: nil)
        #expect(r.models.first(where: { $0.modelID == "claude-sonnet-4-5" })?.metered == 3_000_000)
        // An account whose only usage is on a request meter still has usage.
        _ = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: "only-requests", accountID: "acct_1", meterID: "requests", modelID: "claude-sonnet-4-5", quantity: 5,
                    unit: "requests", timestamp: Timestamp(rfc3339: "2026-05-10T12:00:00Z")!))
        ])
        let one = try await run(
            GroupCappedStore(inner: store, maxGroups: 12),
            [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "900")])], account: "acct_1")
        #expect(!one.reasons.contains { $0.code == "no_metered_usage" }, "\(one.reasons.map(\.code))")
    }

    /// An org-wide reconcile of 2,000 accounts grouped by account × model × token type × day
    /// past the read's 100,000 groups and was refused. Past the bound, the reads come in sets of
    /// accounts, and a set whose events lack a dimension the whole has (vendor) reads it as none.
    @Test func anOrgTooLargeForOneReadIsReadInSetsOfAccounts() async throws {
        let store = try S.store()
        var items: [IngestItem] = []
        for (i, account) in ["acct_a", "acct_b", "acct_c", "acct_d", "acct_e", "acct_v", "acct_w", "acct_x", "acct_y", "acct_z"].enumerated() {
            for day in [10, 11] {
                items.append(
                    S.event(
                        "\(account)-\(day)", account: account, model: "claude-sonnet-4-5", type: "input", quantity: 100_000 + Int64(i), day: day,
                        vendor: i < 5 ? "anthropic" : nil))
            }
        }
        _ = try await store.ingest(items)
        let invoice = [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "660")])]
        let whole = try await run(store, invoice, account: nil)
        let capped = try await run(GroupCappedStore(inner: store, maxGroups: 12), invoice, account: nil)
        #expect(whole.models.first?.metered == 2_000_090)
        #expect(capped.models == whole.models && capped.reasons.map(\.code) == whole.reasons.map(\.code))
        #expect(capped.corrections.map(\.quantity) == whole.corrections.map(\.quantity))
    }

    @Test func untypedMeterUsageIsComparedPerModel() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("a", model: "claude-haiku-4-5", type: "input", quantity: 600_000),
            .event(
                UsageEvent(
                    eventID: "b", accountID: "acct_42", meterID: "claude_tokens", modelID: "claude-haiku-4-5", quantity: 400_000,
                    unit: "tokens", timestamp: Timestamp(rfc3339: "2026-05-11T00:00:00Z")!, dimensions: ["vendor": "anthropic"])),
        ])
        let r = try await run(store, [S.costReport([.init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100")])])
        #expect(
            r.models.first?.tokenTypes.map(\.tokenType) == [nil] && r.models.first?.gap == 0,
            "without the rule the untyped 400,000 would read as over-metering and the input as under-metering")
        #expect(r.reasons.map(\.code) == ["untyped_meter_usage"] && r.corrections.isEmpty)
    }

    @Test func aMeterTokenTypeTheVendorDoesNotPriceBlocksItsModel() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("a", model: "claude-sonnet-4-5", type: "output", quantity: 700_000),
            Self.event("b", model: "claude-sonnet-4-5", type: "reasoning", quantity: 300_000),
        ])
        // The vendor bills reasoning as output: $15 for 1,000,000 output tokens.
        let r = try await run(store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: "1500")])])
        #expect(r.reasons.contains { $0.code == "token_type_not_billed_by_vendor" && $0.tokenType == .reasoning })
        #expect(r.corrections.isEmpty && r.held.isEmpty, "a +300,000 output correction would bill the reasoning twice")
        #expect(r.shape == .localized, "equal and opposite token-type gaps are not shape none")
        // Reasoning is billed inside output and nowhere else: the model's input, which the
        // collector lost 200,000 of, is corrected (every correction of the model was held).
        _ = try await store.ingest([Self.event("c", model: "claude-sonnet-4-5", type: "input", quantity: 800_000)])
        let outage = try await run(
            store,
            [
                S.costReport([
                    .init(model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: "1500"),
                    .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300"),
                ])
            ])
        #expect(outage.corrections.map { "\($0.dimensions["token_type"] ?? "") \($0.quantity)" } == ["input 200000"], "\(outage.findings)")
        #expect(outage.held.isEmpty)
    }

    // MARK: one model, two vendors

    @Test func anotherVendorsTrafficIsNotOverMetering() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("direct", model: "claude-sonnet-4-5", type: "input", quantity: 2_000_000),
            Self.event("bedrock", model: "claude-sonnet-4-5", type: "input", quantity: 1_000_000, vendor: "aws-bedrock"),
        ])
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "600")])
        let r = try await run(store, [invoice])
        #expect(r.models.first?.metered == 2_000_000 && r.models.first?.gap == 0, "the Bedrock-served million is Bedrock's invoice's")
        #expect(r.meteredOutOfScope.map { "\($0.tokens) \($0.reason)" } == ["1000000 served_by:aws-bedrock"])

        // A meter that cannot say who served it: the 1,000,000 the Anthropic invoice lacks may be Bedrock's.
        let unlabelled = try S.store()
        _ = try await unlabelled.ingest([S.event("a", model: "claude-sonnet-4-5", type: "input", quantity: 3_000_000)])
        let blind = try await run(unlabelled, [invoice])
        #expect(blind.findings.first?.blockedBy == ["model_sold_by_other_vendors"] && blind.corrections.isEmpty && blind.held.isEmpty)
        #expect(blind.reasons.first { $0.code == "model_sold_by_other_vendors" }?.detail.contains("aws-bedrock") == true)
        // The vendor billing more than everything metered is still under-metering.
        let more = try await run(unlabelled, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "1050")])])
        #expect(more.corrections.map(\.quantity) == [500_000] && more.corrections.first?.dimensions["vendor"] == "anthropic")
    }

    // MARK: how much a correction may take back

    @Test func overMeteringOfMoreThanHalfIsHeldForReview() async throws {
        let store = try await sonnet()
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "120")])
        let (r, outcome) = try await service.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: S.may, account: "acct_42"),
            store: store, log: store, apply: true)
        #expect(r.corrections.isEmpty && r.held.map(\.correction.quantity) == [-600_000] && r.held.first?.reason == "needs_review")
        guard case let .posted(response, heldBack) = outcome else { Issue.record("\(outcome)"); return }
        #expect(response.accepted == 0 && heldBack == 1 && !r.applied, "nothing posted, so not applied")
        // Applying it by id says what stays held (a bare accepted: 0 read as nothing to correct).
        let held = try await service.apply(id: r.id, confirmLarge: false, store: store, log: store)
        #expect(held.accepted == 0 && held.heldNotPosted == 1)
        #expect(JSONWriter.write(held.jsonValue).hasSuffix(#","held_not_posted":1}"#), "\(JSONWriter.write(held.jsonValue))")
        #expect(try ApplyAnswer.decode(held.jsonValue) == held)
        let confirmed = try await service.apply(id: r.id, confirmLarge: true, store: store, log: store)
        #expect(confirmed.accepted == 1 && confirmed.heldNotPosted == 0)
        let again = try await service.apply(id: r.id, confirmLarge: false, store: store, log: store)
        #expect(again.accepted == 0 && again.heldNotPosted == 0, "posted with confirm_large: nothing is held back any more")
        let net = try await store.usage(UsageQuery(scope: .accounts(["acct_42"]), range: S.may, groupBy: []))
        #expect(net.groups.first?.aggregate.sum == 400_000)
    }

    @Test func aTokenTypeTheVendorBillsNothingForIsOverMeteringOnlyOnConclusiveEvidence() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("a", model: "claude-sonnet-4-5", type: "input", quantity: 1_000_000),
            Self.event("b", model: "claude-sonnet-4-5", type: "output", quantity: 100_000),
        ])
        let onlyInput = [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300")])]
        let conclusive = try await run(store, onlyInput)
        #expect(conclusive.held.map(\.correction.quantity) == [-100_000], "the whole month billed no output: a person reviews it")
        let partial = try await run(store, [S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300")], hasMore: true)])
        #expect(partial.held.isEmpty && partial.corrections.isEmpty)
        #expect(partial.findings.first { $0.tokenType == .output }?.blockedBy == ["partial_export"])
    }

    // MARK: undo

    @Test func revertPostsTheCompensatingCorrectionsOnce() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let (r, _) = try await service.run(
            ReconciliationOptions(
                vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may,
                account: "acct_42"), store: store, log: store)
        await #expect(throws: UsageBoxError.self, "nothing was applied yet") { _ = try await service.revert(id: r.id, store: store, log: store) }
        _ = try await service.apply(id: r.id, confirmLarge: false, store: store, log: store)
        let sonnet = {
            try await store.usage(
                UsageQuery(
                    scope: .accounts(["acct_42"]), range: S.may, groupBy: [],
                    filters: [UsageFilter(field: .modelID, op: .eq, values: ["claude-sonnet-4-5"])])
            ).groups.first?.aggregate.sum
        }
        #expect(try await sonnet() == 191_920_000)
        let reverted = try await service.revert(id: r.id, store: store, log: store)
        let afterRevert = try await sonnet()
        #expect(reverted.accepted == 1 && afterRevert == 191_400_000)
        let again = try await service.revert(id: r.id, store: store, log: store)
        let afterAgain = try await sonnet()
        #expect(again.accepted == 0 && again.duplicates == 1 && afterAgain == 191_400_000, "reverting twice posts nothing new")
        let record = try #require(try await ReconciliationArchive(store).report(id: r.id))
        #expect(record.revertedAt != nil && record.applied)
        let explain = try await store.explain(account: "acct_42", range: S.may)
        #expect(
            explain.corrections.compactMap(\.event.correctionRef).sorted() == ["recon_may_2026_vendor_anthropic", "recon_may_2026_vendor_anthropic_revert"])
    }

    /// May's gap corrected, then a period cutting across May reconciled: its corrections are dated
    /// May 31 23:59:59, so May 1 to May 31 00:00 saw the gap again and proposed it twice (+2.1M on
    /// top of +2.2M in an outside review's run). Such a run is inconclusive until the earlier one
    /// is reverted; a period containing May, or May itself again, is not held for it.
    @Test func aPeriodCuttingAcrossAnAppliedRunIsInconclusive() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        func run(_ from: String, _ to: String) async throws -> ReconciliationReport {
            try await service.run(
                ReconciliationOptions(
                    vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: try TimeRange(from: from, to: to), account: "acct_42"),
                store: store, log: store
            ).report
        }
        let may = try await run("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z")
        _ = try await service.apply(id: may.id, confirmLarge: false, store: store, log: store)
        for (from, to, held) in [
            ("2026-05-01T00:00:00Z", "2026-05-31T00:00:00Z", true), ("2026-05-15T00:00:00Z", "2026-06-15T00:00:00Z", true),
            ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z", false), ("2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", false),
        ] {
            let r = try await run(from, to)
            let reason = r.reasons.first { $0.code == "overlaps_reconciled_period" }
            #expect((reason != nil) == held, "\(from) to \(to): \(r.reasons.map(\.code))")
            if held { #expect(r.verdict == .inconclusive && r.corrections.isEmpty && reason?.detail.contains(may.id) == true) }
        }
        _ = try await service.revert(id: may.id, store: store, log: store)
        let after = try await run("2026-05-01T00:00:00Z", "2026-05-31T00:00:00Z")
        #expect(!after.reasons.contains { $0.code == "overlaps_reconciled_period" }, "a reverted run's corrections net to nothing")
    }

    /// A relabel posts +X and −X under one run: its net is zero and it is still applied.
    @Test func anAppliedRelabelStillCountsAsAReconciledPeriod() async throws {
        let store = try S.store()
        _ = try await store.ingest([Self.event("w", model: "claude-sonnet-4-5", type: "cache_write_1h", quantity: 2_000_000, vendor: "anthropic")])
        let invoice = S.costReport([
            .init(model: "claude-sonnet-4-5", tokenType: "cache_creation.ephemeral_5m_input_tokens", cents: "225"),
            .init(model: "claude-sonnet-4-5", tokenType: "cache_creation.ephemeral_1h_input_tokens", cents: "840"),
        ])
        func run(_ to: String) async throws -> ReconciliationReport {
            try await service.run(
                ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: try TimeRange(from: "2026-05-01T00:00:00Z", to: to), account: "acct_42"),
                store: store, log: store
            ).report
        }
        let may = try await run("2026-06-01T00:00:00Z")
        #expect(may.corrections.map(\.quantity).sorted() == [-600_000, 600_000])
        _ = try await service.apply(id: may.id, confirmLarge: false, store: store, log: store)
        let cut = try await run("2026-05-31T00:00:00Z")
        #expect(cut.reasons.contains { $0.code == "overlaps_reconciled_period" } && cut.corrections.isEmpty, "\(cut.corrections.map(\.quantity))")
    }

    @Test func applyingAfterARevertIsRefusedByName() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let (r, _) = try await service.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42"),
            store: store, log: store)
        _ = try await service.apply(id: r.id, confirmLarge: false, store: store, log: store)
        _ = try await service.revert(id: r.id, store: store, log: store)
        try await expectApplyRefused(r.id, on: store, "a reverted run was applied again") {
            $0.contains("was reverted at") && !$0.contains("changed")
        }
        let explain = try await store.explain(account: "acct_42", range: S.may)
        #expect(explain.corrections.count == 2, "the correction and its revert, nothing posted again")
    }

    @Test func concurrentAppliesOfOneRunAnswerDuplicatesNotMeterChanged() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let (r, _) = try await service.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42"),
            store: store, log: store)
        let service = self.service
        let answers = try await withThrowingTaskGroup(of: ApplyAnswer.self) { group in
            for _ in 0..<6 {
                group.addTask { try await service.apply(id: r.id, confirmLarge: false, store: SlowToAnswerIngestStore(inner: store), log: store) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.map(\.accepted).reduce(0, +) == r.corrections.count)
        #expect(answers.map(\.duplicates).reduce(0, +) == 5 * r.corrections.count)
        let record = try #require(try await ReconciliationArchive(store).report(id: r.id))
        #expect(record.appliedEventIDs == r.corrections.map(\.eventID).sorted())
    }

    @Test func applyingAnInconclusiveRunIsRefused() async throws {
        let store = try await sonnet()
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "600")], hasMore: true)
        let (r, outcome) = try await service.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: S.may, account: "acct_42"),
            store: store, log: store, apply: true)
        guard case let .refused(error) = outcome else { Issue.record("\(outcome)"); return }
        #expect(error.code == .inconclusive && error.message.contains("partial_export"))
        do {
            _ = try await service.apply(id: r.id, confirmLarge: true, store: store, log: store)
            Issue.record("an inconclusive run was applied")
        } catch let e as UsageBoxError {
            #expect(e.code == .inconclusive)
        }
        #expect(try await store.usage(UsageQuery(scope: .all, range: S.may, groupBy: [])).groups.first?.aggregate.sum == 1_000_000)
    }
}

/// A store whose reads of every account fail, as one may for a reason in an account the caller
/// may not see.
struct RefusesUnscopedReads: ForwardingStore {
    let inner: any MeterStore
    func usage(_ query: UsageQuery) async throws -> UsageResult {
        guard query.scope != .all else { throw UsageBoxError(.invalidArgument, "the sum of a hidden account's usage passes 64 bits", field: "from") }
        return try await inner.usage(query)
    }
}
