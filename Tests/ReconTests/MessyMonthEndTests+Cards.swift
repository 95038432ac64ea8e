import Foundation
import MeterStoreSQLite
import Metering
import RateCardData
import ReconCore
import Testing

/// The rate card against the bill's money over time: a price change the card has and the bill
/// does not, and lines whose span crosses a change of the card's price. Each proposed a wrong
/// correction on a conclusive run before its fix (an outside tester's repros, rebuilt here).
extension MessyMonthEndTests {
    /// The Anthropic card with Haiku input cut from $1 to $0.50 at `at` (a date or an instant).
    static func cardCuttingHaikuInput(at: String) throws -> RateCard { try cardPricingHaikuInput(["1", at, "0.50"]) }

    /// The Anthropic card with Haiku input priced in turn: a price, the instant it ends, the next
    /// price, … (`["1", "2026-05-10", "0.50"]`).
    static func cardPricingHaikuInput(_ steps: [String]) throws -> RateCard {
        let original =
            #"      - {from: "2025-10-15", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing, litellm]}"#
        var rows: [String] = []
        var from = "2025-10-15"
        for i in stride(from: 0, to: steps.count, by: 2) {
            let to = i + 1 < steps.count ? ", to: \"\(steps[i + 1])\"" : ""
            rows.append(
                #"      - {from: "\#(from)"\#(to), rates: {input: "\#(steps[i])", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}"#
            )
            if i + 1 < steps.count { from = steps[i + 1] }
        }
        let text = RateCardData.cards["anthropic"]!
        #expect(text.contains(original), "the card's Haiku row moved: update this test")
        return try RateCard.load(text: text.replacingOccurrences(of: original, with: rows.joined(separator: "\n")), file: "stepped.yaml")
    }

    /// The Anthropic card with every Haiku price halved from `from`.
    static func cardHalvingEveryHaikuPrice(from: String) throws -> RateCard {
        let original =
            #"      - {from: "2025-10-15", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing, litellm]}"#
        let stepped = [
            #"      - {from: "2025-10-15", to: "\#(from)", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}"#,
            #"      - {from: "\#(from)", rates: {input: "0.50", output: "2.50", cache_read: "0.05", cache_write_5m: "0.625", cache_write_1h: "1"}, src: [anthropic_pricing]}"#,
        ].joined(separator: "\n")
        let text = RateCardData.cards["anthropic"]!
        #expect(text.contains(original), "the card's Haiku row moved: update this test")
        return try RateCard.load(text: text.replacingOccurrences(of: original, with: stepped), file: "stepped.yaml")
    }

