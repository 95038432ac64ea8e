import Foundation
import MeterStoreSQLite
import Metering
import ReconCore
import Testing
import UsageBoxApp
import VendorAnthropic

/// Applying recorded runs, as an outside tester of month-end found it could post a gap twice or
/// report success for nothing posted: each case decided before the run.
extension EvidenceTests {
    func recordKata(
        _ invoice: InvoiceFile = AnthropicPlugin.demoCostReport, range: TimeRange = S.may, on store: SQLiteMeterStore
    ) async throws
        -> ReconciliationReport
    {
        try await service.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: range, account: "acct_42"), store: store, log: store
        ).report
    }

    /// Applies `id` expecting a 409 whose message `holds` (nothing posted).
    func expectApplyRefused(
        _ id: String, on store: SQLiteMeterStore, _ otherwise: Comment, sourceLocation: SourceLocation = #_sourceLocation,
        where holds: (String) -> Bool
    ) async throws {
        do {
            _ = try await service.apply(id: id, confirmLarge: false, store: store, log: store)
            Issue.record(otherwise, sourceLocation: sourceLocation)
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && holds(e.message), "\(e.message)", sourceLocation: sourceLocation)
        }
    }

    /// A run of one account with no account map, applied after another account's late events of
    /// the invoice's models: a fresh run is inconclusive (`other_accounts_in_scope`: the invoice
    /// may bill their usage), and the old one posted that usage to its account (+520,000). Apply
    /// now refuses. Another account's events of a model the run saw and the invoice does not
    /// bill stand in no one's way.
    /// Usage another vendor's label claims (acct_9's Claude through Bedrock) is on no Anthropic
    /// bill and a fresh run does not count it: it refused every apply of the conclusive run.
    @Test func applyingAfterAnotherAccountMetersTheInvoicesModelsIsRefused() async throws {
        for (late, vendor, refused) in [
            ("claude-sonnet-4-5", "anthropic", true), ("gpt-4o", "anthropic", false), ("text-embedding-3-small", "anthropic", false),
            ("claude-sonnet-4-5-20250929", "anthropic", true), ("claude-sonnet-4.5", "anthropic", true),
            ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic", true), ("claude-sonnet-4-5", "aws-bedrock", false),
            ("claude-sonnet-4-5", "Anthropic", true),
        ] {
            let store = try S.store()
            _ = try await KataDemo(store: store, write: { _ in }).load()
            _ = try await store.ingest([Self.event("elsewhere-1", account: "acct_7", model: "gpt-4o", type: "input", quantity: 1_000, vendor: "openai")])
            let run = try await recordKata(on: store)
            #expect(run.isConclusive && run.scopeBasis?.models.contains("claude-sonnet-4-5") == true, "\(run.reasons.map(\.code))")
            _ = try await store.ingest([Self.event("late-1", account: "acct_9", model: late, type: "input", quantity: 520_000, day: 20, vendor: vendor)])
            try await expectApply(run.id, on: store, refused: refused, because: "other accounts now meter the invoice's models", "\(late) \(vendor)")
            if !refused, vendor != "anthropic" {
                let fresh = try await service.engine.run(
                    ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42"), store: store)
                #expect(!fresh.reasons.contains { $0.code == "other_accounts_in_scope" }, "a fresh run does not count it either")
            }
            if vendor == "Anthropic" {
                // A label that may be this vendor's mistyped counts for other accounts too: left
                // out, the org-wide bill's share of acct_9's usage was proposed on acct_42.
                let fresh = try await service.engine.run(
                    ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42"), store: store)
                #expect(fresh.verdict == .inconclusive && fresh.reasons.contains { $0.code == "other_accounts_in_scope" }, "\(fresh.reasons.map(\.code))")
            }
        }
    }

    /// Another account's usage of the invoice's model under a spelling the card does not know
    /// (`claude-sonnet-4.5`) passed the scope check as an unknown model, and the run posted it to
    /// its own account. Read loosely for that check, it is the invoice's model.
    @Test func anotherAccountsSpellingOfTheModelIsInScope() async throws {
        let store = try await sonnet()
        _ = try await store.ingest([Self.event("b", account: "acct_7", model: "claude-sonnet-4.5", type: "input", quantity: 200_000)])
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "360")])
        let r = try await run(store, [invoice])
        #expect(r.verdict == .inconclusive && codes(r).contains("other_accounts_in_scope"), "\(codes(r))")
        let models = ["claude-sonnet-4", "claude-sonnet-4-5", "claude-haiku-4-5"]
        for (raw, expected) in [
            ("claude-sonnet-4.5", "claude-sonnet-4-5"), ("Claude Sonnet 4.5", "claude-sonnet-4-5"), ("sonnet-4-5", "claude-sonnet-4-5"),
            ("claude_sonnet_4_5-latest", "claude-sonnet-4-5"), ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("claude-sonnet-4-20250514", "claude-sonnet-4"), ("gpt-4o", nil), ("4-5", nil), ("claude", nil),
        ] as [(String, String?)] {
            #expect(ModelID.mayBe(raw, oneOf: models) == expected, "\(raw)")
        }
        // OpenAI's cards price dated ids: an undated spelling on another account is one of them.
        let openai = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14"]
        for (raw, expected) in [
            ("gpt_4o_mini", "gpt-4o-mini-2024-07-18"), ("GPT 4o mini", "gpt-4o-mini-2024-07-18"), ("openai/gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
            ("gpt-4o-mini-latest", "gpt-4o-mini-2024-07-18"), ("gpt-4o-mini-20240718", "gpt-4o-mini-2024-07-18"), ("gpt_4_1", "gpt-4.1-2025-04-14"),
            ("gpt-4o", "gpt-4o-2024-08-06"), ("gpt-4o-mini-tts", nil), ("gpt-4.1-mini", nil),
            ("GPT-4O-2024-08-06", "gpt-4o-2024-08-06"),
        ] as [(String, String?)] {
            #expect(ModelID.mayBe(raw, oneOf: openai) == expected, "\(raw)")
        }
        // One-part and provider-prefixed ids match themselves.
        #expect(ModelID.mayBe("o3", oneOf: ["o3"]) == "o3" && ModelID.mayBe("mistral-large-latest", oneOf: ["mistral-large-latest"]) == "mistral-large-latest")
    }

    /// Two runs from one meter state propose the same correction ids. Reverting the one never
    /// applied took back the other's corrections (the meter moved by 440,000, the applied run's
    /// record still said applied); it is refused now, and the applied run reverts as it should.
    @Test func revertingARunNeverAppliedLeavesAnotherRunsCorrections() async throws {
        let (store, a, b) = try await twoPullsOfTheKataRecorded()
        #expect(try await service.apply(id: a.id, confirmLarge: false, store: store, log: store).accepted == 1)
        let before = try await store.usage(UsageQuery(scope: .accounts(["acct_42"]), range: S.may, groupBy: [])).groups.first?.aggregate.sum
        do {
            _ = try await service.revert(id: b.id, store: store, log: store)
            Issue.record("reverted a run that was never applied")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("nothing to revert"), "\(e.message)")
        }
        let after = try await store.usage(UsageQuery(scope: .accounts(["acct_42"]), range: S.may, groupBy: [])).groups.first?.aggregate.sum
        #expect(before == after)
        #expect(try await service.revert(id: a.id, store: store, log: store).accepted == 1)
    }

    /// The kata's store and two runs of it from one meter state: the export pulled twice (a
    /// trailing newline apart, so another invoice hash).
    func twoPullsOfTheKataRecorded() async throws -> (SQLiteMeterStore, ReconciliationReport, ReconciliationReport) {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        var again = AnthropicPlugin.demoCostReport
        again.bytes.append(0x0A)
        return (store, try await recordKata(on: store), try await recordKata(again, on: store))
    }

    /// Applies `id` after the meter moved: posted (one correction) unless `refused`, then a 409
    /// whose message holds `because`.
    func expectApply(
        _ id: String, on store: SQLiteMeterStore, refused: Bool, because: String, _ label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        do {
            let posted = try await service.apply(id: id, confirmLarge: false, store: store, log: store)
            #expect(!refused && posted.accepted == 1, "\(label): posted \(posted)", sourceLocation: sourceLocation)
        } catch let e as UsageBoxError {
            #expect(refused && e.code == .conflict && e.message.contains(because), "\(label): \(e.message)", sourceLocation: sourceLocation)
        }
    }

    /// The same export pulled twice (a trailing newline apart: another invoice hash, which made
    /// another correction id), both runs recorded, then applied at the same moment: both passed
    /// the meter check before either posted, and the 520,000 were corrected twice. One posts; the
    /// other is refused because the meter moved.
    @Test func twoRunsOfOneMonthAppliedAtOnceCorrectTheGapOnce() async throws {
        let (store, a, b) = try await twoPullsOfTheKataRecorded()
        #expect(a.id != b.id)
        let service = self.service
        let answers = await withTaskGroup(of: Result<ApplyAnswer, UsageBoxError>.self) { group in
            for id in [a.id, b.id] {
                group.addTask {
                    do {
                        return .success(try await service.apply(id: id, confirmLarge: false, store: SlowToAnswerIngestStore(inner: store), log: store))
                    } catch let e as UsageBoxError { return .failure(e) } catch { return .failure(UsageBoxError(.internal, "\(error)")) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let posted = answers.compactMap { try? $0.get() }
        let refused = answers.compactMap { if case let .failure(e) = $0 { e } else { nil } }
        #expect(posted.map(\.accepted) == [1] && refused.map(\.code) == [.conflict], "\(answers)")
        #expect(refused.first?.message.contains("the meter changed") == true, "\(refused)")
        let explain = try await store.explain(account: "acct_42", range: S.may)
        #expect(explain.totals.corrections == 520_000, "corrected once")
    }

    /// Two runs recorded before either was applied: May, and May 1 to May 31 00:00. May applied
    /// first; its correction is dated May 31 23:59:59, outside the second's period, so the second's
    /// meter check did not see it and posted its share of the same gap again. A run cutting across
    /// one applied since it ran is refused at apply, as a fresh run of its period is held.
    @Test func anOlderRunCuttingAcrossOneAppliedSinceIsNotApplied() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let may = try await recordKata(on: store)
        let cut = try await recordKata(range: try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-05-31T00:00:00Z"), on: store)
        #expect(!cut.corrections.isEmpty)
        _ = try await service.apply(id: may.id, confirmLarge: false, store: store, log: store)
        try await expectApplyRefused(cut.id, on: store, "a run cutting across an applied one was applied") {
            $0.contains(may.id) && $0.contains("cuts across")
        }
        #expect(try await store.explain(account: "acct_42", range: S.may).totals.corrections == 520_000)
    }

    /// Two runs recorded from one meter propose one correction id. The first's correction posted
    /// by another process between the second's meter check and its post (first applied and
    /// reverted, in the tester's case): the second's correction met the first's stored event (its
    /// content names the other run), nothing was posted, and the answer said success. Now it is a
    /// conflict saying so, and the run is not recorded as applied.
    @Test func correctionsTheMeterRefusesAreNotReportedAsPosted() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let (a, b) = (try await recordKata(on: store), try await recordKata(on: store))
        #expect(a.corrections.map(\.eventID) == b.corrections.map(\.eventID))
        do {
            _ = try await service.apply(
                id: b.id, confirmLarge: false, store: OtherProcessPostsFirst(inner: store, first: a.corrections.map { .event($0.event) }), log: store)
            Issue.record("an apply that posted nothing answered success")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("1 correction(s) were not posted") && e.message.contains("0 posted"), "\(e.message)")
        }
        let record = try #require(try await ReconciliationArchive(store).report(id: b.id))
        #expect(!record.applied && record.appliedAt == nil && record.appliedEventIDs.isEmpty)
    }

    /// A run correcting two cells of one model (input and output) lost the model's first slot to
    /// another process's run between its checks and its post: its output correction, in a slot
    /// the other run did not claim, was still accepted beside the winner's — a state neither
    /// order of applying makes. The claim goes first and alone; lost, nothing more is posted.
    @Test func aRunThatLosesItsClaimPostsNothingMore() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let (a, b) = (try await recordKata(on: store), try await recordKata(on: store))
        var two = b
        var output = two.corrections[0]
        output.eventID = "recon_output_in_the_next_slot"
        output.quantity = 200_000
        output.dimensions["token_type"] = "output"
        two.corrections.append(output)
        var winner = a.corrections[0]
        winner.dimensions["reconciliation_id"] = "rec_the_other_process"
        let response = try await service.runner.post(
            &two, confirmLarge: false, store: OtherProcessPostsFirst(inner: store, first: [.event(winner.event)]), log: store
        ).0
        #expect(response.accepted == 0 && response.conflicts == 2, "\(response)")
        #expect(response.errors.map(\.index) == [0, 1] && response.errors.last?.message.contains("nothing more of it is posted") == true)
        #expect(try await store.explain(account: "acct_42", range: S.may).totals.corrections == 520_000, "the winner's alone")
    }

    /// A meter whose unit is another spelling of tokens is read as tokens by the engine; its
    /// corrections said "tokens", which that meter refuses (unit_mismatch), so the run could never
    /// be applied — while the answer said success. They post in the meter's own unit, and the
    /// report says so (it said "tokens").
    @Test(arguments: ["Tokens", "token"])
    func correctionsPostInTheirMetersSpellingOfTokens(unit: String) async throws {
        let store = try S.store()
        let events = DemoData.events().map { e -> IngestItem in
            var e = e
            e.unit = unit
            return .event(e)
        }
        for start in stride(from: 0, to: events.count, by: 10_000) {
            _ = try await store.ingest(Array(events[start..<min(start + 10_000, events.count)]))
        }
        let r = try await recordKata(on: store)
        #expect(r.corrections.map(\.quantity) == [520_000])
        #expect(r.corrections.map(\.unit) == [unit], "the report names the unit the correction posts in")
        let posted = try await service.apply(id: r.id, confirmLarge: false, store: store, log: store)
        #expect(posted.accepted == 1 && posted.rejected == 0, "\(posted)")
        let stored = try await store.explain(account: "acct_42", range: S.may).corrections.first?.event
        #expect(stored?.unit == unit && stored?.quantity == 520_000)
    }

    /// A late event under a mistyped vendor label ("Anthropic") makes a fresh run hold the
    /// correction (`metered_under_unknown_vendor`), but the recorded run's meter check left it out
    /// as another vendor's usage and posted +520,000. Now refused; usage another known vendor
    /// claims (Bedrock) still does not stop the apply.
    /// The dated id (`claude-sonnet-4-5-20250929`), which the run never read, passed under a
    /// mistyped label: the check read only the run's own ids.
    @Test(arguments: [
        ("Anthropic", "claude-sonnet-4-5", true), ("anthropic-console", "claude-sonnet-4-5", true), ("aws-bedrock", "claude-sonnet-4-5", false),
        ("Anthropic", "claude-sonnet-4-5-20250929", true), ("Anthropic", "claude-sonnet-4.5", true),
    ])
    func aLateEventUnderAMistypedVendorStopsTheApply(label: String, model: String, refused: Bool) async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let r = try await recordKata(on: store)
        _ = try await store.ingest([EvidenceInputTests.kataLateInput("late", model: model, vendor: label)])
        // A fresh run holds it too, under an id read only loosely (`claude-sonnet-4.5`) as well.
        let fresh = try await recordKata(on: store)
        #expect(fresh.reasons.contains { $0.code == "metered_under_unknown_vendor" } == refused, "\(codes(fresh))")
        try await expectApply(r.id, on: store, refused: refused, because: "vendor='\(label)'", label)
    }
}

