import ExactJSON
import Foundation
import MeterStoreSQLite
import Metering
import Testing
import UsageBoxApp

@testable import ReconCore

/// Day-by-day evidence: the day a gap began, price steps, period boundaries and mislabelled cache
/// lifetimes. Answers decided before each run.
@Suite struct DailyEvidenceTests {
    typealias S = TestSupport
    let service = try! ReconciliationService()

    /// The card `ratecards propose` writes for `r`, and `invoice` reconciled again with it (the
    /// proposed card must load and close the steps it was written for).
    func rerunOnProposedCard(
        _ r: ReconciliationReport, _ invoice: InvoiceFile, _ store: any MeterStore
    ) async throws -> (proposed: String, again: ReconciliationReport) {
        let proposed = try service.cards["anthropic"]!.proposing(r)
        var o = ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: S.may, account: "acct_42")
        o.rateCard = try RateCard.load(text: proposed, file: "proposed.yaml")
        return (proposed, try await service.engine.run(o, store: store))
    }

    /// Whether every finding is within tolerance and no step is left, for the expectation's message.
    func closed(_ r: ReconciliationReport) -> Bool { r.priceSteps.isEmpty && r.findings.allSatisfy { $0.gapClass == .withinTolerance } }

    func described(_ r: ReconciliationReport) -> String {
        "\(r.findings.map { "\($0.modelID) \($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.gapClass)" })"
    }

    func run(_ store: any MeterStore, _ invoice: InvoiceFile) async throws -> ReconciliationReport {
        try await service.engine.run(ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: S.may, account: "acct_42"), store: store)
    }

    func daily(_ model: String, _ type: String, _ perDay: (Int) -> Int64) async throws -> [IngestItem] {
        (1...31).compactMap { d in
            let q = perDay(d)
            return q == 0 ? nil : S.event("\(model)-\(type)-\(d)", model: model, type: type, quantity: q, day: d, vendor: "anthropic")
        }
    }

    static func cents(_ dollars: Decimal) -> String { ExactDecimal.text(dollars * 100) }

    /// A cost report of one model × token type (`type` as the vendor names it), billing `dollars`
    /// on each of `days`.
    static func oneCell(_ model: String, _ type: String, days: ClosedRange<Int>, dollars: (Int) -> Decimal) -> InvoiceFile {
        S.costReport(days.map { d in .init(day: d, model: model, tokenType: type, cents: cents(dollars(d))) })
    }

    /// Haiku input metered at an exact time.
    static func haikuInput(_ id: String, _ time: String, _ q: Int64) -> IngestItem {
        .event(
            UsageEvent(
                eventID: id, accountID: "acct_42", meterID: "m", modelID: "claude-haiku-4-5", quantity: q, unit: "tokens",
                timestamp: Timestamp(rfc3339: time)!, dimensions: ["token_type": "input", "vendor": "anthropic"]))
    }

    @Test func aCollectorThatBrokeOnADayIsReportedWithThatDay() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { _ in 1_000_000 })
        // From May 17 the vendor billed 1.1M a day: 100,000 a day the collector missed.
        let invoice = S.costReport(
            (1...31).map { d in
                .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: d < 17 ? "300" : "330")
            })
        let r = try await run(store, invoice)
        let f = try #require(r.findings.first { $0.gapClass == .meteringGap })
        #expect(f.gapSince == "2026-05-17" && f.gapDays == 15 && f.quantity == 1_500_000)
        #expect(r.priceSteps.isEmpty, "one model moving alone is a metering gap, not a price change")
        let may17 = try #require(r.days.first { $0.day == "2026-05-17" })
        #expect(may17.metered == 1_000_000 && may17.vendor == 1_100_000 && may17.gap == 100_000 && may17.impliedPerMillion == "3.300000")
        #expect(r.days.first { $0.day == "2026-05-16" }?.gap == 0)
    }

    /// A collector down May 10–12 for every model, and one more day for Opus: two runs of lost
    /// days read as not confined to some days, and every model was held as a price factor
    /// (`uniform_gap`). Each loss is corrected.
    @Test func anOutageOnEveryModelAndADayMoreOnOneIsCorrected() async throws {
        let store = try S.store()
        var rows: [TestSupport.Row] = []
        for (model, dollars) in [("claude-sonnet-4-5", Decimal(3)), ("claude-haiku-4-5", 1), ("claude-opus-4-8", 5)] {
            _ = try await store.ingest(
                try await daily(model, "input") { d in (10...12).contains(d) || (model == "claude-opus-4-8" && d == 20) ? 0 : 1_000_000 })
            rows += (1...31).map { .init(day: $0, model: model, tokenType: "uncached_input_tokens", cents: Self.cents(dollars)) }
        }
        let r = try await run(store, S.costReport(rows))
        #expect(
            r.corrections.map { "\($0.modelID ?? "") \($0.quantity)" }.sorted()
                == ["claude-haiku-4-5 3000000", "claude-opus-4-8 4000000", "claude-sonnet-4-5 3000000"], "\(r.reasons.map(\.code))")
    }

    /// Price rises the card lacks, and a collector down some days of a stepping model (a code
    /// review's cases): the outage day broke the stepping model's runs, and its rise was
    /// corrected as usage. Nothing here is a correction; the step is still found.
    @Test func anOutageDayDoesNotHideAPriceRise() async throws {
        struct Case { var name: String; var rises: [String: Decimal]; var types: [String]; var lost: [String: ClosedRange<Int>]; var step = 16 }
        let cases = [
            Case(
                name: "two models, two ratios, Haiku down May 5",
                rises: ["claude-sonnet-4-5": Decimal(string: "1.1")!, "claude-haiku-4-5": Decimal(string: "1.2")!],
                types: ["input"], lost: ["claude-haiku-4-5 input": 5...5]),
            Case(
                name: "one model's input and output, output down May 3", rises: ["claude-sonnet-4-5": Decimal(string: "1.1")!, "claude-haiku-4-5": 1],
                types: ["input", "output"], lost: ["claude-sonnet-4-5 output": 3...3], step: 20),
            Case(
                name: "three models, Sonnet down on the step's days",
                rises: ["claude-sonnet-4-5": Decimal(string: "1.1")!, "claude-haiku-4-5": Decimal(string: "1.1")!, "claude-opus-4-8": Decimal(string: "1.1")!],
                types: ["input"], lost: ["claude-sonnet-4-5 input": 16...17]),
            // A second review: a run read across unmetered days began on the first of them, and was
            // filed under that day, not the step's.
            Case(
                name: "two ratios, Haiku down May 15–16", rises: ["claude-sonnet-4-5": Decimal(string: "1.1")!, "claude-haiku-4-5": Decimal(string: "1.2")!],
                types: ["input"], lost: ["claude-haiku-4-5 input": 15...16]),
            Case(
                name: "one model's input and output, output down on the step's eve",
                rises: ["claude-sonnet-4-5": Decimal(string: "1.1")!, "claude-haiku-4-5": 1], types: ["input", "output"],
                lost: ["claude-sonnet-4-5 output": 19...19], step: 20),
        ]
        let dollars: [String: [String: Decimal]] = [
            "claude-sonnet-4-5": ["input": 3, "output": Decimal(string: "1.5")!], "claude-haiku-4-5": ["input": 1, "output": Decimal(string: "0.5")!],
            "claude-opus-4-8": ["input": 5, "output": Decimal(string: "2.5")!],
        ]
        let vendorType = ["input": "uncached_input_tokens", "output": "output_tokens"]
        for c in cases {
            let store = try S.store()
            var rows: [TestSupport.Row] = []
            for (model, rise) in c.rises.sorted(by: { $0.key < $1.key }) {
                for type in c.types {
                    let lost = c.lost["\(model) \(type)"]
                    _ = try await store.ingest(try await daily(model, type) { lost?.contains($0) == true ? 0 : (type == "input" ? 1_000_000 : 100_000) })
                    rows += (1...31).map { d in
                        .init(day: d, model: model, tokenType: vendorType[type]!, cents: Self.cents(dollars[model]![type]! * (d >= c.step ? rise : 1)))
                    }
                }
            }
            let r = try await run(store, S.costReport(rows))
            #expect(r.corrections.isEmpty && r.held.isEmpty, "\(c.name): \(r.corrections.map { "\($0.modelID) \($0.quantity)" })")
            #expect(r.priceSteps.map(\.date) == ["2026-05-\(c.step)"], "\(c.name): \(r.priceSteps.map(\.date))")
        }
    }

    /// One model billed 10 % above its card (all month, or from May 15), its collector also down
    /// some days: the lost days broke the step, and the whole factor was corrected as usage
    /// (an outside tester: +16,603,051 for 8,372,392 lost). Held as the factor it carries. So is
    /// a tenth of the traffic lost on four days before the step (no outage, a share near the
    /// step's): the first such day was taken for the step's start, the clean days after it broke
    /// it, and the month was corrected as the loss plus the factor.
    @Test func aLossOnAModelBilledAboveItsCardIsNotTheFactor() async throws {
        for (stepDay, lost, kept) in [(1, 10...12, 0), (15, 20...20, 0), (15, 5...5, 0), (15, 5...8, 9)] as [(Int, ClosedRange<Int>, Int64)] {
            let store = try S.store()
            _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { lost.contains($0) ? kept * 100_000 : 1_000_000 })
            _ = try await store.ingest(try await daily("claude-haiku-4-5", "output") { lost.contains($0) ? kept * 20_000 : 200_000 })
            _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { _ in 1_000_000 })
            let rows: [TestSupport.Row] = (1...31).flatMap { d -> [TestSupport.Row] in
                let up: Decimal = d >= stepDay ? Decimal(string: "1.1")! : 1
                return [
                    .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(up)),
                    .init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: Self.cents(up)),
                    .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300"),
                ]
            }
            let r = try await run(store, S.costReport(rows))
            let haiku = r.findings.filter { $0.modelID == "claude-haiku-4-5" }
            #expect(
                haiku.count == 2
                    && haiku.allSatisfy { $0.gapClass == .unexplained && ["same_share_on_", "implied_price_of_"].contains(where: $0.reason.hasPrefix) },
                "step \(stepDay), lost \(lost): \(haiku.map { "\($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.gapClass) \($0.reason)" })")
            #expect(r.corrections.isEmpty && r.held.isEmpty, "step \(stepDay), lost \(lost): \(r.corrections.map(\.quantity))")
        }
    }

    /// A week billed in EUR (May 12–18), converted at a rate the run is given, 1.6 % off the
    /// vendor's: every model read 1.6 % above the meter that week, which looked like a collector
    /// down on every model (corrected). Any gap on those days rests on the rate: held, even at the
    /// vendor's rate (a loss there carries the rate's error); at that rate the month is exact, and a
    /// day lost outside the week is corrected.
    @Test func aGapOnDaysConvertedAtAGivenRateIsTheRatesAsLikely() async throws {
        func report() -> InvoiceFile {
            S.costReport(
                (1...31).flatMap { d -> [TestSupport.Row] in
                    let eur = (12...18).contains(d)
                    return [
                        .init(
                            day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: eur ? "800" : "1000", currency: eur ? "EUR" : "USD"),
                        .init(
                            day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: eur ? "240" : "300", currency: eur ? "EUR" : "USD"),
                    ]
                })
        }
        func run(_ store: any MeterStore, fx: String) async throws -> ReconciliationReport {
            var o = ReconciliationOptions(vendor: "anthropic", invoices: [report()], range: S.may, account: "acct_42")
            o.fx = ["EUR": Decimal(string: fx)!]
            return try await service.engine.run(o, store: store)
        }
        for lost in [nil, 13, 5] as [Int?] {
            let store = try S.store()
            for model in ["claude-haiku-4-5", "claude-sonnet-4-5"] {
                _ = try await store.ingest(try await daily(model, "input") { $0 == lost ? 0 : model == "claude-haiku-4-5" ? 10_000_000 : 1_000_000 })
            }
            let off = try await run(store, fx: "1.27")
            #expect(
                off.corrections.isEmpty && off.findings.filter { $0.rule == "given-exchange-rate" }.count == 2
                    && off.reasons.contains { $0.code == "given_exchange_rate_decides" },
                "lost \(String(describing: lost)): \(off.findings.map { "\($0.modelID) \($0.quantity) \($0.reason)" })")
            let exact = try await run(store, fx: "1.25")
            let expected: Set<Int64> = lost == 5 ? [10_000_000, 1_000_000] : []
            #expect(
                Set(exact.corrections.map(\.quantity)) == expected
                    && exact.findings.filter { $0.rule == "given-exchange-rate" }.count == (lost == 13 ? 2 : 0),
                "lost \(String(describing: lost)): \(exact.findings.map { "\($0.modelID) \($0.quantity) \($0.reason)" })")
        }
    }

    /// One model, no list price on May 1–9 and 20 % off there, its collector down May 10–12: the
    /// net days read 1,800,000 short and the correction was the loss less that (+1,200,000 of
    /// 3,000,000). Held (`amounts_may_be_net` on the cell); the same days at full price, no list
    /// price stated, correct the whole loss.
    @Test func netDaysBelowTheMeterHoldALossAboveIt() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { (10...12).contains($0) ? 0 : 1_000_000 })
        func report(netFactor: String) -> InvoiceFile {
            S.costReport(
                (1...31).map { d in
                    .init(
                        day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(d < 10 ? 3 * Decimal(string: netFactor)! : 3),
                        atList: d >= 10)
                })
        }
        let held = try await run(store, report(netFactor: "0.8"))
        let reason = try #require(held.reasons.first { $0.code == "amounts_may_be_net" && $0.effect == .blocksCell }, "\(held.reasons.map(\.code))")
        #expect(reason.detail.contains("on 9 day(s)") && reason.detail.contains("1800000 tokens below"), "\(reason.detail)")
        #expect(held.findings.first?.quantity == 1_200_000 && held.corrections.isEmpty && held.held.isEmpty, "\(held.corrections)")
        let whole = try await run(store, report(netFactor: "1"))
        #expect(whole.corrections.map(\.quantity) == [3_000_000], "\(whole.reasons.map(\.code)) \(whole.findings)")
    }

    /// The same on Azure: gpt-4o input rows of May 1–9 with a blank Quantity, every row's cost at
    /// 0.94× list, the collector down May 10–12. The cost-details parser never said its money may
    /// be net, so +1,180,000 of 3,000,000 lost was a conclusive correction (tester P2 N3). Held;
    /// the same days at list price correct the whole loss.
    @Test func azureRowsWithoutAQuantityAreMoneyThatMayBeNet() async throws {
        let store = try S.store()
        _ = try await store.ingest(
            (1...31).compactMap { d in
                (10...12).contains(d) ? nil : S.event("az-\(d)", model: "gpt-4o", type: "input", quantity: 1_000_000, day: d, vendor: "azure-openai")
            })
        func run(moneyOnlyCost: String) async throws -> ReconciliationReport {
            let csv =
                "Date,MeterCategory,MeterSubCategory,MeterName,Quantity,UnitOfMeasure,CostInBillingCurrency,BillingCurrencyCode,ChargeType\n"
                + (1...31).map { d in
                    "05/\(String(format: "%02d", d))/2026,Foundry Models,Azure OpenAI,gpt 4o 0806 Inp glbl Tokens,\(d < 10 ? "" : "1000"),1K,\(d < 10 ? moneyOnlyCost : "2.35"),USD,Usage\n"
                }.joined()
            var o = ReconciliationOptions(
                vendor: "azure-openai", invoices: [InvoiceFile(name: "azure.csv", bytes: Array(csv.utf8))], range: S.may, account: "acct_42")
            o.invoiceScope = .account
            return try await service.engine.run(o, store: store)
        }
        let held = try await run(moneyOnlyCost: "2.35")
        let reason = try #require(held.reasons.first { $0.code == "amounts_may_be_net" && $0.effect == .blocksCell }, "\(held.reasons.map(\.code))")
        #expect(reason.detail.contains("no Quantity (the first at azure.csv:2)"), "\(reason.detail)")
        #expect(held.findings.first?.quantity == 2_460_000 && held.corrections.isEmpty && held.held.isEmpty, "\(held.findings) \(held.corrections)")
        let whole = try await run(moneyOnlyCost: "2.50")
        #expect(whole.corrections.map(\.quantity) == [3_000_000], "\(whole.reasons.map(\.code)) \(whole.findings)")
    }

    /// Every price 10 % up from May 16, the money rounded to the cent. Read against each run's
    /// first day alone, a day's quotient carried its rounding to the next day's tokens, the runs
    /// broke every day or two, no step was found and the gap was a `uniform_gap` with nothing
    /// for `ratecards propose` to write (tester W, on four vendors of five). One price fits every
    /// day of a run to its rounding: one step of several models, at the card's prices times 1.1.
    @Test func aRiseOnEveryModelInCentRoundedMoneyIsOneStep() async throws {
        let cells: [(model: String, type: String, vendorType: String, price: Decimal, base: Int64)] = [
            ("claude-sonnet-4-5", "input", "uncached_input_tokens", 3, 20_000_000), ("claude-sonnet-4-5", "output", "output_tokens", 15, 3_000_000),
            ("claude-haiku-4-5", "input", "uncached_input_tokens", 1, 8_000_000), ("claude-haiku-4-5", "output", "output_tokens", 5, 1_000_000),
        ]
        func volume(_ base: Int64, _ d: Int) -> Int64 { base + base / 97 * Int64((d * 37) % 11) + Int64(d * 7_919) }
        let store = try S.store()
        var rows: [S.Row] = []
        for c in cells {
            _ = try await store.ingest(try await daily(c.model, c.type) { volume(c.base, $0) })
            rows += (1...31).map { d in
                var dollars = Decimal(volume(c.base, d)) * c.price * (d >= 16 ? Decimal(string: "1.1")! : 1) / 1_000_000, rounded = Decimal()
                NSDecimalRound(&rounded, &dollars, 2, .plain)
                return .init(day: d, model: c.model, tokenType: c.vendorType, cents: Self.cents(rounded))
            }
        }
        let r = try await run(store, S.costReport(rows))
        #expect(r.corrections.isEmpty, "\(described(r))")
        #expect(
            r.priceSteps.map { step in
                "\(step.date) \(step.kind.rawValue) "
                    + step.rates.map { "\($0.modelID) \($0.tokenType?.rawValue ?? "") \($0.afterPerMillion)" }.joined(separator: ", ")
            }
                == [
                    "2026-05-16 several_models claude-haiku-4-5 input 1.100000, claude-haiku-4-5 output 5.500000, claude-sonnet-4-5 input 3.300000, claude-sonnet-4-5 output 16.500000"
                ], "\(r.priceSteps) \(r.findings.map(\.reason))")
    }

    /// A month of one cell's traffic under midnight carries (tester W2's generator): what the
    /// vendor served each day and what the meter stamped on the next day instead.
    struct CarriedMonth: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var volume: [Int64]
        var carried: [Int64]
        /// Sonnet input's price from May 5 (the card's is $3), and whether money is cent-rounded.
        var price: String
        var cents: Bool
        /// A fixed loss a day from May 5 that the same carries must not hide.
        var lost: Int64
    }

    static let carriedMonths: [CarriedMonth] = [
        .init(
            testDescription: "8 % up, volume varying 30 %, 2 % carried, cents",
            volume: [
                21_998_213, 24_609_745, 25_687_657, 21_651_528, 25_553_933, 24_328_518, 22_065_181, 21_371_937, 22_761_815, 24_562_168,
                23_886_912, 24_134_976, 22_731_575, 20_084_975, 24_150_891, 24_843_290, 23_071_163, 21_504_648, 20_226_479, 20_313_881,
                23_108_401, 24_800_744, 20_087_399, 20_845_981, 20_357_826, 20_605_629, 20_928_968, 25_468_667, 24_875_909, 24_748_844,
                24_895_808,
            ],
            carried: [
                404_483, 269_204, 126_025, 358_586, 270_628, 131_654, 14_105, 359_776, 407_925, 102_564, 291_999, 426_264, 166_661, 291_649,
                170_426, 125_739, 434_750, 120_623, 160_686, 233_320, 217_041, 303_262, 143_730, 64_259, 207_110, 389_699, 54_283, 268_128,
                11_319, 464_908, 0,
            ], price: "3.24", cents: true, lost: 1_600_000),
        // The two fits nearly alike, the share's a little better: held (asking the share's
        // spread to be four fifths of the other's, not merely no wider, corrected it as +28.1M).
        .init(
            testDescription: "5 % up, volume varying 10 %, 1 % carried",
            volume: [
                21_136_652, 21_740_932, 20_506_092, 21_253_593, 21_311_368, 20_099_290, 21_554_363, 21_326_068, 20_726_864, 20_048_489,
                20_700_049, 20_383_933, 21_028_684, 20_809_691, 20_719_820, 21_823_040, 20_022_218, 20_808_873, 21_409_208, 20_855_932,
                20_645_150, 21_632_803, 20_492_231, 21_009_568, 21_465_174, 20_699_397, 20_003_300, 20_110_724, 20_056_480, 21_750_769,
                20_547_811,
            ],
            carried: [
                54_910, 44_197, 66_909, 23_762, 26_191, 192_190, 8_616, 125_360, 182_526, 29_421, 147_501, 3_967, 189_155, 146_096, 44_526,
                192_919, 10_009, 197_012, 61_724, 170_687, 61_108, 24_264, 29_743, 178_230, 139_984, 13_507, 92_428, 180_382, 107_408,
                196_156, 0,
            ], price: "3.15", cents: false, lost: 1_000_000),
    ]

    /// A meter that stamps part of each day's traffic on the next day (a batch flushed after
    /// midnight) moves every day off a price's share by what it carried in less what it carried
    /// out, so no day reads the share alone: Sonnet input 8 % up from May 5 was corrected as
    /// usage, +49,299,672 on a true 0 (Azure gpt-4o input alike, +48,972,900: tester W2). Net of
    /// the carries the running sum is one share of the volume: held. A fixed number of tokens lost
    /// a day under the same carries is still the meter's, to the token.
    @Test(arguments: carriedMonths)
    func aPriceUnderMidnightCarriesIsHeldAFixedLossCorrected(_ month: CarriedMonth) async throws {
        func metered(lost: Int64) -> (Int) -> Int64 {
            { d in month.volume[d - 1] - (d >= 5 ? lost : 0) - month.carried[d - 1] + (d > 1 ? month.carried[d - 2] : 0) }
        }
        let priced = try S.store()
        _ = try await priced.ingest(try await daily("claude-sonnet-4-5", "input", metered(lost: 0)))
        let invoice = Self.oneCell("claude-sonnet-4-5", "uncached_input_tokens", days: 1...31) { d in
            var dollars = Decimal(month.volume[d - 1]) * (d >= 5 ? Decimal(string: month.price)! : 3) / 1_000_000, rounded = Decimal()
            NSDecimalRound(&rounded, &dollars, month.cents ? 2 : 12, .plain)
            return rounded
        }
        let rise = try await run(priced, invoice)
        #expect(
            rise.corrections.isEmpty && rise.findings.map(\.reason) == ["same_share_net_of_midnight_carries_from_2026-05-05"]
                && rise.priceSteps.map { "\($0.date) \($0.kind.rawValue) \($0.rates.map(\.afterPerMillion))" }
                    == ["2026-05-05 one_token_type [\"\(month.price)0000\"]"],
            "\(described(rise)) \(rise.findings.map(\.reason))")
        // As a user closes it: `ratecards propose` writes the listed price, and the re-run on that
        // card leaves nothing to correct (a price read with the carry in it left +355k: review Y).
        let (_, again) = try await rerunOnProposedCard(rise, invoice, priced)
        #expect(again.corrections.isEmpty && again.priceSteps.isEmpty, "\(described(again))")
        let lossy = try S.store()
        _ = try await lossy.ingest(try await daily("claude-sonnet-4-5", "input", metered(lost: month.lost)))
        let loss = try await run(
            lossy, Self.oneCell("claude-sonnet-4-5", "uncached_input_tokens", days: 1...31) { Decimal(month.volume[$0 - 1]) * 3 / 1_000_000 })
        #expect(loss.corrections.map(\.quantity) == [month.lost * 27], "\(described(loss)) \(loss.findings.map(\.reason))")
    }

    /// Sonnet input billed at $3.30 against a $3 card, nothing lost, on a volume that varies by
    /// the day: its money is one share above the meter to the cent every day, as a price is, and
    /// was corrected as lost usage (+3,300,000-odd for the month, and from a step on May 16: tester
    /// Q). Held. A loss whose share wanders with the day (8–10 %, a few days at each) is the
    /// meter's and is corrected; one that cycles 8, 9, 10 % reads as a price under midnight
    /// carries and is held.
    @Test func oneTokenTypeOffByOneShareOfAVaryingVolumeIsAPrice() async throws {
        func volume(_ d: Int) -> Int64 { 1_000_000 + 37_000 * Int64(d % 7) }
        func bill(_ dollarsPerMillion: (Int) -> Decimal) -> InvoiceFile {
            S.costReport(
                (1...31).map { d in
                    .init(
                        day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens",
                        cents: Self.cents(Decimal(volume(d)) * dollarsPerMillion(d) / 1_000_000))
                })
        }
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input", volume))
        // Over the last four days too: five were needed, and a rise from May 28 on an export of
        // money alone was proposed as +6,846,100 to +13,320,800 of lost usage (tester T).
        for (from, price) in [
            (1, bill { _ in Decimal(string: "3.3")! }), (16, bill { $0 < 16 ? 3 : Decimal(string: "3.3")! }),
            (28, bill { $0 < 28 ? 3 : Decimal(string: "3.3")! }),
        ] {
            let r = try await run(store, price)
            #expect(r.findings.map(\.reason) == ["same_share_every_day_from_2026-05-\(String(format: "%02d", from))"], "\(r.findings)")
            #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
            // Listed as a step of one token type, whose card `ratecards propose` writes (with the
            // doubt named); that card closes the gap (it had no step to write: tester Q2).
            #expect(
                r.priceSteps.map {
                    "\($0.kind.rawValue) \($0.date) "
                        + $0.rates.map { "\($0.modelID) \($0.tokenType?.rawValue ?? "") \($0.beforePerMillion)→\($0.afterPerMillion)" }.joined()
                }
                    == ["one_token_type 2026-05-\(String(format: "%02d", from)) claude-sonnet-4-5 input 3.000000→3.300000"], "\(r.priceSteps)")
            if from > 1 {
                let (proposed, again) = try await rerunOnProposedCard(r, price, store)
                #expect(proposed.contains("one token type only: confirm with the vendor's price list"))
                #expect(closed(again), "\(described(again))")
                // Its long-context tier carries over, without the input price the step moved (the
                // tiers were dropped: a real long-context loss then read as unpriced: tester T2 L3).
                let card = try RateCard.load(text: proposed, file: "proposed.yaml")
                let after = Timestamp(date: "2026-05-\(String(format: "%02d", from))")!, long = ["context_window": "200k-1M"]
                #expect(try card.price(model: "claude-sonnet-4-5", tokenType: .output, date: after, labels: long).perMillion == Decimal(string: "22.5")!)
                #expect(try card.price(model: "claude-sonnet-4-5", tokenType: .input, date: after, labels: [:]).perMillion == Decimal(string: "3.3")!)
                #expect(throws: PriceFailure.noRateForTier(model: "claude-sonnet-4-5", tokenType: .input, label: "context_window=200k-1M")) {
                    try card.price(model: "claude-sonnet-4-5", tokenType: .input, date: after, labels: long)
                }
                #expect(proposed.contains("claude-sonnet-4-5 input at long_context left unpriced"))
            }
        }
        // Beside another day off the meter (the meter counting 2,000,000 twice on May 10), and a
        // rise the vendor stopped after May 25: both were corrected as usage (+6.7M on a cell
        // whose truth is −2M, +14.4M on an exact meter: tester T2). Held; a window that ends
        // before the period does is no card row.
        let doubled = try S.store()
        _ = try await doubled.ingest(try await daily("claude-sonnet-4-5", "input") { volume($0) + ($0 == 10 ? 2_000_000 : 0) })
        let glitch = try await run(doubled, bill { $0 < 28 ? 3 : Decimal(string: "3.3")! })
        #expect(glitch.findings.map(\.reason) == ["same_share_every_day_from_2026-05-28"] && glitch.corrections.isEmpty, "\(glitch.findings)")
        let window = try await run(store, bill { (20...25).contains($0) ? Decimal(string: "3.3")! : 3 })
        #expect(
            window.findings.map(\.reason) == ["same_share_every_day_from_2026-05-20_to_2026-05-25"] && window.corrections.isEmpty
                && window.priceSteps.isEmpty, "\(window.findings) \(window.priceSteps)")
        // Every other night, the last minutes' requests dated the next day (0.4 % of a day): no
        // day reads the share alone, each pair of days does (one such request brought the
        // correction back: tester Q2).
        func carry(_ d: Int) -> Int64 { d % 2 == 1 && d < 31 ? 4_000 : 0 }
        let carried = try S.store()
        _ = try await carried.ingest(try await daily("claude-sonnet-4-5", "input") { d in volume(d) - carry(d) + carry(d - 1) })
        let skewed = try await run(carried, bill { _ in Decimal(string: "3.3")! })
        #expect(skewed.findings.map(\.reason) == ["same_share_every_day_from_2026-05-01"] && skewed.corrections.isEmpty, "\(skewed.findings)")
        // A collector losing a share that wanders (8–10 %, a few days at each) is the meter's.
        let wander: [Int64] = [8, 9, 8, 8, 9, 10, 10, 9, 10, 8, 8, 9, 8, 10, 10, 10, 9, 8, 8, 8, 9, 10, 9, 10, 10, 8, 9, 8, 8, 10, 9]
        let lossy = try S.store()
        var lost: Int64 = 0
        _ = try await lossy.ingest(
            try await daily("claude-sonnet-4-5", "input") { d in
                let kept = volume(d) - volume(d) * wander[d - 1] / 100
                lost += volume(d) - kept
                return kept
            })
        let r = try await run(lossy, bill { _ in 3 })
        #expect(r.corrections.map(\.quantity) == [lost], "\(r.findings)")
        // One that cycles 8, 9, 10 % is what a point of each day carried past midnight makes of a
        // 9 % price, and nets out alike: held (a wrong correction is worse than none).
        let cycling = try S.store()
        _ = try await cycling.ingest(try await daily("claude-sonnet-4-5", "input") { d in volume(d) - volume(d) * Int64(8 + d % 3) / 100 })
        let cycled = try await run(cycling, bill { _ in 3 })
        #expect(cycled.corrections.isEmpty && cycled.findings.map(\.rule) == ["one-cell-factor"], "\(described(cycled))")
        // A fixed 2,000,000 lost a day from May 20 on, on a volume whose four days May 23–26 read
        // one share by chance (two pairs of days): held as a price window of those four days, the
        // loss around them ignored (tester U). A price starts and ends against the meter.
        let hundredK: [Int: Int64] = [20: 200, 21: 210, 22: 220, 23: 230, 24: 236, 25: 230, 26: 236, 27: 220, 28: 210, 29: 200, 30: 195, 31: 190]
        func billed(_ d: Int) -> Int64 { (hundredK[d] ?? 200) * 100_000 }
        let fixed = try S.store()
        _ = try await fixed.ingest(try await daily("claude-sonnet-4-5", "input") { billed($0) - ($0 >= 20 ? 2_000_000 : 0) })
        let chance = try await run(
            fixed,
            S.costReport(
                (1...31).map { d in
                    .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(Decimal(billed(d)) * 3 / 1_000_000))
                }))
        #expect(chance.corrections.map(\.quantity) == [24_000_000], "\(chance.findings)")
        // A fixed 2,000,000 lost a day May 20–26, then no traffic May 27–31 (tester W, on U2's
        // data): six of its days read one share, pairs netting as carries, and it was held as a
        // price window. A price leaves the tokens off varying with the volume; here they do not.
        let metered: [Int64] = [
            21_127_270, 23_127_061, 26_028_584, 22_347_631, 22_419_773, 21_242_939, 20_367_342, 23_826_969, 26_167_889, 23_722_590,
            22_565_584, 23_956_431, 21_085_271, 21_051_341, 26_049_298, 21_588_965, 23_190_593, 25_249_218, 22_567_069, 21_810_403,
            23_296_357, 23_090_623, 18_586_001, 24_209_178, 21_317_482, 24_155_883,
        ]
        let stopped = try S.store()
        _ = try await stopped.ingest(try await daily("claude-sonnet-4-5", "input") { $0 <= 26 ? metered[$0 - 1] : 0 })
        let idleEnd = try await run(
            stopped,
            Self.oneCell("claude-sonnet-4-5", "uncached_input_tokens", days: 1...26) { Decimal(metered[$0 - 1] + ($0 >= 20 ? 2_000_000 : 0)) * 3 / 1_000_000 })
        #expect(idleEnd.corrections.map(\.quantity) == [14_000_000], "\(described(idleEnd)) \(idleEnd.findings.map(\.reason))")
        // That test leaves a small price on a volume that barely varies a price: Sonnet output
        // 1 % up from May 16, volumes within 3 %, money to the cent: rounding fits a fixed number of
        // tokens a day about as well as the share, so only a markedly better fit is a loss.
        func flat(_ d: Int) -> Int64 { 1_000_000 + 1_000 * Int64((d * 7) % 31) }
        // (Input 2 % up at $3, or output 0.5 % up, is corrected as usage with the check or
        // without it: rounding hides so small a step on so steady a volume, a documented limit.)
        for (model, type, price, rise) in [("claude-sonnet-4-5", "output", Decimal(15), "1.01")] {
            let small = try S.store()
            _ = try await small.ingest(try await daily(model, type, flat))
            let r = try await run(
                small,
                Self.oneCell(model, type == "input" ? "uncached_input_tokens" : "output_tokens", days: 1...31) { d in
                    var dollars = Decimal(flat(d)) * price * (d >= 16 ? Decimal(string: rise)! : 1) / 1_000_000, rounded = Decimal()
                    NSDecimalRound(&rounded, &dollars, 2, .plain)
                    return rounded
                })
            #expect(r.corrections.isEmpty && r.findings.map(\.rule) == ["one-cell-factor"], "\(type) ×\(rise): \(described(r))")
        }
        // A real loss on the three days before a rise from May 16 to the end, of about the rise's
        // share: the first reading of the rule above corrected the whole gap (+38.7M for 2M lost:
        // tester U2). A rise of a week and more is the price, the loss beside it held with it.
        let beside = try S.store()
        _ = try await beside.ingest(try await daily("claude-sonnet-4-5", "input") { volume($0) - ((13...15).contains($0) ? 100_000 : 0) })
        let rise = try await run(beside, bill { $0 < 16 ? 3 : Decimal(string: "3.3")! })
        #expect(rise.corrections.isEmpty && rise.findings.map(\.rule) == ["one-cell-factor"], "\(described(rise))")
        // A rise from 12:00 on May 27: that day reads half the share, alone, and is no loss
        // beside the four days after it (the first reading of the rule above corrected it: review V).
        let partial = try await run(store, bill { $0 < 27 ? 3 : $0 == 27 ? Decimal(string: "3.15")! : Decimal(string: "3.3")! })
        #expect(partial.corrections.isEmpty && partial.findings.map(\.rule) == ["one-cell-factor"], "\(described(partial))")
        // Two days lost at about the rise's share just before it: a rise of eight days is the
        // price, held with the loss. One of seven could be a loss a few days of which agreed by
        // chance, and was corrected whole, the price's money in it; read net of the two days'
        // number (a steady loss beside a price), it is held too.
        for (length, reason) in [(7, "same_share_beside_a_steady_loss"), (8, "same_share_every_day_from_2026-05-24")] {
            let from = 32 - length
            let near = try S.store()
            _ = try await near.ingest(
                try await daily("claude-sonnet-4-5", "input") { d in d == from - 1 || d == from - 2 ? volume(d) * 100 / 108 : volume(d) })
            let r = try await run(near, bill { $0 < from ? 3 : Decimal(string: "3.3")! })
            #expect(r.findings.map(\.reason) == [reason] && r.corrections.isEmpty, "\(length) days: \(described(r)) \(r.findings.map(\.reason))")
        }
    }

    /// Sonnet output 10 % above its card from May 20, beside long-context output lines that the
    /// run's card leaves unpriced at that tier (`null`, as `ratecards propose` writes it): the
    /// cell's money is short of those lines, so its implied price moves with them, not with the
    /// vendor's. A step was listed (16.0413 for 16.5), and a second proposal wrote it (tester U).
    /// No step; the cell is held for its unpriced lines. A step whose price before it reads other
    /// than the card (money mixing a tier's price into the base's) is refused by name, not
    /// written as the vendor's price (3.44674 for 3.30).
    @Test func aCellWithUnpricedLinesOrMixedPricesProposesNoCard() async throws {
        // Volumes 2 % apart: the unpriced 100,000 then read as one share of the meter day after
        // day on the re-run, as a price does.
        func volume(_ d: Int) -> Int64 { 3_500_000 + 24_000 * Int64(d % 4) }
        let store = try S.store()
        // 100,000 long-context tokens a day besides, metered with the rest; every price 10 % up
        // from May 27.
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "output") { volume($0) + 100_000 })
        let bill = S.costReport(
            (1...31).flatMap { d -> [TestSupport.Row] in
                [
                    .init(
                        day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens",
                        cents: Self.cents(Decimal(volume(d)) * (d >= 27 ? 16.5 : 15) / 1_000_000)),
                    .init(
                        day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens",
                        cents: Self.cents(Decimal(100_000) * (d >= 27 ? 24.75 : 22.5) / 1_000_000), contextWindow: "200k-1M"),
                ]
            })
        let shipped = try #require(service.cards["anthropic"])
        // On the shipped card the long-context lines are priced, and the step is written, its
        // long-context output `null`.
        var blended = try await run(store, bill)
        #expect(blended.priceSteps.map(\.kind) == [.oneTokenType], "\(blended.priceSteps)")
        let (proposed, again) = try await rerunOnProposedCard(blended, bill, store)
        #expect(proposed.contains("output: null"))
        // Propose builds on the card each run priced with: the shipped one, then the proposed one
        // (a second proposal was written over the shipped card, undoing the first: tester U).
        #expect(ReconciliationRunner.card(of: blended, shipped: service.cards)?.source == shipped.source)
        #expect(ReconciliationRunner.card(of: again, shipped: service.cards)?.source == proposed)
        #expect(again.priceSteps.isEmpty && again.corrections.isEmpty, "\(again.priceSteps) \(described(again))")
        #expect(again.reasons.contains { $0.code == "unpriced_vendor_usage" && $0.tokenType == .output }, "\(again.reasons.map(\.code))")
        blended.priceSteps[0].rates[0].beforePerMillion = "15.682000"
        do {
            _ = try shipped.proposing(blended)
            Issue.record("a blended price was written")
        } catch { #expect("\(error)".contains("mixes prices"), "\(error)") }
        // Traffic all batch reads the card's price at half: the base is the price over the
        // modifier, not a blend (every such step was refused as mixed: review V).
        blended.priceSteps[0].rates[0].beforePerMillion = "7.500000"
        blended.priceSteps[0].rates[0].afterPerMillion = "8.250000"
        let batch = try shipped.proposing(blended)
        #expect(batch.contains("read as 7.500000 → 8.250000, the card's price times batch ×0.5 or a discount that size"), "\(batch)")
        let batchCard = try RateCard.load(text: batch, file: "proposed.yaml")
        let step = try #require(Timestamp(date: blended.priceSteps[0].date))
        #expect(try batchCard.price(model: "claude-sonnet-4-5", tokenType: .output, date: step, labels: [:]).perMillion == Decimal(string: "16.5")!)
        // Read a little off the factor (cent-rounded money), the ratio still writes the price.
        blended.priceSteps[0].rates[0].beforePerMillion = "7.507500"
        blended.priceSteps[0].rates[0].afterPerMillion = "8.258250"
        #expect(try shipped.proposing(blended).contains("output: \"16.5\""))
        // Between the modifiers' readings (half the traffic batch) it is a blend, refused.
        blended.priceSteps[0].rates[0].beforePerMillion = "11.250000"
        #expect(throws: UsageBoxError.self) { try shipped.proposing(blended) }
    }

    /// Every input price 10 % up from May 16 on Haiku and Sonnet, Sonnet with lines at a context
    /// window the card does not price. Money too small to move a price (a hundredth of a cent a
    /// day) leaves Sonnet in the step; money that would (five dollars a day) takes Sonnet out of
    /// it, and the step left with Haiku alone is Haiku's (review V: one stray line dropped the
    /// cell).
    @Test func onlyMaterialUnpricedMoneyTakesACellOutOfAStep() async throws {
        func volume(_ d: Int) -> Int64 { 2_000_000 + 41_000 * Int64(d % 5) }
        let store = try S.store()
        for model in ["claude-haiku-4-5", "claude-sonnet-4-5"] { _ = try await store.ingest(try await daily(model, "input", volume)) }
        func bill(unpriced: Decimal) -> InvoiceFile {
            S.costReport(
                (1...31).flatMap { d -> [TestSupport.Row] in
                    [("claude-haiku-4-5", Decimal(1)), ("claude-sonnet-4-5", Decimal(3))].map { model, price in
                        .init(
                            day: d, model: model, tokenType: "uncached_input_tokens",
                            cents: Self.cents(Decimal(volume(d)) * price * (d >= 16 ? Decimal(string: "1.1")! : 1) / 1_000_000))
                    } + [.init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(unpriced), contextWindow: "1M-2M")]
                })
        }
        func steps(_ r: ReconciliationReport) -> [String] {
            r.priceSteps.map { "\($0.kind.rawValue) \($0.date) " + $0.rates.map(\.modelID).joined(separator: ",") }
        }
        let stray = try await run(store, bill(unpriced: Decimal(string: "0.0001")!))
        #expect(stray.reasons.contains { $0.code == "unpriced_vendor_usage" && $0.effect == .blocksNegative }, "\(stray.reasons.map(\.code))")
        #expect(steps(stray) == ["several_models 2026-05-16 claude-haiku-4-5,claude-sonnet-4-5"], "\(steps(stray)) \(stray.reasons.map(\.code))")
        #expect(stray.corrections.isEmpty, "\(described(stray))")
        let material = try await run(store, bill(unpriced: 5))
        #expect(steps(material) == ["one_model 2026-05-16 claude-haiku-4-5"], "\(steps(material))")
        #expect(material.corrections.isEmpty, "\(described(material))")
    }

    /// Every input price 10 % up from May 16 on three models; Opus idle May 16–18 (its new price
    /// shows from the 19th) and losing 15 % of its requests May 22–25 besides. Its gap mixes the
    /// step and a loss and is held; it was read against the step's day alone and corrected whole,
    /// the price with the loss (review V).
    @Test func aCellIdleBeforeTheStepWithALossBesidesIsHeld() async throws {
        func volume(_ d: Int) -> Int64 { 1_000_000 + 37_000 * Int64(d % 7) }
        let prices: [(String, Decimal)] = [("claude-haiku-4-5", 1), ("claude-sonnet-4-5", 3), ("claude-opus-4-8", 5)]
        func used(_ model: String, _ d: Int) -> Bool { model != "claude-opus-4-8" || !(16...18).contains(d) }
        let store = try S.store()
        for (model, _) in prices {
            _ = try await store.ingest(
                try await daily(model, "input") { d in
                    !used(model, d) ? 0 : model == "claude-opus-4-8" && (22...25).contains(d) ? volume(d) * 85 / 100 : volume(d)
                })
        }
        let r = try await run(
            store,
            S.costReport(
                (1...31).flatMap { d in
                    prices.filter { used($0.0, d) }.map { model, price in
                        TestSupport.Row(
                            day: d, model: model, tokenType: "uncached_input_tokens",
                            cents: Self.cents(Decimal(volume(d)) * price * (d >= 16 ? Decimal(string: "1.1")! : 1) / 1_000_000))
                    }
                }))
        #expect(r.corrections.isEmpty, "\(described(r)) \(r.findings.map { $0.reason ?? "" })")
        // Not a step of its own from the 19th, which `ratecards propose` would date three days late.
        #expect(r.priceSteps.map(\.date) == ["2026-05-16"], "\(r.priceSteps)")
        #expect(
            r.findings.first { $0.modelID == "claude-opus-4-8" }?.reason == "vendor_price_changed_on_2026-05-16_among_other_changes",
            "\(r.findings.map { "\($0.modelID) \($0.gapClass) \($0.rule ?? "") \($0.reason ?? "")" })")
    }

    /// Sonnet's input and output 10 % up, Sonnet idle May 16–18, Haiku steady: the model's step
    /// is dated May 19, the day its price shows, not the earliest idle day before it (review V, X).
    @Test func aLoneStepIsDatedWhereItsPriceShows() async throws {
        func volume(_ d: Int) -> Int64 { (16...18).contains(d) ? 0 : 1_000_000 + 37_000 * Int64(d % 7) }
        let store = try S.store()
        for model in ["claude-haiku-4-5", "claude-sonnet-4-5"] {
            for type in ["input", "output"] { _ = try await store.ingest(try await daily(model, type, volume)) }
        }
        let dollars: [String: [String: Decimal]] = [
            "claude-haiku-4-5": ["uncached_input_tokens": 1, "output_tokens": 5], "claude-sonnet-4-5": ["uncached_input_tokens": 3, "output_tokens": 15],
        ]
        let r = try await run(
            store,
            S.costReport(
                (1...31).filter { !(16...18).contains($0) }.flatMap { d in
                    dollars.sorted { $0.key < $1.key }.flatMap { model, types in
                        types.sorted { $0.key < $1.key }.map { type, price in
                            let up: Decimal = model == "claude-sonnet-4-5" && d >= 16 ? Decimal(string: "1.1")! : 1
                            return TestSupport.Row(day: d, model: model, tokenType: type, cents: Self.cents(Decimal(volume(d)) * price * up / 1_000_000))
                        }
                    }
                }))
        #expect(r.corrections.isEmpty, "\(described(r))")
        #expect(r.priceSteps.map { "\($0.kind.rawValue) \($0.date)" } == ["one_model 2026-05-19"], "\(r.priceSteps)")
    }

    /// Every line batch (half the card's price), every input price 10 % up from May 16 on Haiku
    /// and Sonnet: the step reads 0.5 → 0.55 and 1.5 → 1.65, and the card proposed writes the base
    /// prices 1.1 and 3.3 (every such step was refused as a blend: review V); the run on it closes.
    @Test func aStepReadUnderBatchProposesTheBasePrice() async throws {
        func volume(_ d: Int) -> Int64 { 2_000_000 + 41_000 * Int64(d % 5) }
        let prices: [(String, Decimal)] = [("claude-haiku-4-5", 1), ("claude-sonnet-4-5", 3)]
        let store = try S.store()
        for (model, _) in prices { _ = try await store.ingest(try await daily(model, "input", volume)) }
        let bill = S.costReport(
            (1...31).flatMap { d in
                prices.map { model, price in
                    TestSupport.Row(
                        day: d, model: model, tokenType: "uncached_input_tokens",
                        cents: Self.cents(Decimal(volume(d)) * price / 2 * (d >= 16 ? Decimal(string: "1.1")! : 1) / 1_000_000), serviceTier: "batch")
                }
            })
        let r = try await run(store, bill)
        #expect(
            r.priceSteps.map { "\($0.kind.rawValue) \($0.date) " + $0.rates.map { "\($0.beforePerMillion)→\($0.afterPerMillion)" }.joined(separator: " ") }
                == ["several_models 2026-05-16 0.500000→0.550000 1.500000→1.650000"], "\(r.priceSteps)")
        let (proposed, again) = try await rerunOnProposedCard(r, bill, store)
        let card = try RateCard.load(text: proposed, file: "proposed.yaml")
        let may16 = try #require(Timestamp(date: "2026-05-16"))
        #expect(try card.price(model: "claude-haiku-4-5", tokenType: .input, date: may16, labels: [:]).perMillion == Decimal(string: "1.1")!)
        #expect(try card.price(model: "claude-sonnet-4-5", tokenType: .input, date: may16, labels: [:]).perMillion == Decimal(string: "3.3")!)
        #expect(proposed.contains("times batch ×0.5 or a discount that size"), "\(proposed)")
        #expect(closed(again), "\(again.priceSteps) \(described(again))")
    }

    /// A step's price is the vendor's figure where rounding in the money left it a few parts per
    /// million off (14.250002 for 14.25: tester T2); a price that is no such figure stays exact.
    @Test func stepPricesSnapToTheVendorsFigure() {
        #expect(DailyEvidence.perMillion(Decimal(string: "0.000014250002")!) == "14.250000")
        #expect(DailyEvidence.perMillion(Decimal(string: "0.000010499999")!) == "10.500000")
        #expect(DailyEvidence.perMillion(Decimal(string: "0.000002777641")!) == "2.777641")
        #expect(DailyEvidence.perMillion(Decimal(string: "0.0000033")!) == "3.300000")
    }

    /// Two steps in one report, `ratecards propose` wrote invalid YAML (tester T2): Sonnet input
    /// and output stepping by different shares on one day ended its earlier row twice, and Haiku
    /// stepping on another day had its row written into Sonnet's. Both cards load and close the gaps.
    @Test func proposingACardForSeveralStepsWritesEachOnce() async throws {
        func volume(_ d: Int) -> Int64 { 1_000_000 + 37_000 * Int64(d % 7) }
        func rows(_ cells: [(String, String, (Int) -> Decimal)]) -> InvoiceFile {
            S.costReport(
                (1...31).flatMap { d in
                    cells.map { model, type, price in
                        TestSupport.Row(day: d, model: model, tokenType: type, cents: Self.cents(Decimal(volume(d)) * price(d) / 1_000_000))
                    }
                })
        }
        for (invoice, metered) in [
            (
                rows([
                    ("claude-sonnet-4-5", "uncached_input_tokens", { $0 < 16 ? 3 : Decimal(string: "3.3")! }),
                    ("claude-sonnet-4-5", "output_tokens", { $0 < 16 ? 15 : Decimal(string: "15.75")! }),
                ]), [("claude-sonnet-4-5", "input"), ("claude-sonnet-4-5", "output")]
            ),
            (
                rows([
                    ("claude-sonnet-4-5", "uncached_input_tokens", { $0 < 16 ? 3 : Decimal(string: "3.3")! }),
                    ("claude-haiku-4-5", "uncached_input_tokens", { $0 < 20 ? 1 : Decimal(string: "1.2")! }),
                ]), [("claude-sonnet-4-5", "input"), ("claude-haiku-4-5", "input")]
            ),
        ] {
            // Metered exactly as billed: every gap is the step.
            let store = try S.store()
            for (model, type) in metered { _ = try await store.ingest(try await daily(model, type, volume)) }
            let r = try await run(store, invoice)
            #expect(r.priceSteps.count == 2 && r.corrections.isEmpty, "\(r.priceSteps) \(r.findings)")
            let (_, again) = try await rerunOnProposedCard(r, invoice, store)
            #expect(closed(again), "\(described(again))")
        }
    }

    /// Every price 10 % up from May 16, and Sonnet's collector down May 10–12: days billed with
    /// nothing metered were skipped, so Sonnet read as the step alone and its 3,000,000 lost
    /// tokens were "the price change". Its gap mixes the two: held, as among other changes.
    @Test func anOutageInsideAPriceStepIsNotThePriceStep() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { (10...12).contains($0) ? 0 : 1_000_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-opus-4-8", "input") { _ in 1_000_000 })
        let rows: [TestSupport.Row] = (1...31).flatMap { d in
            [
                .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: d < 16 ? "300" : "330"),
                .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: d < 16 ? "100" : "110"),
                .init(day: d, model: "claude-opus-4-8", tokenType: "uncached_input_tokens", cents: d < 16 ? "500" : "550"),
            ]
        }
        let r = try await run(store, S.costReport(rows))
        #expect(r.priceSteps.map(\.date) == ["2026-05-16"], "\(r.priceSteps)")
        let sonnet = try #require(r.findings.first { $0.modelID == "claude-sonnet-4-5" })
        #expect(sonnet.gapClass == .unexplained && sonnet.reason == "vendor_price_changed_on_2026-05-16_among_other_changes", "\(sonnet)")
        let haiku = try #require(r.findings.first { $0.modelID == "claude-haiku-4-5" })
        #expect(haiku.gapClass == .pricingGap && haiku.reason == "vendor_price_changed_on_2026-05-16", "\(haiku)")
        #expect(r.corrections.isEmpty && r.held.isEmpty)
    }

    /// Half a month's export: every model reads short by the days it lacks, and the run listed a
    /// uniform gap and a price factor around each cell, each sending the reader to the card's
    /// prices (tester Z). Held as before, and each says the uncovered days may be all of it.
    @Test func aGapOverUncoveredDaysIsNotSentToTheCard() async throws {
        let store = try S.store()
        for model in ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-8"] {
            _ = try await store.ingest(try await daily(model, "input") { _ in 1_000_000 })
        }
        var rows: [TestSupport.Row] = []
        for d in 1...15 {
            for (model, dollars) in [("claude-sonnet-4-5", Decimal(3)), ("claude-haiku-4-5", 1), ("claude-opus-4-8", 5)] {
                rows.append(.init(day: d, model: model, tokenType: "uncached_input_tokens", cents: Self.cents(dollars)))
            }
        }
        let r = try await run(store, S.costReport(rows, days: Array(1...15), hasMore: true))
        #expect(
            r.verdict == .inconclusive && r.corrections.isEmpty && r.reasons.contains { $0.code == "coverage_gap" },
            "\(r.verdict) \(r.reasons.map { "\($0.code): \($0.detail)" })")
        let priced = r.reasons.filter { ["uniform_gap", "price_factor_around_cell"].contains($0.code) }
        #expect(!priced.isEmpty, "\(r.reasons.map(\.code))")
        #expect(
            priced.allSatisfy { $0.detail.contains("16 day(s) the invoice does not cover") && $0.remedy?.contains("coverage_gap") == true },
            "\(priced.map(\.detail))")
    }

    /// A cost report whose rows carry no list price on May 1–9 only, 20 % off: every model's input
    /// reads 5.8 % short, and Sonnet's, whose collector also lost May 10–12, reads +1,200,000 of
    /// its 3,000,000 lost. The factor on the other models is in Sonnet's gap too, so it is held
    /// (`uniform_gap` of input), not corrected at a figure the discount shrank.
    @Test func aFactorOnTheOtherModelsHoldsAModelWhoseLossOutweighsIt() async throws {
        let store = try S.store()
        for model in ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-8"] {
            _ = try await store.ingest(try await daily(model, "input") { d in model == "claude-sonnet-4-5" && (10...12).contains(d) ? 0 : 1_000_000 })
        }
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            for (model, dollars) in [("claude-sonnet-4-5", Decimal(3)), ("claude-haiku-4-5", 1), ("claude-opus-4-8", 5)] {
                rows.append(
                    .init(
                        day: d, model: model, tokenType: "uncached_input_tokens", cents: Self.cents(d < 10 ? dollars * Decimal(string: "0.8")! : dollars),
                        atList: d >= 10))
            }
        }
        let r = try await run(store, S.costReport(rows))
        let sonnet = try #require(r.findings.first { $0.modelID == "claude-sonnet-4-5" })
        #expect(sonnet.quantity == 1_200_000, "\(r.findings)")
        let uniform = try #require(r.reasons.first { $0.code == "uniform_gap" }, "\(r.reasons.map(\.code))")
        #expect(uniform.detail.contains("2 of the 3 models"), "\(uniform.detail)")
        let net = try #require(r.reasons.first { $0.code == "amounts_may_be_net" }, "\(r.reasons.map(\.code))")
        #expect(net.detail.contains("27 of its 93 usage rows state no list_amount"), "it said the report states none: \(net.detail)")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections)")
    }

    /// Sonnet's input and output 10 % dearer from May 20, Haiku's input steady, on a meter of
    /// `input(day)` Sonnet input tokens a day (100,000 output, 1M Haiku input): the store, and the
    /// cost report's rows.
    func sonnetDearerFromMay20(input: (Int) -> Int64) async throws -> (SQLiteMeterStore, [TestSupport.Row]) {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input", input))
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "output") { _ in 100_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            let up: Decimal = d >= 20 ? Decimal(string: "1.1")! : 1
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(3 * up)))
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: Self.cents(Decimal(string: "1.5")! * up)))
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100"))
        }
        return (store, rows)
    }

    /// Sonnet's input and output both 10 % dearer from May 20, Haiku steady: a price change of
    /// one model the card lacks, or the meter losing a tenth of Sonnet's requests from that day.
    /// Held either way (it was corrected as 1.2M tokens of usage); one token type stepping alone
    /// stays a metering gap (above). The step is listed as one model's, so once the vendor's price
    /// list confirms it `ratecards propose` writes the card that closes the gap (it could not).
    @Test func oneModelsTokenTypesSteppingTogetherAreHeld() async throws {
        let (store, rows) = try await sonnetDearerFromMay20 { _ in 1_000_000 }
        let r = try await run(store, S.costReport(rows))
        let step = try #require(r.priceSteps.first, "one model's step is listed")
        #expect(r.priceSteps.count == 1 && step.date == "2026-05-20" && step.kind == .oneModel)
        #expect(
            step.rates.map { "\($0.modelID) \($0.tokenType?.rawValue ?? "") \($0.beforePerMillion)→\($0.afterPerMillion)" }
                == ["claude-sonnet-4-5 input 3.000000→3.300000", "claude-sonnet-4-5 output 15.000000→16.500000"])
        let sonnet = r.findings.filter { $0.modelID == "claude-sonnet-4-5" }
        #expect(
            sonnet.count == 2 && sonnet.allSatisfy { $0.gapClass == .unexplained && $0.reason == "implied_price_of_claude-sonnet-4-5_changed_on_2026-05-20" },
            "\(sonnet.map { "\($0.tokenType?.rawValue ?? "") \($0.gapClass) \($0.reason)" })")
        #expect(r.corrections.isEmpty && r.held.isEmpty)

        // The proposed card names the doubt, loads, and closes the gap when used.
        let (proposed, again) = try await rerunOnProposedCard(r, S.costReport(rows), store)
        #expect(proposed.contains("one model only: confirm with the vendor's price list"))
        #expect(closed(again), "\(described(again))")

        // A report recorded before steps had a kind reads as several models' step.
        let old = try ReconciliationJSON.decode(ReconciliationReport.PriceStep.self, from: #"{"date":"2026-05-20","rates":[]}"#)
        #expect(old.kind == .severalModels)
    }

    /// The same rise, with Sonnet input's meter also losing a fifth of its tokens from May 25:
    /// output's price steps alone (input's moves again after the step), and both were corrected as
    /// usage (tester Z). Input moved with output's step before its loss: the model's step, held on
    /// both, input as a step among other changes.
    @Test func aStepOnOneTokenTypeIsTheModelsWhenAnotherMovedWithItBeforeALoss() async throws {
        let (store, rows) = try await sonnetDearerFromMay20 { d in d >= 25 ? 800_000 : 1_000_000 }
        let r = try await run(store, S.costReport(rows))
        let reasons = Dictionary(
            uniqueKeysWithValues: r.findings.filter { $0.modelID == "claude-sonnet-4-5" }.map { ($0.tokenType?.rawValue ?? "", ($0.gapClass, $0.reason)) })
        #expect(reasons["output"]?.0 == .unexplained && reasons["output"]?.1 == "implied_price_of_claude-sonnet-4-5_changed_on_2026-05-20", "\(reasons)")
        #expect(
            reasons["input"]?.0 == .unexplained && reasons["input"]?.1 == "implied_price_of_claude-sonnet-4-5_changed_on_2026-05-20_among_other_changes",
            "\(reasons)")
        // Both prices are in the step, so a card proposed from it moves both (with output's alone,
        // input's rise was corrected as usage on the next run: review Z3).
        #expect(
            r.priceSteps.flatMap(\.rates).map { "\($0.tokenType?.rawValue ?? "") \($0.beforePerMillion)→\($0.afterPerMillion)" }
                == ["input 3.000000→3.300000", "output 15.000000→16.500000"], "\(r.priceSteps)")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections)")
    }

    /// Sonnet 10 % dearer on input and output from `from` (May 1: a card stale all month), the
    /// meter right for the month but moving a few thousand tokens across midnight each day (which
    /// hides a day-by-day step): every gapped token type of one model off by one share is held
    /// (it was corrected as 2M + 200,000 tokens of usage). A retried agent loop adding input and
    /// output in other shares is still corrected.
    @Test(arguments: [1, 12])
    func oneModelOffByOneShareOnEveryTokenTypeIsHeldThroughJitter(from: Int) async throws {
        let store = try S.store()
        func jitter(_ d: Int) -> Int64 { d == 0 || d == 31 ? 0 : Int64(d % 3) * 1000 }
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { 1_000_000 + jitter($0) - jitter($0 - 1) })
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "output") { 100_000 + jitter($0) - jitter($0 - 1) })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        func report(_ input: (Int) -> Decimal, _ output: (Int) -> Decimal) -> InvoiceFile {
            S.costReport(
                (1...31).flatMap { d -> [TestSupport.Row] in
                    [
                        .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(3 * input(d))),
                        .init(day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: Self.cents(Decimal(string: "1.5")! * output(d))),
                        .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100"),
                    ]
                })
        }
        let up = { (d: Int) -> Decimal in d >= from ? Decimal(string: "1.1")! : 1 }
        let r = try await run(store, report(up, up))
        let sonnet = r.findings.filter { $0.modelID == "claude-sonnet-4-5" && $0.gapClass != .withinTolerance }
        #expect(sonnet.count == 2 && sonnet.allSatisfy { $0.gapClass == .unexplained }, "\(sonnet.map { "\($0.quantity) \($0.gapClass) \($0.reason)" })")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        // The retried loop: input 10 % more, output 7 % more, from the same day.
        let loop = try await run(store, report(up, { d in d >= from ? Decimal(string: "1.07")! : 1 }))
        #expect(loop.corrections.count == 2, "\(loop.findings.map { "\($0.tokenType?.rawValue ?? "") \($0.gapClass) \($0.reason)" })")
    }

    /// Sonnet 10 % dearer all month on input and output (one model's factor), and its cache reads,
    /// never metered, billed too: under a team's rule billing every gap, the cache reads' whole
    /// volume read from money (10 % of it the factor) was held for review, and
    /// `--confirm-large` would have posted it (tester Z2). The factor is in that cell too: blocked.
    /// The same from May 20 (one model's price step, not a month-long factor: review Z3).
    @Test(arguments: [1, 20])
    func aCellOfAModelOffByOneFactorHoldsTheFactor(from: Int) async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "output") { _ in 100_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        let rows = (1...31).flatMap { d -> [TestSupport.Row] in
            [
                .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: d >= from ? "330" : "300"),
                .init(day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: d >= from ? "165" : "150"),
                .init(day: d, model: "claude-sonnet-4-5", tokenType: "cache_read_input_tokens", cents: d >= from ? "33" : "30"),
                .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100"),
            ]
        }
        var options = ReconciliationOptions(vendor: "anthropic", invoices: [S.costReport(rows)], range: S.may, account: "acct_42")
        options.teamRules = try ClassificationRules.load(
            text: "version: 1\nrules:\n  - id: every-gap\n    class: metering_gap\n    reason: billed\n", file: "every-gap.yaml")
        let r = try await service.engine.run(options, store: store)
        let cache = try #require(r.findings.first { $0.tokenType == .cacheRead }, "\(r.findings)")
        #expect(cache.blockedBy.contains("price_factor_around_cell"), "\(cache.gapClass) \(cache.reason) \(cache.blockedBy)")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity)) \(r.held.map(\.correction.quantity))")
    }

    /// The same share of input and output lost, but only on some days — Sonnet's collector down
    /// May 10–12, or a fifth of its requests lost May 5–25 — is the meter's: corrected (a month-
    /// level share alone held both as a possible price change).
    @Test(arguments: [(10...12, Decimal(0)), (5...25, Decimal(string: "0.8")!)])
    func aLossConfinedToSomeDaysIsCorrectedThoughEveryTokenTypeSharesIt(days: ClosedRange<Int>, kept: Decimal) async throws {
        let store = try S.store()
        func metered(_ base: Int64) -> (Int) -> Int64 {
            { d in days.contains(d) ? ExactDecimal.roundedInt64(Decimal(exactly: base) * kept)! : base }
        }
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input", metered(1_000_000)))
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "output", metered(100_000)))
        let rows = (1...31).flatMap { d -> [TestSupport.Row] in
            [
                .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300"),
                .init(day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: "150"),
            ]
        }
        let r = try await run(store, S.costReport(rows))
        let lost = Int64(days.count) * ExactDecimal.roundedInt64((1 - kept) * 1_000_000)!
        #expect(
            r.corrections.map(\.quantity).sorted() == [lost / 10, lost],
            "\(r.findings.map { "\($0.tokenType?.rawValue ?? "") \($0.quantity) \($0.gapClass) \($0.reason)" })")
    }

    @Test func aPriceStepAcrossModelsIsAPricingGapHoweverTheTrafficIsSpread() async throws {
        let store = try S.store()
        // Uneven traffic: Sonnet heavy early, Haiku only on even days.
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { $0 <= 10 ? 2_000_000 : 500_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { $0 % 2 == 0 ? 1_000_000 : 0 })
        // Both models 10% dearer from May 20.
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            let up: Decimal = d >= 20 ? Decimal(string: "1.1")! : 1
            let volume: Decimal = d <= 10 ? 2 : Decimal(string: "0.5")!
            let sonnet = volume * 3 * up
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(sonnet)))
            if d % 2 == 0 { rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(up))) }
        }
        let r = try await run(store, S.costReport(rows))
        #expect(r.shape == .localized, "month-level percentages differ per model: the shape test alone would call it localized")
        let step = try #require(r.priceSteps.first)
        #expect(r.priceSteps.count == 1 && step.date == "2026-05-20")
        #expect(
            step.rates.map { "\($0.modelID) \($0.beforePerMillion)→\($0.afterPerMillion)" }
                == ["claude-haiku-4-5 1.000000→1.100000", "claude-sonnet-4-5 3.000000→3.300000"])
        #expect(r.findings.allSatisfy { $0.gapClass == .pricingGap && $0.rule == "price-step" && $0.reason == "vendor_price_changed_on_2026-05-20" })
        #expect(r.corrections.isEmpty && r.held.isEmpty, "no metering correction for a price change")

        // The proposed card loads, and re-running with it closes the gap.
        let proposed = try service.cards["anthropic"]!.proposing(r)
        let card = try RateCard.load(text: proposed, file: "proposed.yaml")
        #expect(card.version == "2026-11-30.1+2026-05-20" && proposed.contains("proposed from reconciliation \(r.id)"))
        var o = ReconciliationOptions(vendor: "anthropic", invoices: [S.costReport(rows)], range: S.may, account: "acct_42")
        o.rateCard = card
        let again = try await service.engine.run(o, store: store)
        #expect(
            again.priceSteps.isEmpty && again.total.gap == 0 && again.findings.allSatisfy { $0.gapClass == .withinTolerance },
            "\(again.findings.map { "\($0.modelID) \($0.quantity) \($0.gapClass)" })")
    }

    /// Every model 10 % dearer from May 20, and Sonnet output's collector also missing 100,000 a
    /// day from May 25: that cell's implied price moves twice, so it is not a clean step, and
    /// its gap is partly the price change: held, not corrected as a metering gap.
    @Test func aGapMixedWithAPriceStepIsHeld() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "output") { _ in 1_000_000 })
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            let up: Decimal = d >= 20 ? Decimal(string: "1.1")! : 1
            let outputVolume: Decimal = d >= 25 ? Decimal(string: "1.1")! : 1
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(3 * up)))
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(up)))
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: Self.cents(15 * up * outputVolume)))
        }
        let r = try await run(store, S.costReport(rows))
        #expect(r.priceSteps.map(\.date) == ["2026-05-20"] && r.priceSteps.first?.rates.count == 2)
        let mixed = try #require(r.findings.first { $0.tokenType == .output })
        #expect(mixed.gapClass == .unexplained && mixed.reason == "vendor_price_changed_on_2026-05-20_among_other_changes", "\(mixed)")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "the price change's share would have been booked as usage")
    }

    /// The same step on other models does not hold a real metering gap whose daily share varies
    /// (its implied price moves every day, the step's day among them).
    @Test func aVaryingMeteringGapBesideAPriceStepIsStillCorrected() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "output") { _ in 1_000_000 })
        func missed(_ d: Int) -> Int64 { d >= 17 ? 50_000 + Int64(d) * 10_000 : 0 }
        var rows: [TestSupport.Row] = []
        for d in 1...31 {
            let up: Decimal = d >= 20 ? Decimal(string: "1.1")! : 1
            let input = Decimal(exactly: 1_000_000 + missed(d))! * 3 / 1_000_000
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(input)))
            rows.append(.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(up)))
            rows.append(.init(day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: Self.cents(15 * up)))
        }
        let r = try await run(store, S.costReport(rows))
        #expect(r.priceSteps.map(\.date) == ["2026-05-20"])
        let gap = try #require(r.findings.first { $0.tokenType == .input && $0.modelID == "claude-sonnet-4-5" })
        #expect(gap.gapClass == .meteringGap && gap.gapSince == "2026-05-17", "\(gap)")
        #expect(r.corrections.map(\.quantity) == [(17...31).map(missed).reduce(0, +)])
    }

    /// A collector losing 2,000,000 tokens a day from May 8 beside a 5 % rise from May 10 leaves
    /// 2,000,000 + 5 % of the day off on the rise's days: neither one share nor one number a day,
    /// the whole gap was corrected as usage (+39.1M for a true 26M, tester X2). Read net of the
    /// steady number the first two days give, the rest is one share: held, with no card row and
    /// no dates. Losses with no price are still the meter's to the token: the loss alone, one
    /// that steps from 2,000,000 to 3,000,000 a day (a second collector failing), one in two
    /// windows, one that fell under carries, one in two windows on cent-rounded money.
    @Test func aRiseBesideASteadyLossIsHeldASteppingLossCorrected() async throws {
        func volume(_ d: Int) -> Int64 {
            let week: Int64 = 900_000 * Int64(d % 7), third: Int64 = 130_000 * Int64(d % 3)
            return 20_000_000 + week + third
        }
        func lost(_ d: Int, step: Int64) -> Int64 { d < 8 ? 0 : d < 10 ? 2_000_000 : 2_000_000 + step }
        func bill(rise: Decimal) -> InvoiceFile {
            Self.oneCell("claude-sonnet-4-5", "uncached_input_tokens", days: 1...31) { d in
                Decimal(volume(d)) * 3 * (d >= 10 ? rise : 1) / 1_000_000
            }
        }
        let steady = try S.store()
        _ = try await steady.ingest(try await daily("claude-sonnet-4-5", "input") { volume($0) - lost($0, step: 0) })
        let both = try await run(steady, bill(rise: Decimal(string: "1.05")!))
        let reasons = both.findings.map(\.reason)
        #expect(both.corrections.isEmpty && both.priceSteps.isEmpty, "\(described(both))")
        #expect(reasons == ["same_share_beside_a_steady_loss"], "\(reasons)")
        let alone = try await run(steady, bill(rise: 1))
        #expect(alone.corrections.map(\.quantity) == [Int64(2_000_000 * 24)], "\(described(alone))")
        let stepping = try S.store()
        _ = try await stepping.ingest(try await daily("claude-sonnet-4-5", "input") { volume($0) - lost($0, step: 1_000_000) })
        let worse = try await run(stepping, bill(rise: 1))
        let lostInAll: Int64 = 2_000_000 * 24 + 1_000_000 * 22
        #expect(worse.corrections.map(\.quantity) == [lostInAll], "\(described(worse)) \(worse.findings.map(\.reason))")
        // One loss in two windows (60,000 a day May 3–9 and May 18–31) on a volume varying 3 %.
        func small(_ d: Int) -> Int64 { 1_000_000 + 5_000 * Int64(d % 7) }
        func windows(_ d: Int) -> Int64 { (3...9).contains(d) || d >= 18 ? 60_000 : 0 }
        let twice = try S.store()
        _ = try await twice.ingest(try await daily("claude-sonnet-4-5", "input") { small($0) - windows($0) })
        let both2 = try await run(
            twice, Self.oneCell("claude-sonnet-4-5", "uncached_input_tokens", days: 1...31) { Decimal(small($0)) * 3 / 1_000_000 })
        #expect(both2.corrections.map(\.quantity) == [Int64(60_000 * 21)], "\(described(both2)) \(both2.findings.map(\.reason))")
        // A loss that fell from 2,000,000 a day (May 7–21) to 1,200,000 (May 22–31) on a volume
        // varying 2 % with 2 % carried past midnight: its last days, less the first two's number,
        // read a share the other way (−4 %), held until the share had to go the loss's way
        // (review AB). The days as a generated month gave them, meter and bill.
        let meter: [Int64] = [
            19_713_109, 20_181_038, 20_442_390, 19_986_348, 20_152_581, 20_249_293, 18_281_776, 18_409_196, 17_694_435, 18_181_292,
            18_626_562, 17_737_642, 18_418_609, 18_367_723, 17_977_273, 18_216_906, 17_835_935, 18_323_407, 18_124_944, 18_181_395,
            18_162_365, 18_631_397, 19_255_984, 19_006_648, 19_117_798, 18_769_164, 19_212_196, 19_024_059, 18_678_510, 18_949_652,
            19_272_971,
        ]
        let billed: [Int64] = [
            20_019_186, 20_253_025, 20_290_789, 20_074_868, 20_009_995, 20_334_755, 20_366_360, 20_107_773, 20_011_436, 20_171_713,
            20_309_348, 20_038_359, 20_165_746, 20_353_070, 20_207_143, 20_020_827, 20_062_429, 20_020_348, 20_335_492, 20_108_638,
            20_094_486, 20_016_649, 20_359_897, 20_297_110, 20_263_681, 20_090_394, 20_332_558, 20_112_489, 20_053_441, 20_112_614,
            20_187_979,
        ]
        let fell = try S.store()
        _ = try await fell.ingest(try await daily("claude-sonnet-4-5", "input") { meter[$0 - 1] })
        let lower = try await run(
            fell, Self.oneCell("claude-sonnet-4-5", "uncached_input_tokens", days: 1...31) { Decimal(billed[$0 - 1]) * 3 / 1_000_000 })
        #expect(lower.corrections.map(\.quantity) == [Int64(42_000_000)], "\(described(lower)) \(lower.findings.map(\.reason))")
        // One loss in two windows (80,000 a day May 3–9, 40,000 May 15–24) on cent-rounded money
        // of about 62 cents a day: a cent is 1.6 % of a day, so the second window less the
        // first's number fits a share of 4 % or so by rounding alone, and was held (a run of
        // generated months). Money that cannot read the share to a fifth of it reads nothing:
        // corrected, as before. The days as that month gave them (a fifth of its volume at
        // Sonnet's $3 is its gpt-4o-mini output's money at $0.60).
        let coarseMeter: [Int64] = [
            999_903, 1_032_308, 964_796, 967_166, 913_633, 946_804, 965_916, 956_231, 960_630, 1_007_076, 1_035_833, 1_017_738,
            1_022_828, 1_037_385, 963_700, 978_844, 977_878, 996_112, 984_278, 976_889, 1_009_875, 999_937, 992_213, 992_055,
            1_017_720, 1_021_341, 1_002_369, 1_037_939, 1_004_449, 1_039_971, 1_031_506,
        ]
        let coarseCents: [Decimal] = [
            60, 62, 63, 63, 60, 61, 63, 62, 62, 61, 62, 61, 61, 63, 60, 61, 61, 62, 61, 61, 63, 63, 62, 62, 61, 61, 60, 63, 60, 62, 62,
        ]
        let coarse = try S.store()
        _ = try await coarse.ingest(try await daily("claude-sonnet-4-5", "input") { coarseMeter[$0 - 1] / 5 })
        let cents = try await run(
            coarse, Self.oneCell("claude-sonnet-4-5", "uncached_input_tokens", days: 1...31) { coarseCents[$0 - 1] / 100 })
        #expect(cents.corrections.map(\.quantity) == [Int64(192_281)], "\(described(cents)) \(cents.findings.map(\.reason))")
    }

    @Test func aGapThatIsTheLastHourOfThePeriodIsABoundary() async throws {
        let store = try S.store()
        _ = try await store.ingest([Self.haikuInput("a", "2026-05-10T12:00:00Z", 1_000_000), Self.haikuInput("b", "2026-05-31T23:30:00Z", 200_000)])
        // The vendor's clock put the 23:30 request on June 1.
        let r = try await run(store, S.costReport([.init(day: 10, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100")]))
        let f = try #require(r.findings.first)
        #expect(f.quantity == -200_000 && f.gapClass == .boundary && f.reason == "usage_in_last_1h_of_period" && f.rule == "period-boundary")
        #expect(r.corrections.isEmpty && r.held.isEmpty)
    }

    /// A gap smaller (or larger) than the usage at a bound is no boundary: comparing the two must
    /// not trap (it did, and took the server down, for any small gap near a bound).
    @Test func aGapSmallerThanTheUsageAtABoundIsNoBoundaryAndNoCrash() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            Self.haikuInput("a", "2026-05-01T00:30:00Z", 5_000_000), Self.haikuInput("b", "2026-05-10T12:00:00Z", 1_000_000),
            Self.haikuInput("c", "2026-05-31T23:30:00Z", 5_000_000),
            Self.haikuInput("d", "2026-04-30T23:30:00Z", 5_000_000), Self.haikuInput("e", "2026-06-01T00:30:00Z", 5_000_000),
        ])
        // 11M metered in May; the vendor billed 50,000 fewer, then 50,000 more.
        for (cents, gap) in [("1095", Int64(-50_000)), ("1105", 50_000)] {
            let r = try await run(store, S.costReport([.init(day: 10, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: cents)]))
            let f = try #require(r.findings.first)
            #expect(f.quantity == gap && f.gapClass != .boundary, "\(f)")
        }
    }

    /// A meter stamping part of each day's traffic at 00:00:30 the next day, reconciled from May 8
    /// to May 15: the window's gap is what May 14 carried out less what May 7 carried in, and was
    /// corrected on cells that lost nothing (+277,042 on Haiku input, −158,904 on Bedrock: tester
    /// X2). It is a boundary either way, also where it equals an inner day's gap by chance (May 10's
    /// here, or May 11's), and whatever else the hour after the window holds (a nightly job at
    /// 00:20). Losses are still corrected: on every day; on one inner day below that nightly hour
    /// (the hour alone bounded the carries, and hid a loss of 19 % of a day: review Z); and a small
    /// loss on the window's last days on a meter without carries. A day lost beside a day counted
    /// twice is no boundary but the net correction, with carries (review AA) or without (no sign
    /// of carries, in a week or in four inner days).
    @Test(arguments: [(Int64(38_000), Int64(20_000)), (9_000, 34_000)])
    func aWindowsGapThatIsMidnightCarriesAtItsBoundsIsABoundary(carriedOutOfMay14: Int64, carriedIntoMay8: Int64) async throws {
        let atTheBounds = carriedOutOfMay14 - carriedIntoMay8
        func volume(_ d: Int) -> Int64 { 2_000_000 + 150_000 * Int64(d % 5) + 1_234 }
        func carry(_ d: Int) -> Int64 { d == 14 ? carriedOutOfMay14 : d == 7 ? carriedIntoMay8 : [30_000, 5_000, 22_000, 47_000, 12_000][d % 5] }
        func day(_ d: Int) -> String { "2026-05-\(d < 10 ? "0" : "")\(d)" }
        func metered(lost: (Int) -> Int64, carried: (Int) -> Int64, at time: String) -> [IngestItem] {
            (1...30).flatMap { d in
                [Self.haikuInput("\(d)", "\(day(d))T\(time)Z", volume(d) - lost(d) - carried(d))]
                    + (carried(d) > 0 ? [Self.haikuInput("\(d)-carried", "\(day(d + 1))T00:00:30Z", carried(d))] : [])
            }
        }
        func reconcile(_ events: [IngestItem], days: ClosedRange<Int> = 8...14) async throws -> ReconciliationReport {
            let store = try S.store()
            _ = try await store.ingest(events)
            let bill = S.costReport(
                days.map {
                    .init(day: $0, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(Decimal(volume($0)) / 1_000_000))
                },
                days: Array(days))
            let range = try TimeRange(
                from: Timestamp(rfc3339: "\(day(days.lowerBound))T00:00:00Z")!, to: Timestamp(rfc3339: "\(day(days.upperBound + 1))T00:00:00Z")!)
            return try await service.engine.run(ReconciliationOptions(vendor: "anthropic", invoices: [bill], range: range, account: "acct_42"), store: store)
        }
        for time in ["12:00:00", "00:20:00"] {
            let clean = try await reconcile(metered(lost: { _ in 0 }, carried: carry, at: time))
            let edge = try #require(clean.findings.first)
            #expect(edge.quantity == atTheBounds, "\(described(clean))")
            #expect(
                edge.gapClass == .boundary && edge.reason == "carried_across_midnight_at_the_bounds", "\(time) \(edge.gapClass) \(edge.rule) \(edge.reason)")
            #expect(clean.corrections.isEmpty && clean.held.isEmpty)
        }
        let lossy = try await reconcile(metered(lost: { $0 >= 9 ? 300_000 : 0 }, carried: carry, at: "12:00:00"))
        #expect(lossy.corrections.map(\.quantity) == [6 * 300_000 + atTheBounds], "\(described(lossy)) \(lossy.findings.map(\.reason))")
        let oneDay = try await reconcile(metered(lost: { $0 == 11 ? 150_000 : 0 }, carried: carry, at: "00:20:00"))
        #expect(oneDay.corrections.map(\.quantity) == [150_000 + atTheBounds], "\(described(oneDay)) \(oneDay.findings.map(\.reason))")
        func lostAndTwice(_ d: Int) -> Int64 { [10: 800_000, 12: -500_000][d] ?? 0 }
        for (r, net) in [
            (try await reconcile(metered(lost: lostAndTwice, carried: { _ in 0 }, at: "00:20:00")), Int64(300_000)),
            (try await reconcile(metered(lost: lostAndTwice, carried: { _ in 0 }, at: "00:20:00"), days: 9...14), 300_000),
            (try await reconcile(metered(lost: lostAndTwice, carried: carry, at: "00:20:00")), 300_000 + atTheBounds),
        ] {
            #expect(r.corrections.map(\.quantity) == [net], "\(described(r)) \(r.findings.map(\.reason))")
        }
        let uncarried = try await reconcile(metered(lost: { $0 >= 12 ? 20_000 : 0 }, carried: { _ in 0 }, at: "00:30:00"))
        #expect(uncarried.corrections.map(\.quantity) == [60_000], "\(described(uncarried))")
    }

    /// An export pulled before the vendor's last day landed (its May 31 bucket empty, or 40 % full)
    /// looks like over-metering on that day only: held for review, not proposed. The same gap
    /// spread over the month, or starting earlier, is proposed as before.
    @Test func aGapOnlyOnThePeriodsLastDayIsHeld() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "output") { _ in 100_000 })
        for lastDay in ["0", "40"] {
            let r = try await run(
                store,
                S.costReport(
                    (1...31).flatMap { d -> [TestSupport.Row] in
                        [
                            .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: d == 31 ? lastDay : "100"),
                            .init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: d == 31 ? (lastDay == "0" ? "0" : "20") : "50"),
                        ]
                    }))
            #expect(r.corrections.isEmpty, "last day \(lastDay)%: \(r.corrections.map(\.quantity))")
            #expect(r.held.count == 2 && r.held.allSatisfy { $0.reason == "last_day_unlike_the_rest" && $0.detail.contains("last day") }, "\(r.held)")
        }
        // A six-day period (May 26–31) with the same half-landed last day: the hold needed a week
        // and −500,000 was proposed. Held.
        let short = try await service.engine.run(
            ReconciliationOptions(
                vendor: "anthropic",
                invoices: [
                    S.costReport(
                        (26...31).flatMap { d -> [TestSupport.Row] in
                            [
                                .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: d == 31 ? "50" : "100"),
                                .init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: "50"),
                            ]
                        })
                ],
                range: try TimeRange(from: Timestamp(rfc3339: "2026-05-26T00:00:00Z")!, to: Timestamp(rfc3339: "2026-06-01T00:00:00Z")!),
                account: "acct_42"), store: store)
        #expect(
            short.corrections.isEmpty && short.held.map { "\($0.reason) \($0.correction.quantity)" } == ["last_day_unlike_the_rest -500000"],
            "\(short.corrections.map(\.quantity)) \(short.held.map(\.reason))")
        // Over-metering from May 30 or 29 on is held too (a lag over a weekend: three days were
        // corrected); from May 28 on it is proposed.
        for (from, held) in [(30, true), (29, true), (28, false)] {
            let r = try await run(
                store,
                S.costReport(
                    (1...31).flatMap { d -> [TestSupport.Row] in
                        [
                            .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: d >= from ? "90" : "100"),
                            .init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: "50"),
                        ]
                    }))
            #expect(r.held.isEmpty != held && r.corrections.isEmpty == held, "from May \(from)")
        }
        // A real gap from May 17 (100,000 a day the collector missed) with the last day not landed:
        // the net (+1.4M − 600,000) is no correction to post. The real gap alone is proposed.
        for lastDay in ["40", "110"] {
            let r = try await run(
                store,
                S.costReport(
                    (1...31).flatMap { d -> [TestSupport.Row] in
                        [
                            .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: d == 31 ? lastDay : d >= 17 ? "110" : "100"),
                            .init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: "50"),
                        ]
                    }))
            let landed = lastDay == "110"
            #expect(r.corrections.map(\.quantity) == (landed ? [1_500_000] : []), "last day \(lastDay)")
            #expect(r.held.map(\.correction.quantity) == (landed ? [] : [800_000]) && r.held.allSatisfy { $0.reason == "last_day_unlike_the_rest" })
        }
    }

    /// Sonnet input billed 10 % above its card from May 27 (a price), Haiku input short of the
    /// bill by 1,000,000 a day on May 10–12 (a real loss): about the same share of the month each,
    /// so both were held as one factor (`uniform_gap`), the loss called a pricing gap with no path
    /// to a card (tester T2 M3). Days that never meet are two things: the loss is corrected to
    /// the token and the rise held as one token type's price.
    @Test func aRiseAndALossOnDaysApartAreNoOneFactor() async throws {
        func sonnet(_ d: Int) -> Int64 { 10_000_000 + 370_000 * Int64(d % 7) }
        func haiku(_ d: Int) -> Int64 { 6_000_000 + 200_000 * Int64(d % 5) }
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input", sonnet))
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { haiku($0) - ((10...12).contains($0) ? 1_000_000 : 0) })
        let r = try await run(
            store,
            S.costReport(
                (1...31).flatMap { d -> [TestSupport.Row] in
                    [
                        .init(
                            day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens",
                            cents: Self.cents(Decimal(sonnet(d)) * (d >= 27 ? Decimal(string: "3.3")! : 3) / 1_000_000)),
                        .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(Decimal(haiku(d)) / 1_000_000)),
                    ]
                }))
        #expect(!r.reasons.contains { $0.code == "uniform_gap" }, "\(r.reasons.map(\.code))")
        #expect(r.corrections.map { "\($0.modelID ?? "") \($0.quantity)" } == ["claude-haiku-4-5 3000000"], "\(described(r))")
        #expect(r.findings.first { $0.modelID == "claude-sonnet-4-5" }?.rule == "one-cell-factor" && r.held.isEmpty, "\(described(r))")
        // Every line 10 % above the card, Haiku used in the month's first half only and Sonnet in
        // its second: their traffic never meets, so nothing tells two things from one factor (the
        // first reading corrected +30,000,000-odd as usage: tester U). Held as one.
        let halves = try S.store()
        _ = try await halves.ingest(try await daily("claude-sonnet-4-5", "input") { $0 > 15 ? sonnet($0) : 0 })
        _ = try await halves.ingest(try await daily("claude-haiku-4-5", "input") { $0 <= 15 ? haiku($0) : 0 })
        let markup = try await run(
            halves,
            S.costReport(
                (1...31).map { d in
                    d > 15
                        ? .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(Decimal(sonnet(d)) * 33 / 10_000_000))
                        : .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(Decimal(haiku(d)) * 11 / 10_000_000))
                }))
        #expect(markup.corrections.isEmpty && markup.reasons.contains { $0.code == "uniform_gap" }, "\(described(markup)) \(markup.reasons.map(\.code))")
    }

    /// An export pulled early: May 31 billed at 75 % on every model, the meter exact. It read as a
    /// price step of every model on May 31 (a 25 % cut), and `ratecards propose` wrote that card
    /// (tester U). No step from the last day alone; held, the remedy to pull the export again.
    @Test func everyModelShortOnTheLastDayAloneIsNoPriceCut() async throws {
        func volume(_ d: Int) -> Int64 { 1_000_000 + 37_000 * Int64(d % 7) }
        /// Haiku ($1) and Sonnet ($3) input, metered exactly on the days `used` says and billed
        /// on them at the card's price times `factor`.
        func bothModels(used: @escaping (String, Int) -> Bool = { _, _ in true }, factor: (Int) -> Decimal) async throws -> ReconciliationReport {
            let store = try S.store()
            for model in ["claude-haiku-4-5", "claude-sonnet-4-5"] {
                _ = try await store.ingest(try await daily(model, "input") { used(model, $0) ? volume($0) : 0 })
            }
            return try await run(
                store,
                S.costReport(
                    (1...31).flatMap { d -> [TestSupport.Row] in
                        [("claude-haiku-4-5", Decimal(1)), ("claude-sonnet-4-5", Decimal(3))].filter { used($0.0, d) }.map { model, price in
                            .init(
                                day: d, model: model, tokenType: "uncached_input_tokens",
                                cents: Self.cents(Decimal(volume(d)) * price * factor(d) / 1_000_000))
                        }
                    }))
        }
        let r = try await bothModels { $0 == 31 ? 0.75 : 1 }
        #expect(r.priceSteps.isEmpty && r.corrections.isEmpty, "\(r.priceSteps) \(described(r))")
        // The period's last three days only (May 29–31): traffic to May 29, cut that day, is
        // no step; traffic to May 28, cut that day, is (days pinned: `settlingDays`).
        for last in [28, 29] {
            let cut = try await bothModels(used: { _, d in d <= last }) { $0 == last ? 0.75 : 1 }
            #expect(cut.priceSteps.map(\.date) == (last == 28 ? ["2026-05-28"] : []), "to May \(last): \(cut.priceSteps)")
        }
        let uniform = try #require(r.reasons.first { $0.code == "uniform_gap" }, "\(r.reasons.map(\.code)) \(r.held.map(\.reason))")
        #expect(uniform.remedy?.hasPrefix("reconcile again on an export pulled after the period settled") == true, "\(uniform.remedy ?? "")")
        // Mid-month it is a step: every price 10 % up from May 20, Haiku retired after that day
        // (the first reading of this rule corrected Haiku's share as usage: tester U2).
        let step = try await bothModels(used: { model, d in model != "claude-haiku-4-5" || d <= 20 }) { $0 >= 20 ? 1.1 : 1 }
        #expect(step.corrections.isEmpty && step.priceSteps.map(\.date) == ["2026-05-20"], "\(step.priceSteps) \(described(step))")
        // Every price 10 % up on Friday May 29 before an idle weekend: a late export bills less,
        // never more, so it is a step (it was held as a late export: review V).
        let rose = try await bothModels(used: { _, d in d < 30 }) { $0 == 29 ? 1.1 : 1 }
        #expect(rose.corrections.isEmpty && rose.held.isEmpty && rose.priceSteps.map(\.date) == ["2026-05-29"], "\(rose.priceSteps) \(rose.held.map(\.reason))")
        // Every price 10 % up from May 16, Haiku used until May 18 and Sonnet idle May 16–18: the
        // step of Sonnet's shown from the 19th may lie on its idle days, and both step on the 16th
        // (Haiku's three days were corrected as usage: tester U2).
        let idle = try await bothModels(used: { model, d in model == "claude-haiku-4-5" ? d <= 18 : !(16...18).contains(d) }) { $0 >= 16 ? 1.1 : 1 }
        #expect(
            idle.corrections.isEmpty && idle.priceSteps.map { "\($0.kind.rawValue) \($0.date)" } == ["several_models 2026-05-16"],
            "\(idle.priceSteps) \(described(idle))")
    }

    /// A price rise on one token type over the period's last days, with no traffic at all on May 30
    /// (three days of traffic: too few for one-cell-factor). It was held as an export pulled early
    /// (`last_day_unlike_the_rest`), whose remedy (pull again, then --confirm-large) posts a wrong
    /// +10 % once a re-pull shows the same file (tester T2 M2). Held as one share on the last days,
    /// naming the price list; also with the meter over-counting May 29 inside the rise.
    @Test func aShareAlikeOnTheLastDaysIsHeldAsAPossiblePriceChange() async throws {
        func volume(_ d: Int) -> Int64 { d == 30 ? 0 : 1_000_000 + Int64(d) * 37_000 }
        for overCounted in [false, true] {
            let store = try S.store()
            _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { d in overCounted && d == 29 ? 2 * volume(d) : volume(d) })
            let r = try await run(
                store,
                S.costReport(
                    (1...31).filter { $0 != 30 }.map { d in
                        .init(
                            day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens",
                            cents: Self.cents(Decimal(volume(d)) * (d >= 28 ? 1.1 : 1) / 1_000_000))
                    }))
            #expect(r.corrections.isEmpty, "\(r.corrections.map(\.quantity))")
            let held = try #require(r.held.first, "over-counted \(overCounted): \(r.findings.map { "\($0.gapClass) \($0.quantity) \($0.reason ?? "")" })")
            #expect(r.held.count == 1 && held.reason == "same_share_on_last_days", "\(held.reason)")
            #expect(
                held.detail.contains("10.00 % above the meter") && held.detail.contains("price list") && !held.detail.contains("last day is unlike"),
                "\(held.detail)")
            #expect(held.detail.contains(overCounted ? "2026-05-28, 2026-05-31 alike" : "2026-05-28, 2026-05-29, 2026-05-31 alike"), "\(held.detail)")
        }
        // The rise on the last three weekdays before an idle month-end weekend (May 30–31, no
        // traffic either side), or on the last one alone: corrected as usage (tester U). Held.
        // A loss followed by a model idle for longer (May 20–22, then nothing) is still corrected.
        func weekday(_ d: Int) -> Int64 { d >= 30 ? 0 : volume(d) }
        for (from, reason) in [(27, "same_share_on_last_days"), (29, "last_day_unlike_the_rest")] {
            let store = try S.store()
            _ = try await store.ingest(try await daily("claude-haiku-4-5", "input", weekday))
            let r = try await run(
                store, Self.oneCell("claude-haiku-4-5", "uncached_input_tokens", days: 1...29) { Decimal(weekday($0)) * ($0 >= from ? 1.1 : 1) / 1_000_000 })
            #expect(r.corrections.isEmpty && r.held.map(\.reason) == [reason], "from May \(from): \(described(r)) \(r.held.map(\.reason))")
        }
        // Three idle days at the end at most (a long weekend): with four, the last day with
        // traffic ends no period, and a rise on the three before it is judged as any other days
        // (a documented limit: a model retired after its own rise looks the same).
        for idle in [2, 3, 4] {
            func used(_ d: Int) -> Int64 { d > 31 - idle ? 0 : volume(d) }
            let store = try S.store()
            _ = try await store.ingest(try await daily("claude-haiku-4-5", "input", used))
            let r = try await run(
                store,
                Self.oneCell("claude-haiku-4-5", "uncached_input_tokens", days: 1...(31 - idle)) { Decimal(used($0)) * ($0 > 28 - idle ? 1.1 : 1) / 1_000_000 })
            #expect((r.held.map(\.reason) == ["same_share_on_last_days"]) == (idle <= 3), "\(idle) idle days: \(described(r)) \(r.held.map(\.reason))")
        }
        let stopped = try S.store()
        func early(_ d: Int) -> Int64 { d > 22 ? 0 : volume(d) }
        _ = try await stopped.ingest(try await daily("claude-haiku-4-5", "input") { d in early(d) - ((20...22).contains(d) ? 200_000 : 0) })
        let loss = try await run(
            stopped,
            S.costReport(
                (1...22).map { d in
                    .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: Self.cents(Decimal(early(d)) / 1_000_000))
                }))
        #expect(loss.corrections.map(\.quantity) == [600_000] && loss.held.isEmpty, "\(described(loss))")
    }

    /// An export sorted by model and token type whose download stopped after May 24's output row:
    /// output billed up to May 24 and none after, input to the end, the meter metering both every
    /// day. A week of zeros at the end was proposed as −350,000 of over-metering (the period-end
    /// hold looked at three days at most). Held, saying where the invoice stops.
    @Test func aSeriesTheInvoiceStopsBillingBeforeTheEndIsHeld() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { _ in 1_000_000 })
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "output") { _ in 50_000 })
        /// Input billed every day, output to `last`.
        func outputTo(_ last: Int) -> InvoiceFile {
            S.costReport(
                (1...31).flatMap { d -> [TestSupport.Row] in
                    [.init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100")]
                        + (d <= last ? [.init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: "25")] : [])
                })
        }
        let r = try await run(store, outputTo(24))
        #expect(r.corrections.isEmpty, "\(r.corrections.map(\.quantity))")
        #expect(
            r.held.map { "\($0.reason) \($0.correction.quantity)" } == ["last_day_unlike_the_rest -350000"]
                && r.held.allSatisfy { $0.detail.contains("bills none of it after 2026-05-24") }, "\(r.held)")
        #expect(r.held.allSatisfy { !$0.detail.contains("besides") }, "\(r.held)")
        // Stopped on May 10 (a workspace moved out of the export's scope, say): the correction
        // backs out more than half the month, and the hold says that too, so a re-pull that
        // comes back the same does not end in --confirm-large (review X).
        let early = try await run(store, outputTo(10))
        #expect(
            early.corrections.isEmpty && early.held.map(\.reason) == ["last_day_unlike_the_rest"]
                && early.held.allSatisfy {
                    $0.detail.contains("bills none of it after 2026-05-10")
                        && $0.detail.contains("besides, the correction backs out 1050000 of 1550000 metered output tokens")
                }, "\(early.held)")
        // Billed to the end, a steady shortfall from May 25 is still proposed.
        let steady = try await run(
            store,
            S.costReport(
                (1...31).flatMap { d -> [TestSupport.Row] in
                    [
                        .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: "100"),
                        .init(day: d, model: "claude-haiku-4-5", tokenType: "output_tokens", cents: d <= 24 ? "25" : "20"),
                    ]
                }))
        #expect(steady.corrections.map(\.quantity) == [-70_000] && steady.held.isEmpty, "\(steady.corrections.map(\.quantity)) \(steady.held)")
    }

    /// What the period-end hold must leave alone (found by an outside second read): a token of
    /// midnight jitter on the last day of an exact-token export beside a real outage, and a steady
    /// loss over a month whose last day carries a month-end batch nine times the usual traffic.
    @Test func jitterAndAMonthEndBatchAreNotUnlikeTheRest() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-haiku-4-5", "input") { $0 == 31 ? 9_000_000 : 1_000_000 })
        let usage = InvoiceFile(
            name: "usage.json",
            bytes: Array(
                JSONWriter.write(
                    .object([
                        (
                            "data",
                            .array(
                                (1...31).map { d in
                                    let day = "2026-05-\(String(format: "%02d", d))"
                                    let tokens = d == 12 ? 3_000_000 : d == 31 ? 9_000_001 : 1_000_000
                                    return .object([
                                        ("starting_at", .string(day + "T00:00:00Z")), ("ending_at", .string(day + "T23:59:59Z")),
                                        (
                                            "results",
                                            .array([.object([("model", .string("claude-haiku-4-5")), ("uncached_input_tokens", .number("\(tokens)"))])])
                                        ),
                                    ])
                                })
                        ),
                        ("has_more", .bool(false)), ("next_page", .null),
                    ])
                ).utf8))
        let outage = try await run(store, usage)
        #expect(outage.corrections.map(\.quantity) == [2_000_001] && outage.held.isEmpty, "\(outage.held.map(\.detail))")
        // 5 % more every day, the batch day included: not the last day unlike the rest. A cent
        // of $1.05 a day is a share of 1 %, a fifth of the 5 %: a loss wandering within it reads
        // alike (tester Q2), and so does a price, which as a correction bills the customer (tester
        // W2: price rises on days that coarse were corrected as usage). Held, a price or a loss.
        let steady = try await run(
            store,
            S.costReport(
                (1...31).map { d in .init(day: d, model: "claude-haiku-4-5", tokenType: "uncached_input_tokens", cents: d == 31 ? "945" : "105") }))
        #expect(
            steady.corrections.isEmpty && steady.held.isEmpty && steady.findings.map(\.rule) == ["one-cell-factor"],
            "\(steady.findings.map { "\($0.quantity) \($0.rule ?? "")" }) \(steady.held.map(\.detail))")
    }

    @Test func mislabelledCacheLifetimesAreOneRelabelNettingToZero() async throws {
        let store = try S.store()
        // The collector wrote every cache write as 1-hour; the vendor billed 600k of them at the 5-minute rate.
        _ = try await store.ingest([S.event("w", model: "claude-sonnet-4-5", type: "cache_write_1h", quantity: 2_000_000, vendor: "anthropic")])
        let r = try await run(
            store,
            S.costReport([
                .init(model: "claude-sonnet-4-5", tokenType: "cache_creation.ephemeral_5m_input_tokens", cents: "225"),
                .init(model: "claude-sonnet-4-5", tokenType: "cache_creation.ephemeral_1h_input_tokens", cents: "840"),
            ]))
        let fiveMin = try #require(r.findings.first { $0.tokenType == .cacheWrite5m })
        let oneHour = try #require(r.findings.first { $0.tokenType == .cacheWrite1h })
        #expect(fiveMin.quantity == 600_000 && oneHour.quantity == -600_000)
        for f in [fiveMin, oneHour] {
            #expect(f.gapClass == .meteringGap && f.reason == "token_type_mislabel" && f.classifier == "engine", "never pass_through")
            #expect(f.pairAmount == ExactAmount(Decimal(string: "-1.35")!), "$2.25 at 5m minus $3.60 at 1h")
        }
        #expect(fiveMin.pairedWith == .cacheWrite1h && oneHour.pairedWith == .cacheWrite5m)
        #expect(r.corrections.map(\.quantity).sorted() == [-600_000, 600_000] && r.corrections.reduce(0) { $0 + $1.quantity } == 0)
        #expect(r.corrections.allSatisfy { $0.dimensions["relabel_of"] != nil })
    }

    /// A cost report billing Sonnet the same cents for each of its token types every day of May.
    static func sonnetEveryDay(_ types: [(tokenType: String, cents: String)]) -> InvoiceFile {
        S.costReport((1...31).flatMap { d in types.map { .init(day: d, model: "claude-sonnet-4-5", tokenType: $0.tokenType, cents: $0.cents) } })
    }

    /// A collector writing every cache write as 5-minute, and an outage of two days: the pair is
    /// no longer equal and opposite over the month, and the 5-minute side's −6,000,000 was
    /// proposed (the customer's billed writes backed out) beside the 1-hour side as pass-through
    /// (an outside tester, with Anthropic's usage report). Equal and opposite on the other 29
    /// days, the pair is held; the input the outage lost is corrected to the token.
    @Test func aMislabelBesideAnOutageIsHeldNotBackedOut() async throws {
        let store = try S.store()
        let outage: Set<Int> = [12, 13]
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "cache_write_5m") { outage.contains($0) ? 500_000 : 600_000 })
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { outage.contains($0) ? 800_000 : 1_000_000 })
        let r = try await run(
            store,
            Self.sonnetEveryDay([
                ("uncached_input_tokens", "300"), ("cache_creation.ephemeral_5m_input_tokens", "150"),
                ("cache_creation.ephemeral_1h_input_tokens", "120"),
            ]))
        #expect(r.corrections.map { "\($0.dimensions["token_type"] ?? "") \($0.quantity)" } == ["input 400000"], "\(r.findings)")
        for type in [TokenType.cacheWrite5m, .cacheWrite1h] {
            let f = try #require(r.findings.first { $0.tokenType == type })
            #expect(f.gapClass == .unexplained && f.reason == "opposite_gaps_on_the_same_days_of_cache_write_1h_and_cache_write_5m", "\(f)")
        }
        #expect(r.held.allSatisfy { $0.correction.quantity > 0 || $0.correction.dimensions["token_type"] != "cache_write_5m" })
    }

    /// OpenAI's usage report counts cache writes inside input, and a collector that records input
    /// as it reads it folds them in: input over the bill and cache writes under it by the same
    /// amount every day. An outage on input broke the month's totals, and input's −8,300,000 was
    /// proposed where 1,000,000 was lost. Held, by the days; the cache reads the outage lost too
    /// (off on its two days only) are no part of the fold and are judged on their own (the
    /// defaults' pass-through).
    @Test func cacheWritesFoldedIntoInputBesideAnOutageAreHeld() async throws {
        let store = try S.store()
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "input") { [12, 13].contains($0) ? 800_000 : 1_300_000 })
        _ = try await store.ingest(try await daily("claude-sonnet-4-5", "cache_read") { [12, 13].contains($0) ? 4_000_000 : 5_000_000 })
        let r = try await run(
            store,
            Self.sonnetEveryDay([
                ("uncached_input_tokens", "300"), ("cache_creation.ephemeral_5m_input_tokens", "112.5"), ("cache_read_input_tokens", "150"),
            ]))
        #expect(r.corrections.isEmpty, "\(r.corrections.map(\.quantity))")
        let reads = try #require(r.findings.first { $0.tokenType == .cacheRead })
        #expect(reads.quantity == 2_000_000 && reads.gapClass == .passThrough && reads.rule != "token-type-swap", "\(reads)")
        #expect(r.held.allSatisfy { $0.correction.quantity > 0 }, "no back-out waits for a confirmation either: \(r.held.map(\.correction.quantity))")
        let input = try #require(r.findings.first { $0.tokenType == .input })
        #expect(input.quantity == -8_300_000 && input.reason == "opposite_gaps_on_the_same_days_of_cache_write_5m_and_input", "\(input)")
    }

    /// Cache folded into input beside what else a month holds (an outside tester's cases, each of
    /// which backed input out of the bill): a 2 % loss every day (input −24,180,000 proposed where
    /// +6,200,000 was lost), the fold fixed on May 8 beside an outage of eight days (−4,000,000
    /// where 24,000,000 was lost), and cache writes on four of the fold's days with the team rules
    /// that bill cache (+4,000,000 of writes proposed while they sat in input). Input's excess
    /// lies where cache was billed beyond the meter, day by day: held, with the cache beside it.
    /// Input replayed on one day beside cache never metered (billed every day) is corrected.
    @Test func overMeteringWhereAnotherTypeIsBilledBeyondTheMeterIsHeld() async throws {
        let rows = { (input: String, cacheRead: String, output: String?, writes: (Int) -> String?) in
            (1...31).flatMap { d -> [TestSupport.Row] in
                [
                    .init(day: d, model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: input),
                    .init(day: d, model: "claude-sonnet-4-5", tokenType: "cache_read_input_tokens", cents: cacheRead),
                ] + (output.map { [.init(day: d, model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: $0)] } ?? [])
                    + (writes(d).map { [.init(day: d, model: "claude-sonnet-4-5", tokenType: "cache_creation.ephemeral_5m_input_tokens", cents: $0)] } ?? [])
            }
        }
        func runWith(_ store: any MeterStore, _ invoice: InvoiceFile, billingCache: Bool = false) async throws -> ReconciliationReport {
            var options = ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: S.may, account: "acct_42")
            if billingCache {
                let url = S.packageRoot.appendingPathComponent("docs/rules/bill-cache-tokens.yaml")
                options.teamRules = try ClassificationRules.load(text: String(contentsOf: url, encoding: .utf8), file: "bill-cache-tokens.yaml")
            }
            return try await service.engine.run(options, store: store)
        }
        func negatives(_ r: ReconciliationReport) -> [Int64] { (r.corrections + r.held.map(\.correction)).map(\.quantity).filter { $0 < 0 } }

        // 1M cache reads a day in input, 2 % of everything lost.
        let lossy = try S.store()
        _ = try await lossy.ingest(try await daily("claude-sonnet-4-5", "input") { _ in 10_780_000 })
        _ = try await lossy.ingest(try await daily("claude-sonnet-4-5", "output") { _ in 1_960_000 })
        let steady = try await runWith(lossy, S.costReport(rows("3000", "30", "3000", { _ in nil })))
        #expect(negatives(steady).isEmpty && steady.corrections.map(\.quantity) == [1_240_000], "\(steady.findings)")
        #expect(steady.findings.first { $0.tokenType == .input }?.reason == "opposite_gaps_on_the_same_days_of_cache_read_and_input")

        // 4M cache reads a day in input on May 1–7 (fixed on the 8th); 3M input a day lost May 20–27.
        let fixed = try S.store()
        _ = try await fixed.ingest(try await daily("claude-sonnet-4-5", "input") { d in d <= 7 ? 14_000_000 : (20...27).contains(d) ? 7_000_000 : 10_000_000 })
        _ = try await fixed.ingest(try await daily("claude-sonnet-4-5", "cache_read") { d in d <= 7 ? 0 : 4_000_000 })
        let mended = try await runWith(fixed, S.costReport(rows("3000", "120", nil, { _ in nil })))
        #expect(negatives(mended).isEmpty && mended.corrections.isEmpty, "\(mended.findings)")
        #expect(mended.findings.first { $0.tokenType == .input }?.rule == "token-type-swap", "\(mended.findings)")

        // 3M reads and, on four days, 1M writes a day in input on May 1–20; cache metered from the
        // 21st (writes on the 25th); half of input lost May 10–12.
        let three = try S.store()
        let writeDays: Set<Int> = [3, 6, 9, 15, 25]
        _ = try await three.ingest(
            try await daily("claude-sonnet-4-5", "input") { d in
                let q: Int64 = d <= 20 ? 13_000_000 + (writeDays.contains(d) ? 1_000_000 : 0) : 10_000_000
                return (10...12).contains(d) ? q / 2 : q
            })
        _ = try await three.ingest(try await daily("claude-sonnet-4-5", "cache_read") { d in d <= 20 ? 0 : 3_000_000 })
        _ = try await three.ingest(try await daily("claude-sonnet-4-5", "cache_write_5m") { d in d == 25 ? 1_000_000 : 0 })
        let folded = try await runWith(three, S.costReport(rows("3000", "90", nil, { writeDays.contains($0) ? "375" : nil })), billingCache: true)
        #expect(negatives(folded).isEmpty && !folded.corrections.contains { $0.dimensions["token_type"] == "cache_write_5m" }, "\(folded.findings)")
        #expect(folded.findings.first { $0.tokenType == .cacheWrite5m }?.rule == "token-type-swap", "\(folded.findings)")

        // Reads four times input, 8M a day folded into input on May 1–7; an outage of every type
        // May 20–27 (2M input, 12M reads a day): the reads' own loss outweighed the fold, and
        // input −40,000,000 was proposed where 16,000,000 was lost (review 8).
        let heavy = try S.store()
        _ = try await heavy.ingest(try await daily("claude-sonnet-4-5", "input") { d in d <= 7 ? 18_000_000 : (20...27).contains(d) ? 8_000_000 : 10_000_000 })
        _ = try await heavy.ingest(
            try await daily("claude-sonnet-4-5", "cache_read") { d in d <= 7 ? 32_000_000 : (20...27).contains(d) ? 28_000_000 : 40_000_000 })
        let outweighed = try await runWith(heavy, S.costReport(rows("3000", "1200", nil, { _ in nil })))
        #expect(negatives(outweighed).isEmpty, "\(outweighed.findings)")

        // 1 % of input lost and output metered 3 % over: no collector records output as input.
        let apart = try S.store()
        _ = try await apart.ingest(try await daily("claude-sonnet-4-5", "input") { _ in 9_900_000 })
        _ = try await apart.ingest(try await daily("claude-sonnet-4-5", "output") { _ in 2_060_000 })
        let unrelated = try await runWith(apart, S.costReport(rows("3000", "0", "3000", { _ in nil })))
        #expect(!unrelated.findings.contains { $0.rule == "token-type-swap" }, "\(unrelated.findings)")

        // Cache never metered, billed 4M a day; input replayed 2M on May 15.
        let replayed = try S.store()
        _ = try await replayed.ingest(try await daily("claude-sonnet-4-5", "input") { d in d == 15 ? 12_000_000 : 10_000_000 })
        let replay = try await runWith(replayed, S.costReport(rows("3000", "120", nil, { _ in nil })))
        #expect(replay.corrections.map(\.quantity) == [-2_000_000], "\(replay.findings)")
    }

    @Test func aRelabelIsHeldTogetherWhenOneSideIsLarge() async throws {
        let store = try S.store()
        _ = try await store.ingest([S.event("w", model: "claude-sonnet-4-5", type: "cache_write_1h", quantity: 1_000_000, vendor: "anthropic")])
        let r = try await run(
            store,
            S.costReport([
                .init(model: "claude-sonnet-4-5", tokenType: "cache_creation.ephemeral_5m_input_tokens", cents: "225"),
                .init(model: "claude-sonnet-4-5", tokenType: "cache_creation.ephemeral_1h_input_tokens", cents: "240"),
            ]))
        #expect(r.corrections.isEmpty && r.held.map(\.correction.quantity).sorted() == [-600_000, 600_000], "held as a pair")
    }
}