    /// A cost report of Haiku input, the day's cents given per day.
    static func haikuBill(_ cents: (Int) -> String) -> InvoiceFile {
        TestSupport.costReport((1...31).map { .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: cents($0)) })
    }

    /// One Haiku input event on acct_42 at an instant (RFC 3339).
    static func haikuInput(_ id: String, _ tokens: Int64, at: String) -> IngestItem {
        .event(
            UsageEvent(
                eventID: id, accountID: "acct_42", meterID: "claude_tokens", modelID: "claude-haiku-4-5", quantity: tokens, unit: "tokens",
                timestamp: Timestamp(rfc3339: at)!, dimensions: ["token_type": "input", "vendor": "anthropic"]))
    }

    /// A meter of 1,000,000 Haiku input tokens a day, May 1–31.
    func haikuEveryDay() async throws -> SQLiteMeterStore {
        try await store((1...31).map { ("acct_42", "claude-haiku-4-5", "input", 1_000_000, $0) }, vendor: "anthropic")
    }

    /// The card halves every Haiku price from May 15 and the bill never moved: every token type
    /// reads the same share over the meter from that day, and the one-model-factor hold took it
    /// first, naming the share — which points a reader at the meter, not at the card (tester N).
    /// Still held; the reason names the card's day.
    @Test func aCardStepOnEveryTokenTypeOfAModelIsNamedAsTheCards() async throws {
        let store = try await store(
            (1...31).flatMap { [("acct_42", "claude-haiku-4-5", "input", 1_000_000, $0), ("acct_42", "claude-haiku-4-5", "output", 100_000, $0)] },
            vendor: "anthropic")
        let invoice = S.costReport(
            (1...31).flatMap {
                [
                    .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100"),
                    .init(day: $0, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: "50"),
                ]
            })
        let card = try Self.cardHalvingEveryHaikuPrice(from: "2026-05-15")
        let r = try await run("anthropic", [invoice], store, account: "acct_42") { $0.rateCard = card }
        let gapped = r.findings.filter { $0.gapClass != .withinTolerance }
        #expect(gapped.count == 2, "\(r.findings.map { "\($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.reason)" })")
        #expect(
            gapped.allSatisfy { $0.gapClass == .unexplained && $0.reason == "card_price_changed_on_2026-05-15_the_bill_did_not" }, "\(gapped.map(\.reason))")
        #expect(r.corrections.isEmpty && r.held.isEmpty)
    }

    /// The card cuts Haiku input to $0.50 from May 15; the vendor billed $1 a day all month (the
    /// card's date, or the cut itself, is wrong). Read at the card's price the bill is 1.5× the
    /// meter from May 15 — and the money per metered token never moved, which a real cut would
    /// have made it do. Held, not +8,500,000 tokens of "untracked usage".
    @Test func aCardPriceChangeTheBillDoesNotShowIsHeld() async throws {
        let store = try await haikuEveryDay()
        let invoice = S.costReport((1...31).map { .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100") })
        let card = try Self.cardCuttingHaikuInput(at: "2026-05-15")
        let r = try await run("anthropic", [invoice], store, account: "acct_42") { $0.rateCard = card }
        #expect(r.models.first?.gap == 17_000_000, "17 days read at half the price")
        let f = try #require(r.findings.first)
        #expect(f.gapClass == .unexplained && f.reason == "card_price_changed_on_2026-05-15_the_bill_did_not", "\(f.reason)")
        #expect(r.corrections.isEmpty && r.held.isEmpty)

        // The same card where the vendor did cut its price on May 15: no gap at all.
        let cut = S.costReport((1...31).map { .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: $0 < 15 ? "100" : "50") })
        let right = try await run("anthropic", [cut], store, account: "acct_42") { $0.rateCard = card }
        #expect(right.findings.allSatisfy { $0.gapClass == .withinTolerance } && right.corrections.isEmpty)

        // The vendor cut its price and the collector lost a fifth of the requests from May 20: the
        // money per metered token steps on May 15 with the card, so the loss is corrected.
        let lossy = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", $0 >= 20 ? 800_000 : 1_000_000, $0) }, vendor: "anthropic")
        let lost = try await run("anthropic", [cut], lossy, account: "acct_42") { $0.rateCard = card }
        #expect(lost.corrections.map(\.quantity) == [2_400_000], "\(lost.findings.map(\.reason))")
    }

    /// One line billing the whole month (an invoice line, a monthly bucket) over which the card's
    /// price changes: 14 days at $1 and 17 at $0.50 are $22.50, which is neither 22.5M tokens (at
    /// $1) nor 45M (at $0.50). Set aside and its cell held, not read at May 1's price as −8.5M.
    @Test func aMonthlyLineOverACardPriceChangeIsSetAside() async throws {
        let store = try await haikuEveryDay()
        let card = try Self.cardCuttingHaikuInput(at: "2026-05-15")
        let invoice = S.ublInvoice(lines: [("Claude Haiku 4.5", "input", "22.50")], documentTotal: "22.50")
        let r = try await run("ubl", [invoice], store, account: "acct_42") { $0.rateCard = card }
        let reason = try #require(r.reasons.first { $0.code == "line_spans_price_change" })
        #expect(reason.effect == .blocksCell && reason.modelID == "claude-haiku-4-5" && reason.tokenType == .input, "\(reason)")
        #expect(r.unmapped.map(\.reason) == ["spans_price_change"])
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        // Without the change the same line is read at one price: 22.5M billed on 31M metered.
        let flat = try await run("ubl", [invoice], store, account: "acct_42")
        #expect(flat.models.first?.gap == -8_500_000 && !flat.reasons.contains { $0.code == "line_spans_price_change" })
    }

    /// A change at 17:00 inside a daily bucket: that day's money mixes two prices. Only that day
    /// is set aside (and its cell held); a card change at midnight splits no daily bucket.
    @Test func aDayWhosePriceChangedAtFivePMIsSetAside() async throws {
        let store = try await haikuEveryDay()
        let invoice = S.costReport(
            (1...31).map { .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: $0 < 15 ? "100" : $0 == 15 ? "85" : "50") })
        let r = try await run("anthropic", [invoice], store, account: "acct_42") { $0.rateCard = try! Self.cardCuttingHaikuInput(at: "2026-05-15T17:00:00Z") }
        #expect(r.reasons.first { $0.code == "line_spans_price_change" }?.detail.contains("1 line(s)") == true, "\(r.reasons.map(\.code))")
        #expect(r.corrections.isEmpty && r.held.isEmpty)
    }

    /// A collector down from 23:30 on May 10 to 00:30 on May 11, traffic at every hour: the
    /// 1,000,000 it lost equal the period's first hour, but the bill's days put them on May 10–11.
    /// Corrected, not called a boundary.
    @Test func aLossAcrossAnInnerMidnightIsNoBoundary() async throws {
        let store = try S.store()
        var events: [IngestItem] = []
        for d in 1...31 {
            for h in 0..<24 where !((d == 10 && h == 23) || (d == 11 && h == 0)) {
                let at = "2026-05-\(String(format: "%02d", d))T\(String(format: "%02d", h)):00:00Z"
                events.append(
                    Self.haikuInput("e\(d)_\(h)", 1_000_000, at: at))
            }
        }
        // The half hours either side of midnight: 500,000 lost on each day.
        for (id, at) in [("half10", "2026-05-10T23:00:00Z"), ("half11", "2026-05-11T00:30:00Z")] {
            events.append(Self.haikuInput(id, 500_000, at: at))
        }
        _ = try await store.ingest(events)
        let r = try await run("anthropic", [Self.haikuBill { _ in "2400" }], store, account: "acct_42")
        let f = try #require(r.findings.first)
        #expect(f.quantity == 1_000_000 && f.gapClass == .meteringGap, "\(f.gapClass) \(f.reason)")
        #expect(r.corrections.map(\.quantity) == [1_000_000])
    }

    /// A batch sent twice on May 10 (250,000 Haiku input metered once more than served), with
    /// traffic at 01:00, 07:00, 13:00 and 19:00 every day: the gap is the size of the period's
    /// second hour, but the bill's days put it on May 10, not May 1. A metering gap, corrected
    /// down and named as such (it was "usage in the first 2h of the period", left uncorrected).
    @Test func aGapTheSizeOfAnEdgeHourOnAnotherDayIsNoBoundary() async throws {
        let store = try S.store()
        var events: [IngestItem] = []
        for d in 1...31 {
            for h in [1, 7, 13, 19] + (d == 10 ? [10] : []) {
                let at = "2026-05-\(String(format: "%02d", d))T\(String(format: "%02d", h)):00:00Z"
                events.append(
                    Self.haikuInput("e\(d)_\(h)", 250_000, at: at))
            }
        }
        _ = try await store.ingest(events)
        let invoice = S.costReport((1...31).map { .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100") })
        let r = try await run("anthropic", [invoice], store, account: "acct_42")
        let f = try #require(r.findings.first)
        #expect(f.quantity == -250_000 && f.gapClass == .meteringGap && f.reason == "metered_beyond_billed", "\(f.gapClass) \(f.reason)")
        #expect(r.corrections.map { "\($0.quantity) \($0.dimensions["reason"] ?? "")" } == ["-250000 metered_beyond_billed"])
    }

    /// A currency written "usd " is the dollar; a blank one is named as blank (it read "in  have
    /// no exchange rate") and its remedy is the column, not an --fx no code can be given.
    @Test func currencyCodesAreTrimmedAndABlankOneIsNamed() async throws {
        let store = try await haikuEveryDay()
        func bill(_ currency: String) -> InvoiceFile {
            S.costReport((1...31).map { .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100", currency: currency) })
        }
        let padded = try await run("anthropic", [bill("usd ")], store, account: "acct_42")
        #expect(!padded.reasons.contains { $0.code == "missing_fx" } && padded.verdict == .conclusive, "\(padded.reasons.map(\.code))")
        let blank = try await run("anthropic", [bill("")], store, account: "acct_42")
        let fx = try #require(blank.reasons.first { $0.code == "missing_fx" })
        #expect(fx.detail.contains("31 line(s) in a blank currency") && fx.remedy?.contains("currency column") == true, "\(fx.detail) \(fx.remedy ?? "")")
    }

    /// The collector down May 10–12 for every model, on a money-only cost report: every model is
    /// off by the same share over the month, which read as a uniform price factor ("rate card or
    /// currency mismatch", nothing corrected). The days show an outage: both losses are corrected.
    @Test func anOutageOfEveryModelOnSomeDaysIsNoPriceFactor() async throws {
        let down = try await haikuAndSonnet { (10...12).contains($0) ? 0 : 1_000_000 }
        let r = try await run("anthropic", [Self.haikuAndSonnetBill { _ in ("100", "300") }], down, account: "acct_42")
        #expect(r.shape == .localized && r.impliedFactor == nil, "\(r.shape)")
        #expect(r.corrections.map { "\($0.modelID ?? "") \($0.quantity)" }.sorted() == ["claude-haiku-4-5 3000000", "claude-sonnet-4-5 3000000"])

        // The same outage with the meter's midnight jitter (0.2 % a day either way): money read
        // exactly has no rounding to absorb it, and the outage was held as a price factor.
        let jitter = try await haikuAndSonnet { d in (10...12).contains(d) ? 0 : (d % 2 == 0 ? 1_002_000 : 998_000) }
        let jittered = try await run("anthropic", [Self.haikuAndSonnetBill { _ in ("100", "300") }], jitter, account: "acct_42")
        #expect(jittered.shape == .localized, "\(jittered.shape) \(jittered.reasons.map(\.code))")
        #expect(jittered.corrections.map { "\($0.modelID ?? "") \($0.quantity)" }.sorted() == ["claude-haiku-4-5 3004000", "claude-sonnet-4-5 3004000"])
        // A 1 % markup under ±0.8 % jitter: every other day is off by under the noise, all of
        // them the same way; the markup was corrected as an outage. Held.
        let wide = try await haikuAndSonnet { d in d % 2 == 1 ? 1_008_000 : 992_000 }
        let markup = try await run("anthropic", [Self.haikuAndSonnetBill { _ in ("101", "303") }], wide, account: "acct_42")
        #expect(markup.corrections.isEmpty, "\(markup.shape) \(markup.corrections.map(\.quantity))")
        // A price rise from May 16 the card lacks, and a last day exported 9.5 % short: that day
        // alone matched within the noise after the rise. Held.
        let flat = try await haikuAndSonnet { _ in 1_000_000 }
        let rose = try await run(
            "anthropic", [Self.haikuAndSonnetBill { $0 < 16 ? ("100", "300") : $0 < 31 ? ("110", "330") : ("99.55", "298.65") }], flat,
            account: "acct_42")
        #expect(rose.corrections.isEmpty, "\(rose.shape) \(rose.corrections.map(\.quantity))")
        // A 2 % surcharge on weekdays from Monday May 4, weekends at the card: off in runs with
        // matching weekends between them, no outage (it was corrected, before this stop too).
        let flat2 = try await haikuAndSonnet { _ in 1_000_000 }
        func weekday(_ d: Int) -> Bool { ![2, 3].contains(d % 7) }
        let surcharge = try await run(
            "anthropic", [Self.haikuAndSonnetBill { weekday($0) && $0 >= 4 ? ("102", "306") : ("100", "300") }], flat2, account: "acct_42")
        #expect(surcharge.corrections.isEmpty, "\(surcharge.shape) \(surcharge.corrections.map(\.quantity))")
        // The outage beside a day billed 10 % below the meter (a promotion): netted, it took the
        // promotion off the customer's loss. Held.
        let promoted = try await run(
            "anthropic", [Self.haikuAndSonnetBill { $0 == 20 ? ("90", "270") : ("100", "300") }], down, account: "acct_42")
        #expect(promoted.corrections.isEmpty, "\(promoted.shape) \(promoted.corrections.map(\.quantity))")
        // A holiday on May 1 at 1 % of the traffic, 20 % off for April 30's late requests under
        // jitter: noise is a share of a typical day, and the outage is corrected.
        let holiday = try await haikuAndSonnet { d in d == 1 ? 10_000 : (10...12).contains(d) ? 0 : (d % 2 == 0 ? 1_002_000 : 998_000) }
        let quietFirst = try await run(
            "anthropic", [Self.haikuAndSonnetBill { $0 == 1 ? ("1.2", "3.6") : ("100", "300") }], holiday, account: "acct_42")
        #expect(quietFirst.shape == .localized && quietFirst.corrections.count == 2, "\(quietFirst.shape) \(quietFirst.reasons.map(\.code))")
        // A factor with the same jitter still shows on every day.
        let jitterAll = try await haikuAndSonnet { d in d % 2 == 0 ? 1_002_000 : 998_000 }
        let factored = try await run("anthropic", [Self.haikuAndSonnetBill { _ in ("110", "330") }], jitterAll, account: "acct_42")
        #expect(factored.shape == .uniform && factored.corrections.isEmpty, "\(factored.corrections.map(\.quantity))")

        // A price factor shows on every day: the same meter billed 10 % over every day stays uniform.
        let full = try await haikuAndSonnet { _ in 1_000_000 }
        let uniform = try await run("anthropic", [Self.haikuAndSonnetBill { _ in ("110", "330") }], full, account: "acct_42")
        #expect(uniform.shape == .uniform && uniform.corrections.isEmpty)

        // A factor on quiet weekends hides in whole cents (10,000 tokens billed 1 and 3 cents,
        // matching), May 31 among them: those days tell nothing, and it stays uniform.
        func weekend(_ d: Int) -> Bool { [3, 4].contains(d % 7) }
        let quiet = try await haikuAndSonnet { weekend($0) ? 10_000 : 1_000_000 }
        let still = try await run("anthropic", [Self.haikuAndSonnetBill { weekend($0) ? ("1", "3") : ("110", "330") }], quiet, account: "acct_42")
        #expect(still.shape == .uniform && still.corrections.isEmpty, "\(still.corrections.map(\.quantity))")

        // A legacy price (list × 1.25) billed until a renewal on May 20, list after, the card at
        // list all month: off before, matching after — a price that ended, not an outage.
        let ended = try await run("anthropic", [Self.haikuAndSonnetBill { $0 < 20 ? ("125", "375") : ("100", "300") }], full, account: "acct_42")
        #expect(ended.corrections.isEmpty, "\(ended.shape) \(ended.corrections.map(\.quantity))")
    }

    /// Haiku and Sonnet input metered on acct_42, the same tokens a day for both.
    func haikuAndSonnet(_ tokens: (Int) -> Int64) async throws -> SQLiteMeterStore {
        try await store(
            (1...31).flatMap { d in ["claude-haiku-4-5", "claude-sonnet-4-5"].map { ("acct_42", $0, "input", tokens(d), d) } }.filter { $0.3 != 0 },
            vendor: "anthropic")
    }

    /// A cost report of Haiku and Sonnet input, each day's cents given (Haiku, Sonnet).
    static func haikuAndSonnetBill(_ cents: (Int) -> (String, String)) -> InvoiceFile {
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            let (haiku, sonnet) = cents(d)
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: haiku))
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: sonnet))
        }
        return TestSupport.costReport(rows)
    }

    /// The same wrong card with the meter's days jittered (300 tokens of a request near midnight
    /// landing on the next day, every other day): each day's money per metered token differs a
    /// little, which no steady run survives; medians do. Held, not +17M posted.
    @Test func aCardChangeTheBillDoesNotShowIsHeldThroughMidnightJitter() async throws {
        // Traffic that varies by day, billed to the ten-thousandth of a cent ("100.1237").
        func served(_ d: Int) -> Int64 { 1_000_000 + 1_237 * Int64(d) }
        let store = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", served($0) + ($0 % 2 == 1 ? 300 : -300), $0) }, vendor: "anthropic")
        let bill = Self.haikuBill { ExactDecimal.text(Decimal(served($0)) / 10_000) }
        let r = try await run("anthropic", [bill], store, account: "acct_42") {
            $0.rateCard = try! Self.cardCuttingHaikuInput(at: "2026-05-15")
        }
        #expect(r.findings.first?.reason == "card_price_changed_on_2026-05-15_the_bill_did_not", "\(r.findings.map(\.reason))")
        #expect(r.corrections.isEmpty)
    }

    /// The card raises Haiku 20 % on May 15 and the bill follows it; the collector was down May
    /// 14–16, keeping nothing or a residue of 700 tokens a day. The unmetered days moved the
    /// step to the 14th, a step the card lacked (held); the residue's days, far from both
    /// prices, moved the bill's step to the 17th, "the card's date" (held). Each loss is corrected.
    @Test func anOutageOverTheCardsOwnPriceChangeIsCorrected() async throws {
        let original =
            #"      - {from: "2025-10-15", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing, litellm]}"#
        let stepped = """
                  - {from: "2025-10-15", to: "2026-05-15", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}
                  - {from: "2026-05-15", rates: {input: "1.2", output: "6", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}
            """
        let text = RateCardData.cards["anthropic"]!
        #expect(text.contains(original), "the card's Haiku row moved: update this test")
        let card = try RateCard.load(text: text.replacingOccurrences(of: original, with: stepped), file: "stepped.yaml")
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: d < 15 ? "100" : "120"))
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: d < 15 ? "50" : "60"))
        }
        for kept: Int64 in [0, 700] {
            var events: [(account: String, model: String, type: String, quantity: Int64, day: Int)] = []
            for d in 1...31 {
                let down = (14...16).contains(d)
                if !down || kept > 0 {
                    events.append(("acct_42", "claude-haiku-4-5", "input", down ? kept : 1_000_000, d))
                    events.append(("acct_42", "claude-haiku-4-5", "output", down ? kept : 100_000, d))
                }
            }
            let store = try await self.store(events, vendor: "anthropic")
            let r = try await run("anthropic", [TestSupport.costReport(rows)], store, account: "acct_42") { $0.rateCard = card }
            #expect(
                r.corrections.map(\.quantity).sorted() == [300_000 - 3 * kept, 3_000_000 - 3 * kept],
                "kept \(kept): \(r.findings.map { "\($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.reason)" })")
        }
    }

    /// Another registered vendor's card given for a run (`--rate-card` of OpenAI's for an Anthropic
    /// invoice) was taken. It is refused, naming `rate_card`; a card no plugin ships (a UBL
    /// supplier's own) is still the user's to give.
    @Test func anotherVendorsCardIsRefused() async throws {
        let store = try await haikuEveryDay()
        let openai = try RateCard.load(text: RateCardData.cards["openai"]!, file: "openai.yaml")
        do {
            _ = try await run("anthropic", [Self.haikuBill { _ in "100" }], store, account: "acct_42") { $0.rateCard = openai }
            Issue.record("an openai card priced an anthropic invoice")
        } catch let e as UsageBoxError {
            #expect(e.field == "rate_card" && e.message.contains("openai's"), "\(e.message)")
        }
    }

    /// The bill's price fell on May 18 and the card dates the cut May 16 (or May 20): the meter
    /// is exact, and the days between the two dates came out as metering (+50,000,000 in an
    /// outside tester's run, conclusive). The bill did step by the card's ratio, so the medians
    /// passed; the gap lies only between the two dates, so it is the card's date: held. A loss on
    /// another day, with the card dated right, is still corrected.
    @Test func aCardDatedDaysOffTheBillsChangeIsHeld() async throws {
        let store = try await haikuEveryDay()
        for cardDay in ["2026-05-16", "2026-05-20", "2026-05-06", "2026-05-28"] {
            let card = try Self.cardPricingHaikuInput(["1", cardDay, "0.80"])
            let r = try await run("anthropic", [Self.haikuBill { $0 < 18 ? "100" : "80" }], store, account: "acct_42") { $0.rateCard = card }
            #expect(r.findings.first?.reason == "card_price_changed_on_\(cardDay)_the_bill_did_not", "\(cardDay): \(r.findings.map(\.reason))")
            #expect(r.corrections.isEmpty && r.held.isEmpty, "\(cardDay): \(r.corrections.map(\.quantity))")
        }
        // A quiet last day after the bill's step whose rounding reads nearer the old price (1,000 tokens
        // billed a tenth of a cent) does not undo the step: still the card's date.
        let quietDay = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", $0 == 31 ? 1_000 : 1_000_000, $0) }, vendor: "anthropic")
        let misdated = try Self.cardPricingHaikuInput(["1", "2026-05-16", "0.80"])
        let quiet = try await run("anthropic", [Self.haikuBill { $0 == 31 ? "0.1" : $0 < 18 ? "100" : "80" }], quietDay, account: "acct_42") {
            $0.rateCard = misdated
        }
        #expect(
            quiet.corrections.isEmpty && quiet.findings.first?.reason == "card_price_changed_on_2026-05-16_the_bill_did_not", "\(quiet.findings.map(\.reason))")
        let lossy = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", $0 == 25 ? 500_000 : 1_000_000, $0) }, vendor: "anthropic")
        let card = try Self.cardPricingHaikuInput(["1", "2026-05-18", "0.80"])
        let lost = try await run("anthropic", [Self.haikuBill { $0 < 18 ? "100" : "80" }], lossy, account: "acct_42") { $0.rateCard = card }
        // The same real loss on May 25 under the card dated May 16: the whole gap (the loss and
        // the two days the card's date makes: +1,000,000 proposed before, for a
        // 500,000 loss) is held, not posted.
        let both = try await run("anthropic", [Self.haikuBill { $0 < 18 ? "100" : "80" }], lossy, account: "acct_42") {
            $0.rateCard = misdated
        }
        #expect(
            both.corrections.isEmpty && both.findings.first?.reason == "card_price_changed_on_2026-05-16_the_bill_did_not",
            "\(both.findings.map { "\($0.quantity) \($0.reason)" })")
        // An outage inside the card's days (May 17 lost 40 %): that day carries the card's share
        // and more, and the proposal carried the card's share with it. Held.
        let outageInside = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", $0 == 17 ? 600_000 : 1_000_000, $0) }, vendor: "anthropic")
        let inside = try await run("anthropic", [Self.haikuBill { $0 < 18 ? "100" : "80" }], outageInside, account: "acct_42") {
            $0.rateCard = misdated
        }
        #expect(inside.corrections.isEmpty, "\(inside.findings.map { "\($0.quantity) \($0.reason)" })")
        // The same with a rise dated May 16 billed from May 18: the card's days read the meter
        // short (−1/6) and the outage the other way; the reading was proposed.
        let lateRise = try Self.cardPricingHaikuInput(["1", "2026-05-16", "1.2"])
        let twoThirds = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", $0 == 17 ? 333_334 : 1_000_000, $0) }, vendor: "anthropic")
        let opposite = try await run("anthropic", [Self.haikuBill { $0 < 18 ? "100" : "120" }], twoThirds, account: "acct_42") {
            $0.rateCard = lateRise
        }
        #expect(opposite.corrections.isEmpty, "\(opposite.findings.map { "\($0.quantity) \($0.reason)" })")
        // A card dated right (May 18) and the outage the day before: three times the old price
        // that day is neither price, no step; it read as the bill stepping on May 17 and was held.
        let right = try Self.cardPricingHaikuInput(["1", "2026-05-18", "1.2"])
        let before = try await run("anthropic", [Self.haikuBill { $0 < 18 ? "100" : "120" }], twoThirds, account: "acct_42") {
            $0.rateCard = right
        }
        #expect(before.corrections.map(\.quantity) == [666_666], "\(before.findings.map { "\($0.quantity) \($0.reason)" })")
        // A meter over-counting a fifth on the three days before a real cut moves the money per
        // metered token toward the new price too, but by its own share: corrected, not the card's date.
        let overCounted = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", (15...17).contains($0) ? 1_200_000 : 1_000_000, $0) }, vendor: "anthropic")
        let over = try await run("anthropic", [Self.haikuBill { $0 < 18 ? "100" : "80" }], overCounted, account: "acct_42") { $0.rateCard = card }
        #expect(over.corrections.map(\.quantity) == [-600_000], "\(over.findings.map { "\($0.quantity) \($0.reason)" })")
        // An outage that loses a sixth on May 5–8, a clean week at the old price, then a real rise
        // of a fifth on May 16, billed that day: the outage mimicked the new price for four days
        // and was held as the card's date. The bill's step is where it stays: corrected.
        let outage = try await self.store(
            (1...31).map { ("acct_42", "claude-haiku-4-5", "input", (5...8).contains($0) ? 833_334 : 1_000_000, $0) }, vendor: "anthropic")
        let rise = try Self.cardPricingHaikuInput(["1", "2026-05-16", "1.2"])
        let early = try await run("anthropic", [Self.haikuBill { $0 < 16 ? "100" : "120" }], outage, account: "acct_42") { $0.rateCard = rise }
        #expect(early.corrections.map(\.quantity) == [666_664], "\(early.findings.map { "\($0.quantity) \($0.reason)" })")
        #expect(
            lost.corrections.map(\.quantity) == [500_000],
            "\(lost.findings.map { "\($0.quantity) \($0.gapClass) \($0.reason) \($0.blockedBy)" }) \(lost.reasons.map(\.code)) \(lost.held.map(\.reason))")
    }

    /// Sonnet, Haiku and Opus, input and output every day; Sonnet input short 100,000 a day on
    /// May 10–20 (1,100,000 lost); `factor(model, type)` multiplies the list price billed.
    func threeModelsWithALoss(_ factor: (String, String) -> Decimal) async throws -> (SQLiteMeterStore, InvoiceFile) {
        let list: [(String, String, String, Decimal)] = [
            ("claude-sonnet-4-5", "input", "uncached_input_tokens", 300), ("claude-sonnet-4-5", "output", "output_tokens", 150),
            ("claude-haiku-4-5", "input", "uncached_input_tokens", 100), ("claude-haiku-4-5", "output", "output_tokens", 50),
            ("claude-opus-4-8", "input", "uncached_input_tokens", 500), ("claude-opus-4-8", "output", "output_tokens", 250),
        ]
        var events: [(account: String, model: String, type: String, quantity: Int64, day: Int)] = []
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            for (model, type, billed, cents) in list {
                let served: Int64 = type == "input" ? 1_000_000 : 100_000
                let lost: Int64 = model == "claude-sonnet-4-5" && type == "input" && (10...20).contains(d) ? 100_000 : 0
                events.append(("acct_42", model, type, served - lost, d))
                rows.append(.init(day: d, model: model, tokenType: billed, cents: ExactDecimal.text(cents * factor(model, type))))
            }
        }
        return (try await store(events, vendor: "anthropic"), TestSupport.costReport(rows))
    }

    /// Output 5 % above the card on every model, and the card halving Haiku from May 15 where the
    /// bill did not: Haiku's cells are a card step (named so, no longer `one-model-factor`), and
    /// still a price factor in Sonnet input's column, so its gap, which holds output's factor's
    /// neighbour, is held as before (review 9).
    @Test func aCardStepCountsAsAPriceFactorAroundACell() async throws {
        let (store, bill) = try await threeModelsWithALoss { _, t in t == "output" ? Decimal(string: "1.05")! : 1 }
        let card = try Self.cardHalvingEveryHaikuPrice(from: "2026-05-15")
        let r = try await run("anthropic", [bill], store, account: "acct_42") { $0.rateCard = card }
        let summary = r.findings.map { "\($0.modelID) \($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.rule) \($0.reason) \($0.blockedBy)" }
        #expect(r.findings.contains { $0.modelID == "claude-haiku-4-5" && $0.rule == "card-step" }, "\(summary)")
        let sonnetInput = try #require(r.findings.first { $0.modelID == "claude-sonnet-4-5" && $0.tokenType?.rawValue == "input" })
        #expect(sonnetInput.blockedBy.contains("price_factor_around_cell"), "\(summary)")
        #expect(r.corrections.isEmpty, "\(r.corrections.map { "\($0.modelID ?? "") \($0.quantity)" })")
    }

    /// Every price 5 % above the card and Sonnet input really short 1,100,000: the factor shows on
    /// every other cell (`uniform_gap` of output, `one-model-factor` of Haiku and Opus), and Sonnet
    /// input's gap holds it too: +2,650,000 was proposed here (the old code), +7,520,000 for a
    /// 1,320,000 loss in an outside tester's run. Held. A factor on output alone, or on Opus alone, leaves Sonnet input's own
    /// loss to be corrected.
    @Test func aPriceFactorAroundACellHoldsItsGap() async throws {
        let (store, bill) = try await threeModelsWithALoss { _, _ in Decimal(string: "1.05")! }
        let r = try await run("anthropic", [bill], store, account: "acct_42")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map { "\($0.modelID ?? "") \($0.quantity)" })")
        let sonnetInput = try #require(r.findings.first { $0.modelID == "claude-sonnet-4-5" && $0.tokenType?.rawValue == "input" })
        #expect(sonnetInput.blockedBy.contains("price_factor_around_cell"), "\(sonnetInput.reason) \(sonnetInput.blockedBy)")
        for (what, factor) in [
            ("output", { (_: String, t: String) in t == "output" ? Decimal(string: "1.05")! : 1 }),
            ("opus", { (m: String, _: String) in m == "claude-opus-4-8" ? Decimal(string: "1.05")! : 1 }),
        ] {
            let (store, bill) = try await threeModelsWithALoss(factor)
            let r = try await run("anthropic", [bill], store, account: "acct_42")
            #expect(
                r.corrections.map { "\($0.modelID ?? "") \($0.quantity)" } == ["claude-sonnet-4-5 1100000"],
                "\(what): \(r.findings.map { "\($0.modelID) \($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.reason) \($0.blockedBy)" })")
        }
    }

    /// One model on the bill, every price 5 % above the card, input short 1,100,000 besides:
    /// output and cache reads at +5 %, input at +5 % and more — no other model to show the
    /// factor, so all three were proposed (5 % of the month with the loss). Two or more token
    /// types at one share and the rest past it the same way: held. Billed at list, the loss alone
    /// is corrected.
    @Test func oneModelsFactorPlusALossOnOneTokenTypeIsHeld() async throws {
        func bill(_ factor: Decimal) async throws -> ReconciliationReport {
            var events: [(account: String, model: String, type: String, quantity: Int64, day: Int)] = []
            var rows: [TestSupport.Row] = []
            for d in 1...31 {
                for (type, billed, served, cents) in [
                    ("input", "uncached_input_tokens", Int64(1_000_000), Decimal(300)), ("output", "output_tokens", 100_000, 150),
                    ("cache_read", "cache_read_input_tokens", 500_000, 15),
                ] {
                    let lost: Int64 = type == "input" && (10...20).contains(d) ? 100_000 : 0
                    events.append(("acct_42", "claude-sonnet-4-5", type, served - lost, d))
                    rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: billed, cents: ExactDecimal.text(cents * factor)))
                }
            }
            return try await run("anthropic", [TestSupport.costReport(rows)], try await store(events, vendor: "anthropic"), account: "acct_42")
        }
        let r = try await bill(Decimal(string: "1.05")!)
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.findings.map { "\($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.reason)" })")
        #expect(
            r.findings.filter { ["input", "output"].contains($0.tokenType?.rawValue) }.map(\.reason)
                == Array(repeating: "same_share_on_most_token_types_of_claude-sonnet-4-5", count: 2), "\(r.findings.map(\.reason))")
        let list = try await bill(1)
        #expect(list.corrections.map(\.quantity) == [1_100_000], "\(list.findings.map { "\($0.quantity) \($0.reason)" })")
    }

    /// The shipped Anthropic card with Haiku input and output 20 % dearer from May 16.
    static func haikuRisesOnMay16() throws -> RateCard {
        let original =
            #"      - {from: "2025-10-15", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing, litellm]}"#
        let rise = [
            #"      - {from: "2025-10-15", to: "2026-05-16", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}"#,
            #"      - {from: "2026-05-16", rates: {input: "1.2", output: "6", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}"#,
        ].joined(separator: "\n")
        return try RateCard.load(text: RateCardData.cards["anthropic"]!.replacingOccurrences(of: original, with: rise), file: "rise.yaml")
    }

    /// The card raises Haiku input and output 20 % from May 16 and the bill follows it; the
    /// collector is down on May 13. The outage gapped Haiku, and the card's own rise was then read
    /// as a one-model price step the card lacks: the outage was held. Corrected.
    /// Also with Haiku idle May 16–18, the new price showing from the 19th: the card's change
    /// on the idle days before it is the same (it was compared on the 19th alone and read as a
    /// step the card lacks: review V).
    @Test(arguments: [false, true]) func aStepTheCardMakesIsNoStepItLacks(idleFirstDays: Bool) async throws {
        let card = try Self.haikuRisesOnMay16()
        var events: [(account: String, model: String, type: String, quantity: Int64, day: Int)] = []
        var rows: [TestSupport.Row] = []
        for d in 1...31 where !(idleFirstDays && (16...18).contains(d)) {
            let served: Int64 = 1_000_000 + 10_000 * Int64(d % 7)
            events.append(("acct_42", "claude-haiku-4-5", "input", d == 13 ? 0 : served, d))
            events.append(("acct_42", "claude-haiku-4-5", "output", d == 13 ? 0 : served / 10, d))
            let up: Decimal = d >= 16 ? Decimal(string: "1.2")! : 1
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: ExactDecimal.text(Decimal(served) / 10_000 * up)))
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: ExactDecimal.text(Decimal(served / 10) / 2_000 * up)))
        }
        let r = try await run(
            "anthropic", [TestSupport.costReport(rows)], try await store(events.filter { $0.quantity > 0 }, vendor: "anthropic"), account: "acct_42"
        ) {
            $0.rateCard = card
        }
        // May 13: 1,060,000 input and 106,000 output served, none metered.
        #expect(r.corrections.map(\.quantity).sorted() == [106_000, 1_060_000], "\(r.findings.map { "\($0.quantity) \($0.reason)" })")
        #expect(!r.findings.contains { $0.rule == "price-step" }, "\(r.findings.map(\.reason))")
    }

    /// The same card, the vendor's rise two days earlier (May 14): May 14–15 bill a fifth more
    /// than the card prices. Read as money per vendor token, the card's own change split the month
    /// and the days before it (the vendor's step among them) were left out of the step test as
    /// another mix of tiers: +400,000 would have been corrected (review 7). Held as the model's step.
    @Test func aVendorStepBeforeTheCardsOwnIsStillSeen() async throws {
        let card = try Self.haikuRisesOnMay16()
        var events: [(account: String, model: String, type: String, quantity: Int64, day: Int)] = []
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            events.append(("acct_42", "claude-haiku-4-5", "input", 1_000_000, d))
            events.append(("acct_42", "claude-haiku-4-5", "output", 100_000, d))
            let up: Decimal = d >= 14 ? Decimal(string: "1.2")! : 1
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: ExactDecimal.text(100 * up)))
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: ExactDecimal.text(50 * up)))
        }
        let r = try await run("anthropic", [TestSupport.costReport(rows)], try await store(events, vendor: "anthropic"), account: "acct_42") {
            $0.rateCard = card
        }
        #expect(r.corrections.isEmpty, "\(r.findings.map { "\($0.quantity) \($0.reason)" })")
        #expect(r.findings.contains { $0.rule == "price-step" }, "\(r.findings.map(\.reason))")
    }

    /// Two changes in one month: the cut on May 10 is billed, the rise on May 20 is not (the
    /// vendor stayed at $0.50). The second is checked too: held, not −4M.
    @Test func everyCardChangeInThePeriodIsChecked() async throws {
        let store = try await haikuEveryDay()
        let card = try Self.cardPricingHaikuInput(["1", "2026-05-10", "0.50", "2026-05-20", "0.75"])
        let r = try await run("anthropic", [Self.haikuBill { $0 < 10 ? "100" : "50" }], store, account: "acct_42") { $0.rateCard = card }
        #expect(r.findings.first?.reason == "card_price_changed_on_2026-05-20_the_bill_did_not", "\(r.findings.map(\.reason))")
        #expect(r.corrections.isEmpty)
    }

    /// The card cuts Haiku input to $0.80 from May 1, the first day of the period, and the vendor
    /// still bills $1: with no days before it, the money is compared with the card's two prices
    /// (nearer the old one). Held, not +7.75M; a real cut billed at $0.80 leaves no gap.
    @Test func aCardChangeOnThePeriodsFirstDayIsChecked() async throws {
        let store = try await haikuEveryDay()
        let card = try Self.cardPricingHaikuInput(["1", "2026-05-01", "0.80"])
        let r = try await run("anthropic", [Self.haikuBill { _ in "100" }], store, account: "acct_42") { $0.rateCard = card }
        #expect(r.findings.first?.reason == "card_price_changed_on_2026-05-01_the_bill_did_not", "\(r.findings.map(\.reason))")
        #expect(r.corrections.isEmpty)
        let billed = try await run("anthropic", [Self.haikuBill { _ in "80" }], store, account: "acct_42") { $0.rateCard = card }
        #expect(billed.findings.allSatisfy { $0.gapClass == .withinTolerance })
        // A real loss of a tenth after a real cut: the money is nearer the new price, corrected.
        let lossy = try await self.store((1...31).map { ("acct_42", "claude-haiku-4-5", "input", 900_000, $0) }, vendor: "anthropic")
        let lost = try await run("anthropic", [Self.haikuBill { _ in "80" }], lossy, account: "acct_42") { $0.rateCard = card }
        #expect(lost.corrections.map(\.quantity) == [3_100_000], "\(lost.findings.map(\.reason))")
    }

    /// The card cuts Haiku input to $0.50 from May 16 and the model is first used on May 18; the
    /// vendor bills $1 a million throughout. With no day of traffic before the change, only a
    /// change on the period's first day was compared with the card's two prices: +14M was proposed.
    /// Held; billed at $0.50 there is no gap.
    @Test func aCardChangeBeforeTheModelsFirstUseIsChecked() async throws {
        let store = try await store((18...31).map { ("acct_42", "claude-haiku-4-5", "input", 1_000_000, $0) }, vendor: "anthropic")
        let card = try Self.cardCuttingHaikuInput(at: "2026-05-16")
        let r = try await run("anthropic", [Self.haikuBill { $0 >= 18 ? "100" : "0" }], store, account: "acct_42") { $0.rateCard = card }
        #expect(r.findings.first?.reason == "card_price_changed_on_2026-05-16_the_bill_did_not", "\(r.findings.map(\.reason))")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        let billed = try await run("anthropic", [Self.haikuBill { $0 >= 18 ? "50" : "0" }], store, account: "acct_42") { $0.rateCard = card }
        #expect(billed.findings.allSatisfy { $0.gapClass == .withinTolerance } && billed.corrections.isEmpty)
    }

    /// A promotion inside the month ($0.50 from May 10 to May 20, $1 either side) under one
    /// monthly line of $26: the line's first and last instants price alike, the days between do
    /// not. Set aside, not read at $1 as −5M.
    @Test func aMonthlyLineOverAPromotionIsSetAside() async throws {
        let store = try await haikuEveryDay()
        let card = try Self.cardPricingHaikuInput(["1", "2026-05-10", "0.50", "2026-05-20", "1"])
        let invoice = S.ublInvoice(lines: [("Claude Haiku 4.5", "input", "26")], documentTotal: "26")
        let r = try await run("ubl", [invoice], store, account: "acct_42") { $0.rateCard = card }
        #expect(r.reasons.contains { $0.code == "line_spans_price_change" } && r.corrections.isEmpty, "\(r.corrections.map(\.quantity))")
    }

    /// One monthly line stating money alone, which may be after a negotiated price: 2,000,000
    /// above the meter may be a larger loss less a discount no day can show (a 5 % allowance beside
    /// a 5,878,127 loss proposed +2,830,350: tester Q). Held; a line stating its quantity is not.
    @Test func aMonthlyLineOfMoneyThatMayBeNetHoldsAGapAboveTheMeter() async throws {
        let store = try await haikuEveryDay()
        let invoice = S.ublInvoice(lines: [("Claude Haiku 4.5", "input", "33")], documentTotal: "33")
        let r = try await run("ubl", [invoice], store, account: "acct_42")
        let net = try #require(r.reasons.first { $0.code == "amounts_may_be_net" && $0.effect == .blocksCell }, "\(r.reasons.map(\.code))")
        #expect(net.detail.contains("over more than a day") && net.detail.contains("the 2000000 above the meter"), "\(net.detail)")
        #expect(r.findings.first?.quantity == 2_000_000 && r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        let stated = S.ubl(
            header: """
                <cac:InvoicePeriod><cbc:StartDate>2026-05-01</cbc:StartDate><cbc:EndDate>2026-05-31</cbc:EndDate></cac:InvoicePeriod>
                <cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Anthropic, PBC</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
                """,
            body: """
                <cac:InvoiceLine><cbc:ID>1</cbc:ID><cbc:InvoicedQuantity unitCode="MIO">33</cbc:InvoicedQuantity>
                  <cbc:LineExtensionAmount currencyID="USD">33</cbc:LineExtensionAmount>
                  <cac:Item><cbc:Name>Claude Haiku 4.5</cbc:Name>
                    <cac:AdditionalItemProperty><cbc:Name>token_type</cbc:Name><cbc:Value>input</cbc:Value></cac:AdditionalItemProperty></cac:Item>
                  <cac:Price><cbc:PriceAmount currencyID="USD">1</cbc:PriceAmount></cac:Price>
                </cac:InvoiceLine>
                """)
        let counted = try await run("ubl", [stated], store, account: "acct_42")
        #expect(!counted.reasons.contains { $0.code == "amounts_may_be_net" }, "\(counted.reasons.map(\.detail))")
        #expect(counted.findings.first?.quantity == 2_000_000, "\(counted.findings) \(counted.unmapped) \(counted.reasons.map(\.detail))")
    }

    /// The meter stamps every event an hour late, and a nightly 23:00 batch grows by 1,000 tokens a
    /// day: each night's batch lands on the next day, May 31's in June. The gap (+51,000) is that
    /// last batch, spread over the bill's days as +1,000 a day: a boundary, not a correction.
    @Test func aClockSkewAcrossEveryMidnightIsStillABoundary() async throws {
        let store = try S.store()
        var events: [IngestItem] = []
        for d in 1...31 {
            let day = "2026-05-\(String(format: "%02d", d))"
            let next = d == 31 ? "2026-06-01" : "2026-05-\(String(format: "%02d", d + 1))"
            for (id, at, q) in [("b\(d)", "\(day)T13:00:00Z", Int64(1_000_000)), ("n\(d)", "\(next)T00:00:00Z", Int64(20_000 + 1_000 * d))] {
                events.append(Self.haikuInput(id, q, at: at))
            }
        }
        _ = try await store.ingest(events)
        let invoice = Self.haikuBill { d in ExactDecimal.text(Decimal(1_000_000 + 20_000 + 1_000 * d) / 10_000) }
        let r = try await run("anthropic", [invoice], store, account: "acct_42")
        let f = try #require(r.findings.first)
        #expect(f.quantity == 51_000 && f.gapClass == .boundary && f.reason == "usage_in_1h_after_period", "\(f.gapClass) \(f.reason)")
        #expect(r.corrections.isEmpty)
    }
}