extension EvidenceTests {
    /// The kata's 520,000 arriving late, dated just after the period (a clock on the other side
    /// of midnight): a fresh run calls the gap a boundary and corrects nothing, but the recorded
    /// run's meter check covered the period only and posted +520,000 — billed again in June. The
    /// hours a boundary is matched in are part of the check, under a mistyped vendor label too (a
    /// fresh run's boundary counts it); usage later in June is not.
    @Test(arguments: [
        ("2026-06-01T00:30:00Z", "anthropic", true), ("2026-06-01T00:30:00Z", "Anthropic", true), ("2026-05-31T21:10:00Z", "anthropic", true),
        ("2026-06-01T05:00:00Z", "anthropic", false), ("2026-06-01T00:30:00Z", "aws-bedrock", false),
    ])
    func aLateEventJustAfterThePeriodStopsTheApply(at time: String, vendor: String, refused: Bool) async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let r = try await recordKata(on: store)
        #expect(r.corrections.map(\.quantity) == [520_000])
        _ = try await store.ingest([EvidenceInputTests.kataLateInput("late", model: "claude-sonnet-4-5", vendor: vendor, at: time)])
        if time.hasPrefix("2026-06-01T00") {
            // Claude through Bedrock at 00:30 is on Bedrock's bill: no boundary of Anthropic's gap
            // (a fresh run called it one, where apply left it out and posted).
            let fresh = try await recordKata(on: store)
            #expect(
                fresh.corrections.isEmpty == refused && fresh.findings.contains { $0.gapClass == .boundary } == refused, "\(fresh.findings)")
        }
        try await expectApply(r.id, on: store, refused: refused, because: "the meter changed", "\(time) \(vendor)")
    }
}

