import Foundation
import MeterStoreSQLite
import Metering
import ReconCore
import Testing
import UsageBoxApp
import VendorAnthropic

/// `usagebox export focus` writes what the FOCUS plugin reads back: the export reconciled against
/// the meter it came from has no gap, for every model and token type, corrections included.
@Suite struct FOCUSExportTests {
    typealias S = TestSupport
    let service = try! ReconciliationService()

    func export(_ store: any MeterStore, account: String? = "acct_42") async throws -> (InvoiceFile, FOCUSExport.Summary) {
        var text = ""
        let summary = try await FOCUSExport.write(store: store, service: service, range: S.may, account: account, billingAccount: "reseller") {
            text += $0
        }
        return (InvoiceFile(name: "focus.csv", bytes: Array(text.utf8)), summary)
    }

    @Test func anExportReconcilesToNoGapAgainstItsOwnMeter() async throws {
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        // Token types the kata lacks, one of them a cache-write lifetime FOCUS cannot name.
        _ = try await store.ingest([
            S.event("cw1h", model: "claude-sonnet-4-5", type: "cache_write_1h", quantity: 1_234_567, day: 20, vendor: "anthropic"),
            S.event("cr", model: "claude-opus-4-8", type: "cache_read", quantity: 7_654_321, day: 21, vendor: "anthropic"),
        ])
        // Apply the kata's correction, so the export carries a Correction row.
        let options = ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42")
        let (_, outcome) = try await service.run(options, store: store, log: store, apply: true)
        guard case .posted = outcome else { Issue.record("\(outcome)"); return }

        let (file, summary) = try await export(store)
        let lines = String(decoding: file.bytes, as: UTF8.self).split(separator: "\n").dropFirst()
        #expect(lines.count == summary.rows && summary.unpriced == 0)
        #expect(lines.contains { $0.contains(",Correction,Correction of claude-sonnet-4-5 input tokens,") })
        // Money is exact: 2,132,084 haiku input tokens at $1/M on May 1 is $2.132084, not $2.13.
        #expect(lines.contains { $0.hasPrefix(",2.132084,reseller,") })

        let r = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [file], range: S.may, account: "acct_42"), store: store)
        #expect(r.verdict == .conclusive && r.corrections.isEmpty && r.findings.isEmpty, "\(r.reasons)")
        #expect(r.total.gap == 0 && r.total.metered == 321_640_000 + 520_000 + 1_234_567 + 7_654_321)
        let rows = r.models.flatMap { m in m.tokenTypes.map { (m.modelID, $0) } }
        let types = Set(rows.map { "\($0.0) \($0.1.tokenType?.rawValue ?? "-")" })
        #expect(types.contains("claude-sonnet-4-5 cache_write_1h") && types.contains("claude-opus-4-8 cache_read"))
        #expect(rows.allSatisfy { $0.1.gap == 0 })
        #expect(r.invoice.amount.value == summary.billed["USD"])
    }

    /// Meters in other units were added to tokens and priced as tokens (5 kTok and 7 images made
    /// a row of 1,000,012 "Tokens", and the round trip a +12 gap: tester O). They are left out and
    /// said. A day's groups that sum to 0 (a correction and its reversal) are rows, and a range that
    /// cuts a day narrows the rows' charge period to it.
    @Test func onlyTokenMetersAreExportedAndEveryGroupOfTheRangeIsARow() async throws {
        let store = try S.store()
        _ = try await store.setMeter("claude_ktokens", unit: "kTok", rollupDimensions: nil)
        _ = try await store.setMeter("images", unit: "images", rollupDimensions: nil)
        func other(_ id: String, _ meter: String, _ unit: String, _ q: Int64) -> IngestItem {
            .event(
                UsageEvent(
                    eventID: id, accountID: "acct_42", meterID: meter, modelID: "claude-sonnet-4-5", quantity: q, unit: unit,
                    timestamp: Timestamp(rfc3339: "2026-05-10T12:00:00Z")!, dimensions: ["token_type": "input", "vendor": "anthropic"]))
        }
        let answer = try await store.ingest([
            S.event("t", model: "claude-sonnet-4-5", type: "input", quantity: 1_000_000, vendor: "anthropic"),
            S.event("o", model: "claude-sonnet-4-5", type: "output", quantity: 0, vendor: "anthropic"),
            other("k", "claude_ktokens", "kTok", 5), other("i", "images", "images", 7),
        ])
        #expect(answer.accepted == 4, "\(answer.errors)")
        let (file, summary) = try await export(store)
        let lines = String(decoding: file.bytes, as: UTF8.self).split(separator: "\n").dropFirst()
        #expect(lines.count == 2 && lines.contains { $0.contains(",1000000.0,Tokens,") } && lines.contains { $0.contains(",0.0,Tokens,") }, "\(lines)")
        #expect(summary.leftOut == ["kTok: 5 (meter claude_ktokens)", "images: 7 (meter images)"], "\(summary.leftOut)")
        let r = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [file], range: S.may, account: "acct_42"), store: store)
        #expect(r.total.gap == 0 && r.corrections.isEmpty, "\(r.findings)")
        // `explain --by day` shows the units apart too (tester O2).
        let daily = try await Rendering.dailyUsage(store, account: "acct_42", range: S.may)
        #expect(daily.contains("unit") && daily.contains("kTok") && daily.contains("images"), "\(daily)")

        var half = ""
        _ = try await FOCUSExport.write(
            store: store, service: service,
            range: try TimeRange(from: Timestamp(rfc3339: "2026-05-10T06:00:00Z")!, to: Timestamp(rfc3339: "2026-05-10T18:00:00Z")!),
            account: "acct_42", billingAccount: "reseller"
        ) { half += $0 }
        #expect(half.contains(",2026-05-10T18:00:00Z,2026-05-10T06:00:00Z,"), "ChargePeriodEnd, ChargePeriodStart: \(half)")
        // FOCUS periods are whole seconds: a bound inside one is refused, naming it (tester O2).
        await #expect(
            throws: UsageBoxError.invalidArgument(
                "2026-05-10T18:00:00.500000Z is not a whole second: FOCUS charge periods are written to the second", field: "to")
        ) {
            _ = try await FOCUSExport.write(
                store: store, service: service,
                range: try TimeRange(from: Timestamp(rfc3339: "2026-05-10T06:00:00Z")!, to: Timestamp(rfc3339: "2026-05-10T18:00:00.5Z")!),
                account: "acct_42", billingAccount: "reseller"
            ) { _ in }
        }
    }

    /// A FOCUS export of the kata's month as the vendor saw it (the 520,000 the meter lost
    /// included), and the kata's meter without them.
    func kataLossSeenThroughFOCUS() async throws -> (InvoiceFile, SQLiteMeterStore) {
        let vendorView = try S.store()
        _ = try await KataDemo(store: vendorView, write: { _ in }).load()
        _ = try await vendorView.ingest([S.event("lost", model: "claude-sonnet-4-5", type: "input", quantity: 520_000, day: 20, vendor: "anthropic")])
        let (focus, _) = try await export(vendorView)
        let store = try S.store()
        _ = try await KataDemo(store: store, write: { _ in }).load()
        return (focus, store)
    }

    /// A loss corrected through a FOCUS export is Anthropic's usage: the correction is posted
    /// under vendor `anthropic`, so the Anthropic run after it counts it instead of setting it
    /// aside as another vendor's and correcting the same loss again (+520,000 twice).
    @Test func aLossCorrectedThroughFOCUSIsNotCorrectedAgainByTheVendorsOwnRun() async throws {
        let (focus, store) = try await kataLossSeenThroughFOCUS()
        let (first, outcome) = try await service.run(
            ReconciliationOptions(vendor: "focus", invoices: [focus], range: S.may, account: "acct_42"), store: store, log: store, apply: true)
        #expect(first.corrections.map { "\($0.quantity) \($0.dimensions["vendor"] ?? "")" } == ["520000 anthropic"], "\(first.held.map(\.detail))")
        guard case .posted = outcome else { Issue.record("\(outcome)"); return }
        let second = try await service.engine.run(
            ReconciliationOptions(vendor: "anthropic", invoices: [AnthropicPlugin.demoCostReport], range: S.may, account: "acct_42"), store: store)
        #expect(second.corrections.isEmpty && second.held.isEmpty, "\(second.corrections.map(\.quantity))")
        #expect(second.meteredOutOfScope.isEmpty, "\(second.meteredOutOfScope)")
    }

    /// A FOCUS run and the Anthropic run of one month from one meter state: their corrections
    /// (both posted under vendor anthropic) named slots after the plugin that proposed them, so
    /// applied from two processes at once both were accepted (+1,040,000). They claim one slot:
    /// one is posted, the other answered `conflict`.
    @Test func aFOCUSRunAndTheVendorsOwnRunClaimOneSlot() async throws {
        let (focus, store) = try await kataLossSeenThroughFOCUS()
        var runs: [ReconciliationReport] = []
        for (vendor, invoice) in [("focus", focus), ("anthropic", AnthropicPlugin.demoCostReport)] {
            runs.append(
                try await service.run(ReconciliationOptions(vendor: vendor, invoices: [invoice], range: S.may, account: "acct_42"), store: store, log: store)
                    .report)
        }
        #expect(runs.map { $0.corrections.map(\.quantity) } == [[520_000], [520_000]])
        #expect(runs[0].corrections.map(\.eventID) == runs[1].corrections.map(\.eventID), "one slot")
        let responses = try await postAsSeparateProcesses(runs, runner: service.runner, store: store)
        #expect(responses.map(\.accepted).sorted() == [0, 1] && responses.map(\.conflicts).sorted() == [0, 1], "\(responses)")
        #expect(try await store.explain(account: "acct_42", range: S.may).totals.corrections == 520_000)
    }

    @Test func anExportWithABadTokenTypeNamesTheLine() async throws {
        let store = try S.store()
        _ = try await store.ingest([S.event("a", model: "claude-opus-4-8", type: "input", quantity: 1_000, vendor: "anthropic")])
        let (file, _) = try await export(store)
        let bad = String(decoding: file.bytes, as: UTF8.self).replacingOccurrences(of: ",input,anthropic,", with: ",In Put,anthropic,")
        #expect(bad.contains("In Put"))
        let options = ReconciliationOptions(vendor: "focus", invoices: [InvoiceFile(name: "bad.csv", bytes: Array(bad.utf8))], range: S.may, account: "acct_42")
        await #expect {
            _ = try await service.engine.run(options, store: store)
        } throws: { error in
            "\(error)".contains("bad.csv:2") && "\(error)".contains("x_TokenType")
        }
    }

    /// A price fix in corrections: the day's 2,000,000 reversed and billed again. Setting every
    /// negative row aside (tokens given back are a refund) held the cell and read 4,000,000; a
    /// reversal billed again in full nets. Billed again short (1,500,000), what is given back
    /// past it is not stated as served or not: held.
    /// A row reversed whole and replaced lower (FOCUS's "ledger" corrections: the vendor billed
    /// 2,500,000 and restates 2,000,000) read the reversal as a refund set aside: a clean month
    /// showed a +2,000,000 gap (the replacement counted on top of the row), and a real loss on the
    /// cell was held. It nets; over-metering beside it stays held (`usage_restated_lower`).
    @Test func aReversalBilledAgainNetsAndOneBilledShortIsHeld() async throws {
        let store = try S.store()
        _ = try await store.ingest([S.event("a", model: "solora-atlas-5.5", type: "input", quantity: 2_000_000, day: 3)])
        func focus(rebilled: String, original: String = "2000000", reversed: String? = nil, twice: Bool = false) -> InvoiceFile {
            let sku = #""{""ModelId"": ""solora-atlas-5.5"", ""TokenDirection"": ""Input""}""#
            let day = "2026-05-03T00:00:00Z,2026-05-04T00:00:00Z"
            let csv = """
                BilledCost,BillingCurrency,ChargeCategory,ChargeClass,ChargeDescription,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,SkuPriceDetails
                10.00,USD,Usage,,Input tokens,\(day),\(original),Tokens,\(sku)
                -10.00,USD,Usage,Correction,Input reversed,\(day),-\(reversed ?? original),Tokens,\(sku)\(twice ? "\n-10.00,USD,Usage,Correction,Input reversed again,\(day),-\(reversed ?? original),Tokens,\(sku)" : "")
                9.00,USD,Usage,Correction,Input billed again,\(day),\(rebilled),Tokens,\(sku)

                """
            return InvoiceFile(name: "focus.csv", bytes: Array(csv.utf8))
        }
        let range = try TimeRange(from: "2026-05-03T00:00:00Z", to: "2026-05-04T00:00:00Z")
        let netted = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [focus(rebilled: "2000000")], range: range, account: "acct_42"), store: store)
        #expect(netted.models.first?.tokenTypes.first?.vendor == 2_000_000 && netted.findings.isEmpty, "\(netted.models) \(netted.unmapped.map(\.reason))")
        #expect(!netted.reasons.contains { $0.code == "usage_refund" })
        let short = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [focus(rebilled: "1500000")], range: range, account: "acct_42"), store: store)
        #expect(short.corrections.isEmpty && short.reasons.contains { $0.code == "usage_restated_lower" }, "\(short.corrections.map(\.quantity))")
        let ledger = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [focus(rebilled: "2000000", original: "2500000")], range: range, account: "acct_42"),
            store: store)
        #expect(ledger.models.first?.tokenTypes.first?.vendor == 2_000_000 && ledger.findings.isEmpty, "\(ledger.findings)")
        #expect(!ledger.reasons.contains { $0.code == "usage_refund" } && ledger.unmapped.isEmpty)
        // The collector lost 500,000 that day: corrected, where the cell was held.
        let lossy = try S.store()
        _ = try await lossy.ingest([S.event("a", model: "solora-atlas-5.5", type: "input", quantity: 1_500_000, day: 3)])
        let outage = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [focus(rebilled: "2000000", original: "2500000")], range: range, account: "acct_42"),
            store: lossy)
        #expect(outage.corrections.map(\.quantity) == [500_000] && outage.held.isEmpty, "\(outage.findings)")
        // A reversal that names no row (no usage row of that quantity): still a refund set aside.
        let unnamed = try await service.engine.run(
            ReconciliationOptions(
                vendor: "focus", invoices: [focus(rebilled: "2000000", original: "2500000", reversed: "2600000")], range: range, account: "acct_42"),
            store: lossy)
        #expect(unnamed.corrections.isEmpty && unnamed.reasons.contains { $0.code == "usage_refund" }, "\(unnamed.corrections.map(\.quantity))")
        // One row reversed twice: the second reversal names no row of its own (review 8: both
        // netted, the day read −2,500,000 and a loss elsewhere in the cell was corrected short).
        let twice = try await service.engine.run(
            ReconciliationOptions(
                vendor: "focus", invoices: [focus(rebilled: "2000000", original: "2500000", twice: true)], range: range, account: "acct_42"),
            store: lossy)
        #expect(twice.corrections.isEmpty && twice.reasons.contains { $0.code == "usage_refund" }, "\(twice.corrections.map(\.quantity))")
    }

    /// Reasoning metered apart from output, which a FOCUS export bills inside output: its card
    /// lists no models, so the check that a metered type the vendor does not bill holds output was
    /// skipped, and with 1 % of the day lost output was corrected up by the reasoning (+1,020,000,
    /// billing it twice). Output and reasoning are held; input's loss is corrected.
    @Test func reasoningMeteredApartHoldsOutputWhateverTheCardLists() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            S.event("i", model: "solora-atlas-5.5", type: "input", quantity: 9_900_000, day: 3),
            S.event("o", model: "solora-atlas-5.5", type: "output", quantity: 1_980_000, day: 3),
            S.event("r", model: "solora-atlas-5.5", type: "reasoning", quantity: 990_000, day: 3),
        ])
        func row(_ direction: String, _ quantity: String, _ cost: String) -> String {
            #"\#(cost),USD,Usage,2026-05-03T00:00:00Z,2026-05-04T00:00:00Z,\#(quantity),Tokens,"{""ModelId"": ""solora-atlas-5.5"", ""TokenDirection"": ""\#(direction)""}""#
        }
        let csv = """
            BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,SkuPriceDetails
            \(row("Input", "10000000", "50.00"))
            \(row("Output", "3000000", "75.00"))

            """
        let range = try TimeRange(from: "2026-05-03T00:00:00Z", to: "2026-05-04T00:00:00Z")
        let r = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [InvoiceFile(name: "focus.csv", bytes: Array(csv.utf8))], range: range, account: "acct_42"),
            store: store)
        #expect(r.reasons.contains { $0.code == "token_type_not_billed_by_vendor" && $0.tokenType == .output }, "\(r.reasons.map(\.code))")
        #expect(r.corrections.map { "\($0.dimensions["token_type"] ?? "") \($0.quantity)" } == ["input 100000"], "\(r.findings)")
        #expect(r.held.isEmpty, "\(r.held.map(\.correction.quantity))")
    }

    /// A FOCUS 1.2 export names its provider in ServiceProviderName (ProviderName is deprecated),
    /// or writes it "Anthropic, PBC": the meter's Anthropic-labelled usage was set aside as another
    /// vendor's and +300,000 proposed here (+9,300,000 in the tester's month), billing it twice.
    /// With no provider named at all, the model's positive gap is held.
    @Test func theProviderIsReadAsFOCUS12WritesItAndHeldWhenUnstated() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            S.event("a", model: "solora-atlas-5.5", type: "input", quantity: 300_000, day: 3, vendor: "anthropic"),
            S.event("b", model: "solora-atlas-5.5", type: "input", quantity: 700_000, day: 3),
        ])
        func focus(_ column: String?, _ value: String) -> InvoiceFile {
            let sku = #""{""ModelId"": ""solora-atlas-5.5"", ""TokenDirection"": ""Input""}""#
            let csv = """
                BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,SkuPriceDetails\(column.map { ",\($0)" } ?? "")
                5.00,USD,Usage,2026-05-03T00:00:00Z,2026-05-04T00:00:00Z,1000000,Tokens,\(sku)\(column == nil ? "" : ",\(value)")

                """
            return InvoiceFile(name: "focus.csv", bytes: Array(csv.utf8))
        }
        let range = try TimeRange(from: "2026-05-03T00:00:00Z", to: "2026-05-04T00:00:00Z")
        func run(_ file: InvoiceFile) async throws -> ReconciliationReport {
            try await service.engine.run(ReconciliationOptions(vendor: "focus", invoices: [file], range: range, account: "acct_42"), store: store)
        }
        for (column, value) in [("ServiceProviderName", "Anthropic"), ("ProviderName", #""Anthropic, PBC""#), ("x_Vendor", "anthropic")] {
            let r = try await run(focus(column, value))
            #expect(r.models.first?.metered == 1_000_000 && r.corrections.isEmpty, "\(column): \(r.corrections.map(\.quantity))")
        }
        // The issuer or the host is not who served it (a reseller, Marketplace): unstated; so is a
        // provider no plugin sells.
        for (column, value) in [
            (nil, ""), ("InvoiceIssuerName", "Anthropic PBC"), ("HostProviderName", "Amazon Web Services"), ("ProviderName", "OpenRouter"),
        ] {
            let unstated = try await run(focus(column, value))
            #expect(unstated.corrections.isEmpty && unstated.held.isEmpty, "\(column ?? "none"): \(unstated.corrections.map(\.quantity))")
            #expect(
                unstated.findings.first?.blockedBy.contains("provider_not_stated") == true, "\(column ?? "none"): \(unstated.findings.map(\.blockedBy))")
        }
        // A reseller's own card says nothing of who served it: still held.
        let card = try RateCard.load(
            text: """
                schema: ratecard/v1
                vendor: reseller
                currency: USD
                unit: per_million_tokens
                card_version: "1"
                sources: {contract: {url: "https://example.com/contract"}}
                token_types: [input]
                models:
                  solora-atlas-5.5:
                    prices:
                      - {from: "2026-01-01", rates: {input: "5"}, src: contract}
                """, file: "reseller.yaml")
        let carded = try await service.engine.run(
            ReconciliationOptions(vendor: "focus", invoices: [focus(nil, "")], range: range, account: "acct_42", rateCard: card), store: store)
        #expect(carded.corrections.isEmpty && carded.findings.first?.blockedBy.contains("provider_not_stated") == true, "\(carded.findings)")
        // x_Vendor is the meter's own value, as written: `aws-bedrock` read as "aws bedrock" set
        // the meter's aws-bedrock usage aside and proposed all of it.
        let bedrock = try S.store()
        _ = try await bedrock.ingest([
            S.event("a", model: "solora-atlas-5.5", type: "input", quantity: 1_000_000, day: 3, vendor: "aws-bedrock")
        ])
        // A provider name a plugin registers leads a longer one ("… EMEA SARL", "AWS Marketplace").
        for (column, value) in [("x_Vendor", "aws-bedrock"), ("ProviderName", "Amazon Web Services EMEA SARL"), ("ProviderName", "AWS Marketplace")] {
            let own = try await service.engine.run(
                ReconciliationOptions(vendor: "focus", invoices: [focus(column, value)], range: range, account: "acct_42"), store: bedrock)
            #expect(own.models.first?.metered == 1_000_000 && own.corrections.isEmpty, "\(value): \(own.corrections.map(\.quantity))")
        }
    }

    /// A model billed only in a month row, from a file that declares no period, beside another
    /// file's daily rows of another model covering May: the month row may be unfinished (pulled
    /// before the month's last days landed), and its shortfall was proposed as
    /// `metered_beyond_billed` on the strength of the other model's days.
    @Test func aModelBilledOnlyInAMonthRowIsNotTakenAsCompleteFromOtherModelsDays() async throws {
        let store = try S.store()
        var daily = "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,SkuPriceDetails,ProviderName\n"
        let haiku = #""{""ModelId"": ""claude-haiku-4-5"", ""TokenDirection"": ""Input""}""#
        for day in 1...31 {
            _ = try await store.ingest([
                S.event("h\(day)", model: "claude-haiku-4-5", type: "input", quantity: 100_000, day: day, vendor: "anthropic"),
                S.event("s\(day)", model: "claude-sonnet-4-5", type: "input", quantity: 100_000, day: day, vendor: "anthropic"),
            ])
            let from = String(format: "2026-05-%02dT00:00:00Z", day)
            let to = day == 31 ? "2026-06-01T00:00:00Z" : String(format: "2026-05-%02dT00:00:00Z", day + 1)
            daily += "0.10,USD,Usage,\(from),\(to),100000,Tokens,\(haiku),Anthropic\n"
        }
        let sonnet = #""{""ModelId"": ""claude-sonnet-4-5"", ""TokenDirection"": ""Input""}""#
        let month = """
            BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,SkuPriceDetails,ProviderName
            6.00,USD,Usage,2026-05-01T00:00:00Z,2026-06-01T00:00:00Z,2000000,Tokens,\(sonnet),Anthropic

            """
        let o = ReconciliationOptions(
            vendor: "focus", invoices: [InvoiceFile(name: "a.csv", bytes: Array(month.utf8)), InvoiceFile(name: "b.csv", bytes: Array(daily.utf8))],
            range: S.may, account: "acct_42")
        let r = try await service.engine.run(o, store: store)
        let reason = r.reasons.first { $0.code == "long_lines_may_be_unfinished" }
        #expect(reason?.modelID == "claude-sonnet-4-5", "\(r.reasons.map(\.code))")
        #expect(!r.corrections.contains { $0.quantity < 0 }, "\(r.corrections.map(\.quantity))")
        #expect(!r.reasons.contains { $0.code == "long_lines_may_be_unfinished" && $0.modelID == "claude-haiku-4-5" })
    }

    /// The FOCUS card knows no aliases: a rule naming `claude-sonnet-4-5-20250929` matched nothing
    /// there while `rules test` passed it. Names the run's card does not know are read through
    /// every shipped card that agrees on them.
    @Test func aRuleNamingADatedModelAppliesToAFOCUSRun() async throws {
        let store = try S.store()
        _ = try await store.ingest([S.event("a", model: "claude-sonnet-4-5", type: "input", quantity: 700_000, day: 3, vendor: "anthropic")])
        let sku = #""{""ModelId"": ""claude-sonnet-4-5"", ""TokenDirection"": ""Input""}""#
        let csv = """
            BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,SkuPriceDetails,ProviderName
            3.00,USD,Usage,2026-05-03T00:00:00Z,2026-05-04T00:00:00Z,1000000,Tokens,\(sku),Anthropic

            """
        let rules = try ClassificationRules.load(
            text: "version: 1\nrules:\n  - id: ours\n    when: {model: claude-sonnet-4-5-20250929}\n    class: pass_through\n", file: "team.yaml")
        var o = ReconciliationOptions(
            vendor: "focus", invoices: [InvoiceFile(name: "f.csv", bytes: Array(csv.utf8))],
            range: try TimeRange(from: "2026-05-03T00:00:00Z", to: "2026-05-04T00:00:00Z"), account: "acct_42")
        o.teamRules = rules
        let r = try await service.engine.run(o, store: store)
        #expect(r.findings.first?.rule == "ours" && r.corrections.isEmpty, "\(r.findings.map(\.rule)) \(r.corrections.map(\.quantity))")
    }
}