extension MessyMonthEndTests {
    /// A vendor rounding each day's line up to the cent (Haiku input, 2,132,084 tokens a day:
    /// $2.132084 billed $2.14) on a meter equal to its usage: every day beyond half a cent but
    /// within one, +245,396 was proposed and applied. Rounded down, −248,000. Held now
    /// (`rounding_may_be_one_way`), and beside a real loss too (its size is unknown by the
    /// rounding); a loss beside rounding to the nearest cent is a gap as before.
    @Test func aVendorRoundingEveryLineOneWayIsNoGap() async throws {
        func reconcile(perDay: Int64, cents: String, lostOnDays: ClosedRange<Int>? = nil) async throws -> ReconciliationReport {
            let store = try S.store()
            _ = try await store.ingest(
                (1...31).map { d in
                    Self.haikuInput("d\(d)", perDay - (lostOnDays?.contains(d) == true ? 60_000 : 0), at: "2026-05-\(String(format: "%02d", d))T12:00:00Z")
                })
            return try await run("anthropic", [Self.haikuBill { _ in cents }], store, account: "acct_42")
        }
        for (perDay, cents, gap) in [(Int64(2_132_084), "214", Int64(245_396)), (2_138_000, "213", -248_000)] {
            let r = try await reconcile(perDay: perDay, cents: cents)
            #expect(r.models.first?.gap == gap && r.corrections.isEmpty, "\(cents): \(r.models.map(\.gap)) \(r.corrections.map(\.quantity))")
            #expect(
                r.findings.first?.blockedBy == ["rounding_may_be_one_way"]
                    && r.reasons.contains { $0.code == "rounding_may_be_one_way" && $0.effect == .blocksCell },
                "\(cents): \(r.findings.map(\.blockedBy)) \(r.reasons.map(\.code))")
        }
        // 60,000 tokens a day lost on May 10–14 beside the same rounding: the whole month's
        // rounding was proposed with the loss (+545,396 for 300,000). Held too; a loss beside
        // rounding to the nearest cent (the other days exact) is proposed.
        let lost = try await reconcile(perDay: 2_132_084, cents: "214", lostOnDays: 10...14)
        #expect(lost.corrections.isEmpty && lost.findings.first?.blockedBy == ["rounding_may_be_one_way"], "\(lost.corrections.map(\.quantity))")
        let nearest = try await reconcile(perDay: 2_140_000, cents: "214", lostOnDays: 10...14)
        #expect(nearest.corrections.map(\.quantity) == [300_000], "\(nearest.reasons.map(\.code)) \(nearest.held.map(\.reason))")
    }
}