extension EvidenceTests {
    /// Two processes (two `serve`s on one ClickHouse, the CLI beside a server) do not share the
    /// in-process turn-taking: two runs of May from one meter state (the export pulled twice)
    /// applied from both at the same moment passed the meter check before either posted, and
    /// their corrections, under ids that named the invoice, were both accepted (+1,040,000 for a
    /// 520,000 gap). Their corrections now claim the cell's same slot: the account's one writer
    /// posts one and answers the other `conflict`.
    @Test func twoProcessesApplyingTwoRunsOfOneMonthCorrectTheGapOnce() async throws {
        let (store, a, b) = try await twoPullsOfTheKataRecorded()
        #expect(a.corrections.map(\.quantity) == [520_000] && b.corrections.map(\.quantity) == [520_000])
        let responses = try await postAsSeparateProcesses([a, b], runner: service.runner, store: store)
        #expect(responses.map(\.accepted).sorted() == [0, 1] && responses.map(\.conflicts).sorted() == [0, 1], "\(responses)")
        #expect(try await store.explain(account: "acct_42", range: S.may).totals.corrections == 520_000, "corrected once")
    }

    /// Two runs of overlapping periods (May, and May 1 to May 31 00:00) recorded from one meter
    /// state and applied from two processes at once: each passed every check before either
    /// posted (the overlap guard reads runs already applied: neither was yet), and their ids
    /// named their periods, so both were accepted and the gap was corrected twice. The slot now
    /// counts the cell's corrections over every period: both claim one id, the account's one
    /// writer posts one and answers the other `conflict`.
    @Test func twoProcessesApplyingOverlappingPeriodsCorrectTheGapOnce() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let may = try await recordKata(on: store)
        let cut = try await recordKata(range: try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-05-31T00:00:00Z"), on: store)
        #expect(!may.corrections.isEmpty && !cut.corrections.isEmpty, "\(cut.held.map(\.detail)) \(cut.reasons.map(\.code))")
        #expect(may.corrections.map(\.eventID) == cut.corrections.map(\.eventID), "one slot")
        let responses = try await postAsSeparateProcesses([may, cut], runner: service.runner, store: store)
        #expect(responses.map(\.accepted).sorted() == [0, 1] && responses.map(\.conflicts).sorted() == [0, 1], "\(responses)")
        let corrected = try await store.explain(account: "acct_42", range: S.may).totals.corrections
        #expect(corrected == may.corrections[0].quantity || corrected == cut.corrections[0].quantity, "corrected once: \(corrected)")
    }

    /// A correction of the model posted since a run, for another period (dated May 31 23:59:59,
    /// outside May 1 to May 31 00:00), by a run the log does not show applied (another
    /// process), or under another vendor (a multi-provider FOCUS run posts under `focus`, which
    /// the run's cell sums leave out, as a fresh run does not) or another token type (a run that
    /// compared the model whole): each leaves the run's period and cells as they were, but took
    /// its slot. Apply is refused, saying to run again (the tester's FOCUS case posted the loss
    /// twice, one apply after the other).
    /// Or by hand under the model's dated id, or another case of it with no token type, which a
    /// fresh run reads as the model (testers' finds: no apply check saw them, and the loss was
    /// corrected twice). The slot counts every correction of the account.
    @Test(
        arguments: [
            ("anthropic", "input", "claude-sonnet-4-5"), ("focus", "input", "claude-sonnet-4-5"), ("anthropic", nil, "claude-sonnet-4-5"),
            ("anthropic", "input", "claude-sonnet-4-5-20250929"), ("anthropic", nil, "Claude-Sonnet-4-5"),
        ] as [(String, String?, String)])
    func aCorrectionOfTheModelPostedSinceTheRunStopsItsApply(vendor: String, tokenType: String?, model: String) async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let cut = try await recordKata(range: try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-05-31T00:00:00Z"), on: store)
        var dims = ["vendor": vendor, "source": "vendor_reconciliation", "reconciliation_id": "rec_elsewhere"]
        dims["token_type"] = tokenType
        _ = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: "recon_by_another_run", accountID: "acct_42", meterID: "claude_tokens", modelID: model,
                    kind: .correction, correctionRef: "recon_may_2026_vendor_\(vendor)", quantity: 520_000, unit: "tokens",
                    timestamp: Timestamp(rfc3339: "2026-05-31T23:59:59Z")!, dimensions: dims))
        ])
        try await expectApplyRefused(cut.id, on: store, "a run whose model took a correction since was applied (\(vendor), \(tokenType ?? "no token type"))") {
            $0.contains("of any model, period, token type or vendor then and 1 now")
        }
    }
}

