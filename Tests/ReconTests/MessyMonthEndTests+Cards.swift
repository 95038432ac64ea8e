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
    static func cardCuttingHaikuInput(at: String) throws -> RateCard {
        let original =
            #"      - {from: "2025-10-15", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing, litellm]}"#
        let stepped = """
                  - {from: "2025-10-15", to: "\(at)", rates: {input: "1", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}
                  - {from: "\(at)", rates: {input: "0.50", output: "5", cache_read: "0.10", cache_write_5m: "1.25", cache_write_1h: "2"}, src: [anthropic_pricing]}
            """
        let text = RateCardData.cards["anthropic"]!
        #expect(text.contains(original), "the card's Haiku row moved: update this test")
        return try RateCard.load(text: text.replacingOccurrences(of: original, with: stepped), file: "stepped.yaml")
    }

    /// A meter of 1,000,000 Haiku input tokens a day, May 1–31.
    func haikuEveryDay() async throws -> SQLiteMeterStore {
        try await store((1...31).map { ("acct_42", "claude-haiku-4-5", "input", 1_000_000, $0) }, vendor: "anthropic")
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
                    .event(
                        UsageEvent(
                            eventID: "e\(d)_\(h)", accountID: "acct_42", meterID: "claude_tokens", modelID: "claude-haiku-4-5", quantity: 250_000,
                            unit: "tokens", timestamp: Timestamp(rfc3339: at)!, dimensions: ["token_type": "input", "vendor": "anthropic"])))
            }
        }
        _ = try await store.ingest(events)
        let invoice = S.costReport((1...31).map { .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100") })
        let r = try await run("anthropic", [invoice], store, account: "acct_42")
        let f = try #require(r.findings.first)
        #expect(f.quantity == -250_000 && f.gapClass == .meteringGap && f.reason == "metered_beyond_billed", "\(f.gapClass) \(f.reason)")
        #expect(r.corrections.map { "\($0.quantity) \($0.dimensions["reason"] ?? "")" } == ["-250000 metered_beyond_billed"])
    }
}