extension EvidenceTests {
    /// A correction posted and reverted in the cell between two runs (another run's, or a pair
    /// by hand) nets to nothing, so the first run's meter check passed, yet the two runs named
    /// different slots, and applied from two processes at once both posted (+1,040,000). The
    /// cell's count of corrections is part of the check: the older run is refused.
    @Test func aCorrectionPostedAndRevertedSinceTheRunStopsItsApply() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let older = try await recordKata(on: store)
        func correction(_ id: String, _ q: Int64) -> IngestItem {
            .event(
                UsageEvent(
                    eventID: id, accountID: "acct_42", meterID: "claude_tokens", modelID: "claude-sonnet-4-5", kind: .correction, correctionRef: "by_hand",
                    quantity: q, unit: "tokens", timestamp: Timestamp(rfc3339: "2026-05-15T00:00:00Z")!,
                    dimensions: ["token_type": "input", "vendor": "anthropic"]))
        }
        _ = try await store.ingest([correction("plus", 1_000), correction("minus", -1_000)])
        let newer = try await recordKata(on: store)
        #expect(older.corrections.map(\.quantity) == [520_000] && newer.corrections.map(\.quantity) == [520_000])
        #expect(older.corrections.map(\.eventID) != newer.corrections.map(\.eventID))
        try await expectApplyRefused(older.id, on: store, "a run made before a net-zero correction pair was applied") {
            $0.contains("the meter changed") && $0.contains("0 correction(s) then and 2 now")
        }
        _ = try await service.apply(id: newer.id, confirmLarge: false, store: store, log: store)
        #expect(try await store.explain(account: "acct_42", range: S.may).totals.corrections == 520_000)
    }
}

/// Another process's post lands between this one's meter check and its own post.
struct OtherProcessPostsFirst: ForwardingStore {
    let inner: any MeterStore
    let first: [IngestItem]
    func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        _ = try await inner.ingest(first)
        return try await inner.ingest(batch)
    }
}

extension EvidenceTests {
    /// acct_7's May of Sonnet 4.6 and a bill of it whose input gap lies on the last three days
    /// alone (held) and whose output gap is a steady 20,000 a day (proposed).
    func heldInputAndSteadyOutput() async throws -> (SQLiteMeterStore, InvoiceFile) {
        let store = try S.store()
        var events: [IngestItem] = []
        for d in 1...31 {
            events.append(S.event("in\(d)", account: "acct_7", model: "claude-sonnet-4-6", type: "input", quantity: 1_000_000, day: d, vendor: "anthropic"))
            events.append(S.event("out\(d)", account: "acct_7", model: "claude-sonnet-4-6", type: "output", quantity: 200_000, day: d, vendor: "anthropic"))
        }
        _ = try await store.ingest(events)
        let bill = S.costReport(
            (1...31).flatMap { d -> [S.Row] in
                [
                    .init(day: d, model: "claude-sonnet-4-6", tokenType: "uncached_input_tokens", cents: d >= 29 ? "390" : "300"),
                    .init(day: d, model: "claude-sonnet-4-6", tokenType: "output_tokens", cents: "330"),
                ]
            })
        return (store, bill)
    }

    /// A run whose input gap is held (the last three days alone) and whose output gap is a steady
    /// loss: the held input took the model's first slot and the output the second, so apply
    /// without --confirm-large left the first empty, and every later run of the model claimed
    /// the taken second id — "run again" never worked (the tester's find1). Proposed corrections
    /// now take a model's first slots, held ones the next: a re-run posts the held input after.
    @Test func aHeldCorrectionLeavesNoEmptySlot() async throws {
        let (store, bill) = try await heldInputAndSteadyOutput()
        let options = ReconciliationOptions(vendor: "anthropic", invoices: [bill], range: S.may, account: "acct_7")
        let (first, _) = try await service.run(options, store: store, log: store)
        #expect(
            first.corrections.map { "\($0.dimensions["token_type"] ?? "") \($0.quantity)" } == ["output 620000"]
                && first.held.map { "\($0.reason) \($0.correction.quantity)" } == ["same_share_on_last_days 900000"],
            "\(first.corrections.map(\.quantity)) \(first.held.map(\.detail)) \(first.reasons.map(\.code))")
        #expect(try await service.apply(id: first.id, confirmLarge: false, store: store, log: store).accepted == 1)
        let (again, _) = try await service.run(options, store: store, log: store)
        #expect(again.corrections.isEmpty && again.held.map(\.correction.quantity) == [900_000], "\(again.held.map(\.detail))")
        #expect(try await service.apply(id: again.id, confirmLarge: true, store: store, log: store).accepted == 1, "the next slot is free")
        #expect(try await store.explain(account: "acct_7", range: S.may).totals.corrections == 1_520_000)
    }

    /// A revert from another process lands while `apply --confirm-large` posts the run's held
    /// correction: each wrote the record it had read, the last one winning — "reverted", the held
    /// correction on the meter and missing from `applied_event_ids`, so no revert took it back
    /// (the tester's find4). Records now merge, and the apply that finds its run reverted takes
    /// back what it posted: the meter nets to zero and the answer says so.
    @Test func aRevertLandingWhileApplyPostsLeavesNothingOnTheMeter() async throws {
        let (store, bill) = try await heldInputAndSteadyOutput()
        let (run, _) = try await service.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [bill], range: S.may, account: "acct_7"), store: store, log: store)
        #expect(try await service.apply(id: run.id, confirmLarge: false, store: store, log: store).accepted == 1)
        let applied = try #require(try await ReconciliationArchive(store).report(id: run.id))
        let otherProcess = RevertsFirst(inner: store, archive: ReconciliationArchive(store), report: applied)
        do {
            _ = try await service.apply(id: run.id, confirmLarge: true, store: otherProcess, log: store)
            Issue.record("an apply into a run reverted meanwhile answered success")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("while this apply posted"), "\(e.message)")
        }
        #expect(try await store.explain(account: "acct_7", range: S.may).totals.corrections == 0, "everything taken back")
        let record = try #require(try await ReconciliationArchive(store).report(id: run.id))
        #expect(record.revertedAt != nil && record.appliedEventIDs.count == 2)
    }
}

/// Another process reverts the run (its compensations, then its record) just before this one's post.
struct RevertsFirst: ForwardingStore {
    let inner: any MeterStore
    let archive: ReconciliationArchive
    let report: ReconciliationReport
    func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        var reverted = report
        if reverted.revertedAt == nil {
            let posted = Set(report.appliedEventIDs)
            let compensations = report.everyCorrection.filter { posted.contains($0.eventID) }
                .map(ReconciliationRunner.compensation)
            _ = try await inner.ingest(try await ReconciliationRunner.events(compensations, store: inner))
            reverted.revertedAt = Timestamp.now()
            try await archive.update(reverted)
        }
        return try await inner.ingest(batch)
    }
}

extension EvidenceTests {
    /// A late event that landed while the run read the meter: the gaps were read before it and the
    /// run's record of the meter after, so apply saw nothing move and posted the gap the event had
    /// partly filled (an outside tester's run: +19,000,000 posted, −500,000 found by a fresh run).
    /// The run is held, and apply refuses it.
    @Test func aLateEventArrivingDuringTheRunHoldsIt() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let late = LateEventDuringRun(
            inner: store, event: S.event("late", model: "cLaUde-SONNET-4-5", type: "input", quantity: 500_000, day: 15, vendor: "anthropic"))
        let options = ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42")
        let report = try await service.run(options, store: late, log: store).report
        #expect(late.arrived, "the late event landed during the run")
        #expect(report.verdict == .inconclusive && report.reasons.contains { $0.code == "meter_moved_during_run" }, "\(report.reasons.map(\.code))")
        // Held like any inconclusive run: no corrections listed, the gap not called a metering gap.
        #expect(report.corrections.isEmpty && report.held.isEmpty && !report.findings.contains { $0.gapClass == .meteringGap }, "\(report.findings)")
        await #expect(throws: UsageBoxError.self) { _ = try await service.apply(id: report.id, confirmLarge: false, store: store, log: store) }
        // Run again, nothing arriving: conclusive, its correction net of the late event.
        let again = try await service.engine.run(options, store: store)
        #expect(again.verdict == .conclusive && !again.reasons.contains { $0.code == "meter_moved_during_run" })
        #expect(again.corrections.map(\.quantity) == [20_000], "\(again.corrections.map(\.quantity))")
    }
}

/// Ingests one event right after the run's main read of the meter (grouped by day), as a client
/// sending late usage at month-end does while a reconciliation runs.
final class LateEventDuringRun: ForwardingStore, @unchecked Sendable {
    let inner: any MeterStore
    let event: IngestItem
    private let lock = NSLock()
    private var sent = false
    var arrived: Bool { lock.withLock { sent } }

    init(inner: any MeterStore, event: IngestItem) {
        self.inner = inner
        self.event = event
    }

    func usage(_ query: UsageQuery) async throws -> UsageResult {
        let answer = try await inner.usage(query)
        let first = lock.withLock {
            guard query.groupBy.contains(.day), !sent else { return false }
            sent = true
            return true
        }
        if first { _ = try await inner.ingest([event]) }
        return answer
    }
}

extension EvidenceTests {
    /// The vendor re-issued May billing +1,000,000 after +2,200,000 was applied from its first
    /// invoice, and no usage arrived since: held, as it should be, but explained as late usage now
    /// metered (`earlier_corrections_now_metered`), dated by days the vendor billed more. It is
    /// named for what changed, the bill; late events after the same invoice keep the old name.
    @Test func aReissuedInvoiceIsNotCalledLateUsage() async throws {
        let store = try S.store()
        _ = try await store.ingest(
            (1...31).map { d in Self.event("e\(d)", model: "claude-sonnet-4-5", type: "input", quantity: 4_000_000, day: d) })
        func bill(_ loss: ClosedRange<Int>, lessOn: Int? = nil) -> InvoiceFile {
            S.costReport(
                (1...31).map { d in
                    .init(
                        day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens",
                        cents: d == lessOn ? "1176" : loss.contains(d) ? "1260" : "1200")
                })
        }
        let options = { (b: InvoiceFile) in ReconciliationOptions(vendor: "anthropic", invoices: [b], range: S.may, account: "acct_42") }
        let first = try await service.run(options(bill(10...20)), store: store, log: store, apply: true).report
        #expect(first.applied && first.corrections.map(\.quantity) == [2_200_000], "\(first.corrections.map(\.quantity))")
        let amended = try await service.engine.run(options(bill(10...14)), store: store, log: store)
        let input = try #require(amended.findings.first { $0.tokenType == .input })
        #expect(amended.corrections.isEmpty && input.quantity == -1_200_000)
        #expect(
            input.reason == "invoice_changed_since_earlier_corrections" && input.gapSince == nil && input.gapDays == nil,
            "\(input.reason) \(input.gapSince ?? "")")
        // Re-issued billing 80,000 fewer on May 25 alone: the meter is as the run left it, so no
        // batch was replayed there (it was named usage_off_the_bill_on_a_day_after_earlier_corrections).
        let oneDay = try await service.engine.run(options(bill(10...20, lessOn: 25)), store: store, log: store)
        let onDay = try #require(oneDay.findings.first { $0.tokenType == .input })
        #expect(oneDay.corrections.isEmpty && onDay.quantity == -80_000 && onDay.reason == "invoice_changed_since_earlier_corrections", "\(onDay.reason)")
        // Late events under the same first invoice: that is usage now metered.
        _ = try await store.ingest([Self.event("late", model: "claude-sonnet-4-5", type: "input", quantity: 200_000, day: 12)])
        let again = try await service.engine.run(options(bill(10...20)), store: store, log: store)
        #expect(again.findings.first { $0.tokenType == .input }?.reason == "earlier_corrections_now_metered", "\(again.findings.map(\.reason))")
    }
}

extension EvidenceTests {
    /// A late event on a meter in thousands of tokens, between the run and its apply: apply's
    /// checks read meters in tokens only and posted +520,000, which a fresh run holds
    /// (`metered_in_other_units`). Refused.
    @Test func aLateEventInScaledTokensStopsTheApply() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let report = try await recordKata(on: store)
        #expect(report.corrections.map(\.quantity) == [520_000])
        try await S.ingestScaled(
            store, id: "late_k", meter: "claude_ktokens", unit: "tokens_k", model: "claude-sonnet-4-5", quantity: 520, at: "2026-05-12T12:00:00Z")
        try await expectApplyRefused(report.id, on: store, "a late event in tokens_k was billed again") { $0.contains("the meter changed") }
    }
}

extension EvidenceTests {
    /// A run with an account map, then an account the map does not name metering the model it
    /// corrects upward: a fresh run holds (`unmapped_account_meters_model`), and apply, which never
    /// looked outside the map, posted +520,000. Refused; per model, so a hand correction taking
    /// as much off another model of that account does not hide it. Another vendor's label, or a
    /// model the run does not correct, does not refuse, as a fresh run does not hold.
    @Test(arguments: [
        ("claude-sonnet-4-5", "anthropic", false, true), ("claude-sonnet-4-5", "aws-bedrock", false, false), ("gpt-4o", "anthropic", false, false),
        ("claude-haiku-4-5", "anthropic", false, false), ("claude-sonnet-4-5", "anthropic", true, true),
    ])
    func anAccountOutsideTheMapMeteringTheModelStopsTheApply(model: String, vendor: String, offset: Bool, refused: Bool) async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        if offset {
            _ = try await store.ingest([
                S.event("haiku", account: "acct_other", model: "claude-haiku-4-5", type: "input", quantity: 520_000, day: 3, vendor: "anthropic")
            ])
        }
        var options = ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: nil)
        options.accountMap = ["wrkspc_01KataDemo42": "acct_42"]
        let r = try await service.run(options, store: store, log: store).report
        // An unmapped account metering another of the invoice's models holds nothing of Sonnet.
        #expect(r.corrections.map(\.quantity) == [520_000] && r.mapBasis?.mapped == ["acct_42"], "\(r.reasons.map(\.code))")
        guard !offset else {
            _ = try await store.ingest([
                S.event("late", account: "acct_other", model: model, type: "input", quantity: 520_000, day: 20, vendor: vendor),
                .event(
                    UsageEvent(
                        eventID: "takeback", accountID: "acct_other", meterID: "claude_tokens", modelID: "claude-haiku-4-5", kind: .correction,
                        correctionRef: "haiku", quantity: -520_000, unit: "tokens", timestamp: Timestamp(rfc3339: "2026-05-21T00:00:00Z")!,
                        dimensions: ["token_type": "input", "vendor": "anthropic"])),
            ])
            try await expectApply(r.id, on: store, refused: true, because: "the account map does not name", "offset")
            return
        }
        _ = try await store.ingest([S.event("late", account: "acct_other", model: model, type: "input", quantity: 520_000, day: 20, vendor: vendor)])
        // Anthropic's Haiku, which the run does not correct, holds no fresh run; the run of every
        // account refuses it all the same (`scope_events` counts the vendor's late usage anywhere
        // in scope): run again, and the fresh run's same correction posts.
        let stillHeld = refused || vendor == "anthropic"
        try await expectApply(
            r.id, on: store, refused: stillHeld, because: refused ? "the account map does not name" : "the accounts it read hold", "\(model) \(vendor)")
        let fresh = try await service.engine.run(options, store: store)
        #expect(
            fresh.reasons.contains { $0.code == "unmapped_account_meters_model" && $0.modelID == "claude-sonnet-4-5" } == refused,
            "\(fresh.reasons.map(\.code))")
        if stillHeld, !refused, model.hasPrefix("claude") {
            let again = try await service.run(options, store: store, log: store).report
            #expect(again.corrections.map(\.quantity) == [520_000])
            #expect(try await service.apply(id: again.id, confirmLarge: false, store: store, log: store).accepted == 1)
        }
    }
}

extension EvidenceTests {
    /// An account the map does not name, metering a model the invoice does not bill: the run
    /// backs its usage out, held for review. It then meters one of the invoice's models, so a
    /// fresh run holds the backing out (`account_not_in_map`: the invoice may bill it under a
    /// mapped key), and `--confirm-large` posted −5,000,000 all the same. Refused now.
    /// `--account` with a map: a fresh run checks no account outside the map then (the one
    /// account is the run's), and apply refused for good the held backing out of that account's
    /// Sonnet because it meters Haiku, one of the invoice's models.
    @Test func aRunOfOneAccountWithAMapIsNotRefusedForMeteringTheInvoicesModels() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.event("a", account: "acct_3", model: "claude-haiku-4-5", type: "input", quantity: 1_000_000),
            Self.event("b", account: "acct_3", model: "claude-sonnet-4-5", type: "input", quantity: 5_000_000),
            Self.event("c", account: "acct_1", model: "claude-sonnet-4-5", type: "input", quantity: 1_000_000),
        ])
        let invoice = S.costReport([
            .init(model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100", workspace: "wrkspc_9"),
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300", workspace: "wrkspc_1"),
        ])
        var options = ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: S.may, account: "acct_3")
        options.accountMap = ["wrkspc_1": "acct_1"]
        let r = try await service.run(options, store: store, log: store).report
        #expect(r.held.map { "\($0.correction.accountID) \($0.correction.quantity)" } == ["acct_3 -5000000"], "\(codes(r))")
        let fresh = try await service.engine.run(options, store: store)
        #expect(fresh.held.map(\.correction.quantity) == [-5_000_000] && !codes(fresh).contains("account_not_in_map"))
        #expect(try await service.apply(id: r.id, confirmLarge: true, store: store, log: store).accepted == 1)
    }

    @Test func aHeldBackingOutOfAnUnmappedAccountIsRecheckedAtApply() async throws {
        let store = try S.store()
        let invoice = try await meterAnAccountOutsideTheMap(store, model: "claude-sonnet-4-5")
        var options = ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: S.may, account: nil)
        options.accountMap = ["wrkspc_1": "acct_1"]
        let r = try await service.run(options, store: store, log: store).report
        #expect(r.held.map { "\($0.correction.accountID) \($0.correction.quantity)" } == ["acct_3 -5000000"] && r.mapBasis != nil)
        _ = try await store.ingest([Self.event("late", account: "acct_3", model: "claude-haiku-4-5", type: "input", quantity: 1_000, day: 20)])
        let fresh = try await service.engine.run(options, store: store)
        #expect(fresh.findings.first { $0.accountID == "acct_3" && $0.modelID == "claude-sonnet-4-5" }?.blockedBy == ["account_not_in_map"])
        do {
            _ = try await service.apply(id: r.id, confirmLarge: true, store: store, log: store)
            Issue.record("backed out acct_3's usage, which the invoice may now bill under wrkspc_1")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("account_not_in_map"), "\(e.message)")
        }
    }
}

extension EvidenceTests {
    /// A run of several accounts (an account map) is held by another account's usage under a
    /// mistyped label (`metered_under_unknown_vendor` names the model, not an account); apply
    /// read only the corrected account's labels and posted +520,000.
    @Test func anotherAccountsMislabelledUsageStopsAnAccountMapRunsApply() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        var options = ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: nil)
        options.accountMap = ["wrkspc_01KataDemo42": "acct_42"]
        let r = try await service.run(options, store: store, log: store).report
        #expect(r.corrections.map(\.quantity) == [520_000], "\(codes(r))")
        _ = try await store.ingest([
            S.event("late", account: "acct_other", model: "claude-sonnet-4-5", type: "input", quantity: 520_000, day: 20, vendor: "Anthropic")
        ])
        let fresh = try await service.engine.run(options, store: store)
        #expect(codes(fresh).contains("metered_under_unknown_vendor") && fresh.corrections.isEmpty, "\(codes(fresh))")
        // Refused by the map's check (a label that may be this vendor's counts as its usage), or
        // by the labels' own.
        try await expectApplyRefused(r.id, on: store, "another account's Sonnet under vendor=Anthropic") {
            $0.contains("vendor='Anthropic'") || $0.contains("unmapped_account_meters_model")
        }
    }

    /// An unrelated event sent under a run's correction id (a request count in August): read
    /// back by id, it passed for the run's correction, and revert of a run never applied posted
    /// −520,000. Only the very content the run posts counts as its own.
    @Test func anUnrelatedEventUnderACorrectionsIdIsNotTheRunsOwn() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let r = try await recordKata(on: store)
        let id = try #require(r.corrections.first?.eventID)
        let sent = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: id, accountID: "acct_42", meterID: "api_requests", modelID: nil, quantity: 3, unit: "requests",
                    timestamp: Timestamp(rfc3339: "2026-08-02T00:00:00Z")!))
        ])
        #expect(sent.accepted == 1, "\(sent.errors)")
        do {
            let posted = try await service.revert(id: r.id, store: store, log: store)
            Issue.record("reverted a correction never posted: \(posted)")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("nothing to revert"), "\(e.message)")
        }
        let may = try await store.usage(UsageQuery(scope: .accounts(["acct_42"]), range: S.may, groupBy: [.kind]))
        #expect(!may.groups.contains { $0.keys[0] == "Correction" }, "no correction in May")
    }

    /// A run of every account (an account map, no `--account`): a fresh run holds for what any
    /// account meters since — a model id read only loosely, a meter in thousands of tokens — and
    /// apply, reading the corrected account, posted +520,000. It counts the accounts' events of
    /// this vendor (or a label that may be it, or none) against the run's; another vendor's
    /// usage does not stop it.
    @Test(arguments: [
        ("claude-sonnet-4.5", "anthropic", false, true), ("claude-sonnet-4-5", "anthropic", true, true),
        ("gpt-4o", "openai", false, false), ("claude-sonnet-4-5", "aws-bedrock", false, false),
    ])
    func anyAccountsLateUsageStopsARunOfEveryAccount(model: String, vendor: String, scaled: Bool, refused: Bool) async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        var options = ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: nil)
        options.accountMap = ["wrkspc_01KataDemo42": "acct_42"]
        let r = try await service.run(options, store: store, log: store).report
        #expect(r.corrections.map(\.quantity) == [520_000] && r.scopeEvents != nil, "\(codes(r))")
        if scaled {
            try await TestSupport.ingestScaled(
                store, id: "late_k", meter: "claude_ktokens", unit: "tokens_k", model: model, quantity: 5, at: "2026-05-12T12:00:00Z")
        } else {
            _ = try await store.ingest([S.event("late", account: "acct_other", model: model, type: "input", quantity: 5_000, day: 20, vendor: vendor)])
        }
        if refused {
            let fresh = try await service.engine.run(options, store: store)
            #expect(fresh.corrections.isEmpty, "a fresh run holds: \(codes(fresh))")
        }
        try await expectApply(r.id, on: store, refused: refused, because: "the meter changed", "\(model) \(vendor) \(scaled)")
    }

    /// Two mapped accounts, a run of both: acct_a's +660,000 of Sonnet. Late usage on acct_b,
    /// whose cells the run does not correct — on a meter in thousands of tokens, or under an id
    /// read only loosely — makes a fresh run hold (`metered_in_other_units`,
    /// `unplaced_metered_usage`), and apply, which re-read only acct_a, posted +660,000.
    @Test(arguments: [true, false])
    func anotherMappedAccountsLateUsageStopsTheRunOfBoth(scaled: Bool) async throws {
        let store = try S.store()
        var events: [IngestItem] = []
        var rows: [TestSupport.Row] = []
        for day in 1...31 {
            for (account, workspace) in [("acct_a", "wrkspc_a"), ("acct_b", "wrkspc_b")] {
                events.append(
                    S.event(
                        "s_\(account)_\(day)", account: account, model: "claude-sonnet-4-5", type: "input", quantity: 4_000_000, day: day, vendor: "anthropic"))
                events.append(
                    S.event(
                        "h_\(account)_\(day)", account: account, model: "claude-haiku-4-5", type: "input", quantity: 2_000_000, day: day, vendor: "anthropic"))
                let short = account == "acct_a" && day >= 10
                rows.append(
                    .init(day: day, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: short ? "1209" : "1200", workspace: workspace))
                rows.append(.init(day: day, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "200", workspace: workspace))
            }
        }
        _ = try await store.ingest(events)
        var options = ReconciliationOptions(vendor: "anthropic", invoices: [S.costReport(rows)], range: S.may, account: nil)
        options.accountMap = ["wrkspc_a": "acct_a", "wrkspc_b": "acct_b"]
        let r = try await service.run(options, store: store, log: store).report
        #expect(r.corrections.map { "\($0.accountID) \($0.quantity)" } == ["acct_a 660000"], "\(codes(r))")
        if scaled {
            _ = try await store.setMeter("claude_ktokens", unit: "tokens_k", rollupDimensions: nil)
            let late = UsageEvent(
                eventID: "late", accountID: "acct_b", meterID: "claude_ktokens", modelID: "claude-sonnet-4-5", quantity: 5, unit: "tokens_k",
                timestamp: Timestamp(rfc3339: "2026-05-20T12:00:00Z")!, dimensions: ["token_type": "input", "vendor": "anthropic"])
            #expect(try await store.ingest([.event(late)]).accepted == 1)
        } else {
            _ = try await store.ingest([
                S.event("late", account: "acct_b", model: "claude-sonnet-4.5", type: "input", quantity: 5_000, day: 20, vendor: "anthropic")
            ])
        }
        let fresh = try await service.engine.run(options, store: store)
        #expect(fresh.corrections.isEmpty, "a fresh run holds: \(codes(fresh))")
        try await expectApplyRefused(r.id, on: store, "acct_b's late usage, which a fresh run holds for") { $0.contains("the accounts it read hold") }
    }

    /// An event holding a run's revert id with other content: the revert was refused, and
    /// revert answered success (exit 0, "conflicts 1") with +520,000 still on the meter. It is
    /// a 409 saying the corrections stay.
    @Test func aRevertTheMeterRefusesIsNoSuccess() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let r = try await recordKata(on: store)
        #expect(try await service.apply(id: r.id, confirmLarge: false, store: store, log: store).accepted == 1)
        let revertID = ReconciliationRunner.compensation(try #require(r.corrections.first)).eventID
        _ = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: revertID, accountID: "acct_42", meterID: "api_requests", modelID: nil, quantity: 1, unit: "requests",
                    timestamp: Timestamp(rfc3339: "2026-07-01T00:00:00Z")!))
        ])
        do {
            _ = try await service.revert(id: r.id, store: store, log: store)
            Issue.record("a refused revert answered success")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("was not reverted") && e.message.contains(revertID), "\(e.message)")
        }
        #expect(try await ReconciliationArchive(store).report(id: r.id)?.revertedAt == nil)
    }

    /// A run whose corrections are all on the meter while its record says unapplied (an apply
    /// that died between posting and recording): a retry answers duplicates and records the run
    /// applied, so a run cutting across its period is held (`overlaps_reconciled_period`).
    @Test func aRetryOfAnApplyThatDiedBeforeItsRecordRecordsIt() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let r = try await recordKata(on: store)
        #expect(try await store.ingest(try await ReconciliationRunner.events(r.corrections, store: store)).accepted == 1)
        let retried = try await service.apply(id: r.id, confirmLarge: false, store: store, log: store)
        #expect(retried.duplicates == 1 && retried.accepted == 0)
        let stored = try #require(try await ReconciliationArchive(store).report(id: r.id))
        #expect(stored.applied && stored.appliedEventIDs == r.corrections.map(\.eventID))
        let across = try TimeRange(from: "2026-05-15T00:00:00Z", to: "2026-06-15T00:00:00Z")
        let later = try await service.engine.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: across, account: "acct_42"), store: store,
            log: store)
        #expect(codes(later).contains("overlaps_reconciled_period"), "\(codes(later))")
    }

    /// A Usage event sent under the id of an account's next correction slot: every fresh run
    /// proposed that id again and every apply of it conflicted, for good. The slot is skipped.
    @Test func aSlotIdHeldByAnotherKindOfEventIsSkipped() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let r = try await recordKata(on: store)
        let id = try #require(r.corrections.first?.eventID)
        _ = try await store.ingest([
            .event(
                UsageEvent(
                    eventID: id, accountID: "acct_42", meterID: "api_requests", modelID: nil, quantity: 2, unit: "requests",
                    timestamp: Timestamp(rfc3339: "2026-07-03T00:00:00Z")!))
        ])
        let fresh = try await recordKata(on: store)
        #expect(fresh.corrections.map(\.quantity) == [520_000] && fresh.corrections.first?.eventID != id)
        #expect(try await service.apply(id: fresh.id, confirmLarge: false, store: store, log: store).accepted == 1)
    }

    /// A run read through a card this binary no longer ships (replaced by an upgrade between run
    /// and apply): apply's checks cannot read ids as the run did, and the new card may price the
    /// invoice otherwise. Refused, naming the card; it read ids loosely only before.
    @Test func aRunThroughACardNoLongerShippedIsNotApplied() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        var r = try await recordKata(on: store)
        r.rateCard.sha256 = String(repeating: "0", count: 64)
        try await ReconciliationArchive(store).update(r)
        try await expectApplyRefused(r.id, on: store, "applied through a card it cannot read") { $0.contains("not a card this usagebox ships") }
    }

    /// An account whose own events carry no `vendor` label: the run read every other account's
    /// usage under any label (another's Claude through Bedrock held it, `other_accounts_in_scope`)
    /// while apply left other vendors' labels out. Both read labels across every account now.
    @Test func anotherVendorsUsageElsewhereDoesNotHoldAnUnlabelledAccount() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            S.event("own", model: "claude-sonnet-4-5", type: "input", quantity: 1_000_000),
            S.event("bedrock", account: "acct_9", model: "claude-sonnet-4-5", type: "input", quantity: 520_000, vendor: "aws-bedrock"),
        ])
        let invoice = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "360")])
        let r = try await run(store, [invoice])
        #expect(!codes(r).contains("other_accounts_in_scope") && r.corrections.map(\.quantity) == [200_000], "\(codes(r))")
    }

    /// Another account's models netting to zero (Sonnet metered, as much Haiku taken back by a
    /// hand correction): a fresh run adds them up and is conclusive, and apply, reading them per
    /// model, refused for good. It adds them up as the run does.
    @Test func anotherAccountsModelsAreAddedUpAtApplyAsInTheRun() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        _ = try await store.ingest([
            Self.event("sonnet", account: "acct_9", model: "claude-sonnet-4-5", type: "input", quantity: 520_000, day: 3),
            .event(
                UsageEvent(
                    eventID: "takeback", accountID: "acct_9", meterID: "claude_tokens", modelID: "claude-haiku-4-5", kind: .correction,
                    correctionRef: "x", quantity: -520_000, unit: "tokens", timestamp: Timestamp(rfc3339: "2026-05-04T00:00:00Z")!,
                    dimensions: ["token_type": "input", "vendor": "anthropic"])),
        ])
        let report = try await recordKata(on: store)
        #expect(report.isConclusive && report.corrections.map(\.quantity) == [520_000], "\(report.reasons.map(\.code))")
        let posted = try await service.apply(id: report.id, confirmLarge: false, store: store, log: store)
        #expect(posted.accepted == 1, "\(posted)")
    }

    /// An account already holding 1,000 hand corrections (netting to zero) at the period's last
    /// second, where a run's corrections are dated: apply posted, then could not read its own
    /// corrections back (explain lists a second's latest 1,000) and failed, and revert was refused
    /// too, leaving +520,000 on the meter with no way back. Corrections are read back by id.
    @Test func aRunsCorrectionsAreReadBackAmongAThousandOthersInTheirSecond() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        _ = try await store.ingest(
            (0..<1_000).map { i in
                .event(
                    UsageEvent(
                        eventID: "hand_\(i)", accountID: "acct_42", meterID: "claude_tokens", modelID: "claude-haiku-4-5", kind: .correction,
                        correctionRef: "hand_fix", quantity: i % 2 == 0 ? 1_000 : -1_000, unit: "tokens",
                        timestamp: Timestamp(rfc3339: "2026-05-31T23:59:59Z")!, dimensions: ["token_type": "input", "vendor": "anthropic"]))
            })
        let report = try await recordKata(on: store)
        #expect(report.corrections.map(\.quantity) == [520_000], "\(report.reasons.map(\.code))")
        #expect(try await service.apply(id: report.id, confirmLarge: false, store: store, log: store).accepted == 1)
        #expect(try await service.revert(id: report.id, store: store, log: store).accepted == 1)
        let sum = try await store.usage(UsageQuery(scope: .accounts(["acct_42"]), range: S.may, groupBy: [])).groups.first?.aggregate.sum
        let fresh = try await recordKata(on: store)
        #expect(fresh.corrections.map(\.quantity) == [520_000], "reverted: the gap is back (\(String(describing: sum)))")
    }

    /// A run under `--model-map`, or with a card given as a file, read other accounts' model ids
    /// through them; apply read them through the shipped card alone, so another account's late
    /// usage under a name only the map knows was posted to this one where a fresh run holds
    /// (`other_accounts_in_scope`). The report keeps the map (and a file card's text); apply
    /// reads through them.
    @Test(arguments: [false, true])
    func anotherAccountsUsageUnderAModelMapsNameStopsTheApply(cardFromFile: Bool) async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        var o = ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42")
        o.modelMap = ["house-sonnet": "claude-sonnet-4-5"]
        if cardFromFile {
            let shipped = try #require(service.engine.cards["anthropic"])
            o.rateCard = try RateCard.load(text: shipped.source + "\n# a copy kept by the team\n", file: "team-card.yaml")
        }
        let report = try await service.run(o, store: store, log: store).report
        #expect(report.corrections.map(\.quantity) == [520_000], "\(codes(report))")
        #expect(report.rateCard.modelMap == o.modelMap && (report.rateCard.yaml != nil) == cardFromFile)
        _ = try await store.ingest([Self.event("late", account: "acct_9", model: "house-sonnet", type: "input", quantity: 1_000, day: 3)])
        let fresh = try await service.run(o, store: store, log: store).report
        #expect(codes(fresh).contains("other_accounts_in_scope"), "\(codes(fresh))")
        try await expectApplyRefused(report.id, on: store, "another account's usage under the map's name was posted to acct_42") {
            $0.contains("other accounts now meter the invoice's models")
        }
    }
}
