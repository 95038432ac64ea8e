import Foundation
import Metering
import ReconCore
import ReconPlugins
import Testing

/// What a parser or the engine dropped from a line, found by an outside tester as wrong corrections
/// on conclusive runs: a speed or modality the card prices apart, a vendor label spelt another
/// way, an account map that names two accounts for one line, a surcharge inside a line's money, a
/// quantity rounded before it was scaled, and rows exported twice. Expected answers decided before
/// the run; each proposed a correction (or a spurious gap) before its fix.
extension MessyMonthEndTests {
    /// An Anthropic cost report bucket of May 10 with these results (`amount` in cents).
    func anthropicCostReport(_ results: [String]) -> InvoiceFile {
        file(
            "cost_report.json",
            #"{"data":[{"starting_at":"2026-05-10T00:00:00Z","ending_at":"2026-05-11T00:00:00Z","results":[\#(results.joined(separator: ","))]}],"has_more":false,"next_page":null}"#
        )
    }

    func anthropicCost(_ model: String, _ tokenType: String, cents: String, speed: String? = nil) -> String {
        #"{"amount":"\#(cents)","currency":"USD","cost_type":"tokens","model":"\#(model)","token_type":"\#(tokenType)","service_tier":"standard","context_window":"0-200k","workspace_id":"wrkspc_01A""#
            + (speed.map { #","speed":"\#($0)""# } ?? "") + "}"
    }

    /// Fast mode is priced at 2× on Opus 4.8: 700,000 tokens at $5 and 300,000 at $10 a million
    /// are the meter's 1,000,000. The cost report's `speed` was not read: +300,000 was proposed.
    @Test func anthropicCostReportPricesFastModeAtItsOwnRate() async throws {
        let opus = try await store([("acct_42", "claude-opus-4-8", "input", 1_000_000, 10)], vendor: "anthropic")
        let report = anthropicCostReport([
            anthropicCost("claude-opus-4-8", "uncached_input_tokens", cents: "350"),
            anthropicCost("claude-opus-4-8", "uncached_input_tokens", cents: "300", speed: "fast"),
        ])
        let r = try await run("anthropic", [report], opus, account: "acct_42") {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(r.models.first?.tokenTypes.map(\.vendor) == [1_000_000], "\(r.models)")
        #expect(r.findings.isEmpty && r.corrections.isEmpty, "\(r.findings)")
        // A model the card has no fast price for is never priced at its base rate.
        let haiku = try await store([("acct_42", "claude-haiku-4-5", "input", 1_000_000, 10)], vendor: "anthropic")
        let unpriced = try await run(
            "anthropic", [anthropicCostReport([anthropicCost("claude-haiku-4-5", "uncached_input_tokens", cents: "200", speed: "fast")])], haiku,
            account: "acct_42"
        ) {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(unpriced.unmapped.map(\.reason) == ["no_rate_for_tier"] && unpriced.corrections.isEmpty, "\(unpriced.unmapped)")
        // Labels in another letter case are the same labels: `Batch` and `FAST` were tiers no card prices.
        let shouted = anthropicCostReport([
            anthropicCost("claude-opus-4-8", "uncached_input_tokens", cents: "350").replacingOccurrences(of: #""standard""#, with: #""Standard""#),
            anthropicCost("claude-opus-4-8", "uncached_input_tokens", cents: "300", speed: "FAST"),
        ])
        let read = try await run("anthropic", [shouted], opus, account: "acct_42") {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(read.models.first?.tokenTypes.map(\.vendor) == [1_000_000] && read.unmapped.isEmpty, "\(read.unmapped)")
    }

    /// A cost report billing two workspaces beside a usage report of one: the usage report's
    /// count stood for the day's money of both, and the other workspace's 1,000,000 tokens were
    /// proposed as over-metering. Held; a usage report of both workspaces is read as before.
    @Test func aUsageReportOfFewerWorkspacesThanTheMoneyHoldsNegativeCorrections() async throws {
        let store = try await store([("acct_42", "claude-sonnet-4-6", "input", 3_000_000, 10)], vendor: "anthropic")
        let costA = anthropicCost("claude-sonnet-4-6", "uncached_input_tokens", cents: "600")
        var costB = anthropicCost("claude-sonnet-4-6", "uncached_input_tokens", cents: "300")
        costB = costB.replacingOccurrences(of: "wrkspc_01A", with: "wrkspc_01B")
        func usage(_ rows: [(workspace: String, tokens: Int)]) -> InvoiceFile {
            let results = rows.map {
                #"{"model":"claude-sonnet-4-6","workspace_id":"\#($0.workspace)","service_tier":"standard","context_window":"0-200k","uncached_input_tokens":\#($0.tokens)}"#
            }
            return file(
                "usage_report.json",
                #"{"data":[{"starting_at":"2026-05-10T00:00:00Z","ending_at":"2026-05-11T00:00:00Z","results":[\#(results.joined(separator: ","))]}],"has_more":false,"next_page":null}"#
            )
        }
        let r = try await run("anthropic", [anthropicCostReport([costA, costB]), usage([("wrkspc_01A", 2_000_000)])], store, account: "acct_42") {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        let held = try #require(r.reasons.first { $0.code == "stated_quantities_cover_part" }, "\(r.reasons.map(\.code))")
        #expect(held.effect == .blocksNegative && held.detail.contains("workspace_id=wrkspc_01B"), "\(held.detail)")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        let both = try await run(
            "anthropic", [anthropicCostReport([costA, costB]), usage([("wrkspc_01A", 2_000_000), ("wrkspc_01B", 1_000_000)])], store, account: "acct_42"
        ) {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(both.reasons.isEmpty && both.findings.isEmpty, "\(both.reasons.map(\.code)) \(both.findings)")
    }

    /// A cost report billing the standard and batch tiers beside a usage report pulled for the
    /// standard tier: its count stood for the day's money of both, and the batch tokens were
    /// proposed off the meter (an outside tester: −30,277,866 of a Sonnet month, exact meter).
    /// Held; a usage report of both tiers, or of none (not grouped by tier), is read as before.
    @Test func aUsageReportOfFewerTiersThanTheMoneyHoldsTheCell() async throws {
        let store = try await store([("acct_42", "claude-sonnet-4-6", "input", 3_000_000, 10)], vendor: "anthropic")
        let standard = anthropicCost("claude-sonnet-4-6", "uncached_input_tokens", cents: "600")
        let batch = anthropicCost("claude-sonnet-4-6", "uncached_input_tokens", cents: "150").replacingOccurrences(
            of: #""service_tier":"standard""#, with: #""service_tier":"batch""#)
        func usage(_ rows: [(tier: String?, tokens: Int)]) -> InvoiceFile {
            let results = rows.map {
                #"{"model":"claude-sonnet-4-6","workspace_id":"wrkspc_01A","# + ($0.tier.map { #""service_tier":"\#($0)","# } ?? "")
                    + #""context_window":"0-200k","uncached_input_tokens":\#($0.tokens)}"#
            }
            return file(
                "usage_report.json",
                #"{"data":[{"starting_at":"2026-05-10T00:00:00Z","ending_at":"2026-05-11T00:00:00Z","results":[\#(results.joined(separator: ","))]}],"has_more":false,"next_page":null}"#
            )
        }
        func run(_ rows: [(tier: String?, tokens: Int)]) async throws -> ReconciliationReport {
            try await self.run("anthropic", [anthropicCostReport([standard, batch]), usage(rows)], store, account: "acct_42") {
                $0.range = Self.mayDay(10)
                $0.invoiceScope = .account
            }
        }
        let r = try await run([("standard", 2_000_000)])
        let held = try #require(r.reasons.first { $0.code == "stated_quantities_omit_tiers" }, "\(r.reasons.map(\.code))")
        #expect(held.effect == .blocksCell && held.detail.contains("service_tier=batch"), "\(held.detail)")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        for rows in [[("standard", 2_000_000), ("batch", 1_000_000)], [(nil, 3_000_000)]] as [[(tier: String?, tokens: Int)]] {
            let whole = try await run(rows)
            #expect(
                !whole.reasons.contains { $0.code == "stated_quantities_omit_tiers" } && whole.models.first?.tokenTypes.map(\.vendor) == [3_000_000]
                    && whole.findings.isEmpty,
                "\(rows): the batch money priced at its own rate pays for the count: \(whole.reasons.map(\.code)) \(whole.findings)")
        }
        // Pulled for the standard tier and not grouped by it (no tier on its rows): the batch money
        // buys 1,000,000 tokens the count lacks, and they were proposed off the meter.
        let filtered = try await run([(nil, 2_000_000)])
        let gap = try #require(filtered.findings.first { $0.rule != "stated-quantity" }, "\(filtered.findings)")
        #expect(gap.quantity == -1_000_000 && gap.reason == "amount_matches_meter_not_stated_quantity", "\(gap)")
        #expect(filtered.corrections.isEmpty && filtered.held.isEmpty, "\(filtered.corrections.map(\.quantity))")
    }

    /// An OpenAI Costs API page of May 10.
    func openAICosts(_ results: [String]) -> InvoiceFile {
        file(
            "costs.json",
            #"{"object":"page","has_more":false,"next_page":null,"data":[{"object":"bucket","start_time":1778371200,"end_time":1778457600,"results":[\#(results.joined(separator: ","))]}]}"#
        )
    }

    func openAICost(_ item: String, _ dollars: String, extra: String = "") -> String {
        #"{"object":"organization.costs.result","amount":{"value":\#(dollars),"currency":"usd"},"line_item":"\#(item)","project_id":"proj_abc"\#(extra)}"#
    }

    /// Audio input tokens at $40 a million were priced at gpt-4o's $2.50 text rate: $0.40 became
    /// 160,000 text tokens and +150,000 was proposed. Audio has no price on the card: unpriced,
    /// and the model's input waits (the meter counted the audio tokens as input).
    @Test func openAIAudioTokensAreNeverPricedAsText() async throws {
        let store = try await store([("acct_42", "gpt-4o-2024-08-06", "input", 1_010_000, 10)], vendor: "openai")
        let r = try await run(
            "openai", [openAICosts([openAICost("gpt-4o-2024-08-06, input", "2.5"), openAICost("gpt-4o-2024-08-06 audio, input", "0.4")])],
            store, account: "acct_42"
        ) {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections)")
        #expect(r.unmapped.map(\.reason) == ["no_rate_for_tier"], "\(r.unmapped)")
        #expect(r.models.first?.tokenTypes.map(\.vendor) == [1_000_000], "the text input alone: \(r.models)")
        // "text" is the base price.
        let text = try await run("openai", [openAICosts([openAICost("gpt-4o-2024-08-06 text, input", "2.525")])], store, account: "acct_42") {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(text.unmapped.isEmpty && text.findings.isEmpty, "\(text.unmapped) \(text.findings)")
    }

    /// A model's line whose token class is not read ("audio input"), or that says more than is
    /// read ("input, realtime"), was "not usage": its money left the vendor's side short, and the
    /// meter's audio counted as input read as over-metering (−160,000 proposed). It stays the
    /// model's usage of an unknown token type, which holds the model's downward corrections.
    @Test func anOpenAILineOfAnUnreadTokenClassHoldsItsModel() async throws {
        for item in ["gpt-4o-2024-08-06, audio input", "gpt-4o-2024-08-06, input, realtime"] {
            let store = try await store([("acct_42", "gpt-4o-2024-08-06", "input", 1_160_000, 10)], vendor: "openai")
            let r = try await run(
                "openai", [openAICosts([openAICost("gpt-4o-2024-08-06, input", "2.5"), openAICost(item, "0.4")])], store, account: "acct_42"
            ) {
                $0.range = Self.mayDay(10)
                $0.invoiceScope = .account
            }
            #expect(!r.corrections.contains { $0.quantity < 0 }, "\(item): \(r.corrections.map(\.quantity))")
            #expect(r.unmapped.map(\.reason) == ["unknown_token_type"] && r.unmapped.first?.vendorModel == "gpt-4o-2024-08-06", "\(item): \(r.unmapped)")
        }
        // Not a model's tokens at all: still not usage.
        let store = try await store([("acct_42", "gpt-4o-2024-08-06", "input", 1_000_000, 10)], vendor: "openai")
        let tools = try await run(
            "openai", [openAICosts([openAICost("gpt-4o-2024-08-06, input", "2.5"), openAICost("web search tool calls", "0.4")])], store,
            account: "acct_42"
        ) {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(tools.unmapped.map(\.reason) == ["not_usage"] && tools.findings.isEmpty, "\(tools.unmapped) \(tools.findings)")
    }

    /// A Vertex row of a model's token SKU whose `cost_type` the export does not document (a row
    /// cut to `regu`), or a SKU of a model naming no token class, was "not usage": the vendor's
    /// side came out short and −500,000 was proposed. A charge now stays the model's usage of an
    /// unread token class (downward corrections held); money given back under an unknown kind is
    /// set aside as a refund (the cell held: +500,000 was proposed). A documented `tax` row stays
    /// not usage.
    @Test func aVertexRowOfAnUnknownCostTypeOrTokenClassHoldsItsModel() async throws {
        for second in [
            Self.vertexRow(cost: "0.15", 500_000, "regu"), Self.vertexRow("Gemini 2.5 Flash GA Live API Tokens - Predictions", cost: "0.15", 500_000),
        ] {
            let r = try await vertexMay10(metered: 1_500_000, [Self.vertexRow(cost: "0.30", 1_000_000), second])
            #expect(r.corrections.isEmpty && r.held.isEmpty, "\(second): \(r.corrections.map(\.quantity))")
            #expect(
                r.reasons.contains { $0.code == "unknown_token_type" && $0.modelID == "gemini-2.5-flash" } && r.findings.first?.quantity == -500_000,
                "\(second): \(r.reasons.map(\.code)) \(r.findings.map(\.quantity))")
        }
        let back = try await vertexMay10(metered: 1_000_000, [Self.vertexRow(cost: "0.45", 1_500_000), Self.vertexRow(cost: "-0.15", -500_000, "promotion")])
        #expect(back.corrections.isEmpty && back.held.isEmpty, "\(back.corrections.map(\.quantity))")
        #expect(back.reasons.contains { $0.code == "usage_refund" && $0.modelID == "gemini-2.5-flash" }, "\(back.reasons.map(\.code))")
        let tax = try await vertexMay10(metered: 1_000_000, [Self.vertexRow(cost: "0.30", 1_000_000), Self.vertexRow(cost: "0.02", 0, "tax")])
        #expect(tax.reasons.isEmpty && tax.findings.isEmpty && tax.unmapped.map(\.reason) == ["not_usage:tax"], "\(tax.reasons) \(tax.unmapped)")
    }

    /// A cost result giving 500,000 tokens back beside usage that matches the meter was netted,
    /// and −500,000 was proposed (the customer's bill lowered on the vendor's word). Tokens given
    /// back by any format are set aside as a refund and hold the cell, as CUR and UBL refunds do.
    @Test func negativeTokensInAnyFormatAreARefundNotNetted() async throws {
        let store = try await store([("acct_42", "gpt-4o-2024-08-06", "input", 1_000_000, 10)], vendor: "openai")
        let stated = #","quantity":1000000,"quantity_unit":"tokens""#, back = #","quantity":-500000,"quantity_unit":"tokens""#
        let r = try await run(
            "openai",
            [openAICosts([openAICost("gpt-4o-2024-08-06, input", "2.5", extra: stated), openAICost("gpt-4o-2024-08-06, input", "-1.25", extra: back)])],
            store, account: "acct_42"
        ) {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        #expect(r.unmapped.map(\.reason) == ["refund"] && r.models.first?.tokenTypes.map(\.vendor) == [1_000_000], "\(r.unmapped) \(r.models)")
    }

    /// `quantity_unit: 1000_tokens` with a fraction: 1234.678 thousand tokens are 1,234,678
    /// (rounded first it read 1,235,000). A count still not whole once scaled is refused by field.
    @Test func openAIThousandTokenQuantitiesAreScaledBeforeTheyMustBeWhole() throws {
        let parser = try #require(PluginExampleTests.registry.plugin("openai")?.parsers.first { $0.id == "costs-api" })
        let stated = try parser.parse(
            openAICosts([openAICost("gpt-4o-2024-08-06, input", "3.086695", extra: #","quantity":1234.678,"quantity_unit":"1000_tokens""#)]))
        #expect(stated.lines.map(\.quantity) == [1_234_678])
        #expect {
            try parser.parse(
                self.openAICosts([self.openAICost("gpt-4o-2024-08-06, input", "3", extra: #","quantity":1234.6785,"quantity_unit":"1000_tokens""#)]))
        } throws: { ($0 as? InvoiceError)?.description.contains("data[0].results[0].quantity") == true }
        #expect {
            try parser.parse(self.openAICosts([self.openAICost("gpt-4o-2024-08-06, input", "3", extra: #","quantity":12.5,"quantity_unit":"tokens""#)]))
        } throws: { ($0 as? InvoiceError)?.description.contains("is not a whole number of tokens") == true }
    }

    /// FOCUS quantities in blocks the unit names another way ("1K Tokens"): the block was read
    /// as 1, so 1,400 thousand tokens counted as 1,400. Every spelling is read; one it cannot read
    /// is refused naming the column, and a fraction of a token is refused, not rounded.
    @Test func focusBlocksOfTokensAreReadInEverySpellingOrRefused() throws {
        let parser = try #require(PluginExampleTests.registry.plugin("focus")?.parsers.first)
        func parse(_ quantity: String, _ unit: String, column: String = "PricingQuantity") throws -> Int64? {
            let unitColumn = column == "PricingQuantity" ? "PricingUnit" : "ConsumedUnit"
            let csv =
                "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,\(column),\(unitColumn),SkuPriceDetails\n"
                + #"1.50,USD,Usage,2026-05-01T00:00:00Z,\#(quantity),\#(unit),"{""ModelId"": ""m"", ""TokenDirection"": ""Input""}""#
            return try parser.parse(file("focus.csv", csv)).lines.first?.quantity
        }
        for (quantity, unit, tokens) in [
            ("1400", "1K Tokens", Int64(1_400_000)), ("1.4", "1M Tokens", 1_400_000), ("1.4", "1 Million Tokens", 1_400_000),
            ("1400", "Thousand Tokens", 1_400_000), ("1400", "\"1,000 Tokens\"", 1_400_000), ("1.4", "1000000 Tokens", 1_400_000),
            ("1400000", "Tokens", 1_400_000), ("1400000", "Input Tokens", 1_400_000),
        ] {
            #expect(try parse(quantity, unit) == tokens, "\(quantity) \(unit)")
        }
        #expect(try parse("1400", "1K Tokens", column: "ConsumedQuantity") == 1_400_000)
        // "Token", singular, was no count: every row was money at a model no card knew (tester Q).
        #expect(try parse("1400000", "Token", column: "ConsumedQuantity") == 1_400_000)
        #expect(try parse("1400", "1K Token") == 1_400_000)
        #expect { try parse("1400", "1.5x Tokens") } throws: { ($0 as? InvoiceError)?.description.contains("PricingUnit") == true }
        #expect { try parse("1.0000005", "1M Tokens") } throws: { ($0 as? InvoiceError)?.description.contains("PricingQuantity") == true }
    }

    /// FOCUS rows of a named model counting Requests, not tokens: held as before, but the run said
    /// every line named "a model the card does not know" and to add it to the card (tester Q).
    /// It names the unit now; the hold is the same.
    @Test func focusRowsCountingAnotherUnitSayTheUnitNotAnUnknownModel() async throws {
        let store = try await store([("acct_42", "solora-atlas-5.5", "input", 1_000_000, 3)], vendor: "focus")
        let csv =
            "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,SkuPriceDetails\n"
            + #"5.00,USD,Usage,2026-05-03T00:00:00Z,2026-05-04T00:00:00Z,1780,Requests,"{""ModelId"": ""solora-atlas-5.5"", ""TokenDirection"": ""Input""}""#
            + "\n"
        let r = try await run("focus", [file("focus.csv", csv)], store, account: "acct_42") { $0.range = Self.mayDay(3) }
        #expect(r.unmapped.map(\.reason) == ["unit_not_tokens:Requests"], "\(r.unmapped)")
        let unplaced = try #require(r.reasons.first { $0.code == "unplaced_vendor_usage" })
        #expect(unplaced.detail.contains("count Requests, not tokens, of solora-atlas-5.5") && unplaced.effect == .blocksNegative, "\(unplaced.detail)")
        #expect(!r.reasons.contains { $0.detail.contains("name a model the card does not know") }, "\(r.reasons.map(\.detail))")
        #expect(r.corrections.isEmpty && r.verdict == .inconclusive, "\(r.corrections)")
    }

    /// FOCUS rows that are no tokens served, found by a second outside round: a commitment's
    /// unused part (a Usage row with no ConsumedQuantity, its PricingQuantity bought) became
    /// +31M of untracked usage; a money-only price correction became +3M through its
    /// PricingQuantity; a correction row listed twice was netted twice (−500,000); and an export of
    /// two billing accounts without sub-accounts was taken as one account's (+31M).
    @Test func focusRowsThatServedNoTokensAreNotCountedAsTokens() async throws {
        let store = try await store([("acct_42", "solora-atlas-5.5", "input", 1_000_000, 3)], vendor: "focus")
        let header =
            "BilledCost,BillingAccountId,BillingCurrency,ChargeCategory,ChargeClass,CommitmentDiscountStatus,ChargePeriodStart,ChargePeriodEnd,"
            + "ConsumedQuantity,ConsumedUnit,PricingQuantity,PricingUnit,SkuPriceDetails\n"
        let details = #""{""ModelId"": ""solora-atlas-5.5"", ""TokenDirection"": ""Input""}""#
        func row(_ cost: String, account: String = "ba-1", class charge: String = "", status: String = "", consumed: String, priced: String) -> String {
            "\(cost),\(account),USD,Usage,\(charge),\(status),2026-05-03T00:00:00Z,2026-05-04T00:00:00Z,\(consumed),Tokens,\(priced),1000000 Tokens,\(details)\n"
        }
        let usage = row("5.00", consumed: "1000000", priced: "1")
        func reconcile(_ rows: [String]) async throws -> ReconciliationReport {
            try await run("focus", [file("focus.csv", header + rows.joined())], store, account: "acct_42") { $0.range = Self.mayDay(3) }
        }
        let unused = try await reconcile([usage, row("5.00", status: "Unused", consumed: "", priced: "1")])
        #expect(unused.corrections.isEmpty && unused.findings.isEmpty, "\(unused.corrections.map(\.quantity))")
        #expect(unused.unmapped.map(\.reason) == ["commitment_unused"], "\(unused.unmapped)")
        let priceFix = try await reconcile([usage, row("-1.50", class: "Correction", consumed: "", priced: "3")])
        #expect(priceFix.corrections.isEmpty && priceFix.models.first?.tokenTypes.map(\.vendor) == [1_000_000], "\(priceFix.models)")
        let restated = row("-2.50", class: "Correction", consumed: "-500000", priced: "")
        await #expect {
            _ = try await reconcile([row("7.50", consumed: "1500000", priced: "1.5"), restated, restated])
        } throws: { ($0 as? UsageBoxError)?.message.contains("lists the same line twice") == true }
        let twoAccounts = try await reconcile([usage, row("5.00", account: "ba-2", consumed: "1000000", priced: "1")])
        #expect(twoAccounts.verdict == .inconclusive && twoAccounts.reasons.map(\.code).contains("several_attributions_in_invoice"))
        #expect(twoAccounts.corrections.isEmpty)
    }

    /// Usage a second gateway labels `vendor=bedrock` is aws-bedrock's under another spelling:
    /// set aside as another vendor's, the bill's 300,000 more than the meter was proposed.
    @Test func aVendorLabelSpeltAnotherWayHoldsPositiveCorrections() async throws {
        let store = try await store([("acct_b", "claude-sonnet-4-6", "input", 700_000, 10)], vendor: "aws-bedrock")
        _ = try await store.ingest([S.event("other", account: "acct_b", model: "claude-sonnet-4-6", type: "input", quantity: 300_000, vendor: "bedrock")])
        let cur = Self.curHeader + Self.curRow("Usage", 10, "USE1-Claude4.6Sonnet-input-tokens", 1000, "3.0")
        let r = try await run("aws-bedrock", [file("cur.csv", cur)], store, account: "acct_b") { $0.range = Self.mayDay(10) }
        #expect(r.reasons.map(\.code).contains("metered_under_unknown_vendor"), "\(r.reasons.map(\.code))")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections)")

        let spelt = { (vendor: String) in service.engine.misspellings(of: [vendor]) }
        #expect(["bedrock", "AWS Bedrock", "amazon-bedrock", "aws"].allSatisfy(spelt("aws-bedrock")))
        #expect(["azure", "Azure OpenAI", "microsoft"].allSatisfy(spelt("azure-openai")))
        #expect(["vertex", "google", "Google Cloud", "vertex-ai"].allSatisfy(spelt("google-vertex")))
        // Known vendors and other sellers are their own; short fragments are no spelling.
        #expect(!["openai", "anthropic", "openrouter", "litellm", "ai", "gcp"].contains(where: spelt("azure-openai")))
        #expect(!["anthropic", "openrouter", "ai"].contains(where: spelt("aws-bedrock")))
    }

    /// One line, two accounts: its project mapped to one and its API key to another. The first
    /// id in sort order won (the usage moved between accounts, corrected on both). Refused.
    @Test func anAccountMapNamingTwoAccountsForOneLineIsRefused() async throws {
        let store = try await store([("acct_a", "gpt-4o-2024-08-06", "input", 1_000_000, 10)], vendor: "openai")
        let costs = openAICosts([openAICost("gpt-4o-2024-08-06, input", "2.5", extra: #","api_key_id":"key_b""#)])
        await #expect {
            _ = try await self.run("openai", [costs], store) {
                $0.range = Self.mayDay(10)
                $0.accountMap = ["proj_abc": "acct_a", "key_b": "acct_b"]
            }
        } throws: { e in
            let message = (e as? UsageBoxError)?.message ?? ""
            return message.contains("sends this line to acct_b (api_key_id key_b) and acct_a (project_id proj_abc)") && message.contains("costs.json")
        }
        // Both ids to the same account: no question.
        let r = try await run("openai", [costs], store) {
            $0.range = Self.mayDay(10)
            $0.accountMap = ["proj_abc": "acct_a", "key_b": "acct_a"]
        }
        #expect(r.findings.isEmpty, "\(r.findings)")
    }

    /// A UBL line of money alone (1 × E48) with its own surcharge of 27.90 inside its
    /// LineExtensionAmount: converted at list price the surcharge became +9,300,000 tokens.
    @Test func aUBLLineWithItsOwnSurchargeHoldsPositiveCorrections() async throws {
        let store = try S.store()
        _ = try await store.ingest([S.event("i", model: "claude-sonnet-4-6", type: "input", quantity: 93_000_000)])
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
                xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
                xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
              <cbc:ID>ACME-2026-05</cbc:ID>
              <cbc:IssueDate>2026-06-01</cbc:IssueDate>
              <cbc:DocumentCurrencyCode>USD</cbc:DocumentCurrencyCode>
              <cac:InvoicePeriod><cbc:StartDate>2026-05-01</cbc:StartDate><cbc:EndDate>2026-05-31</cbc:EndDate></cac:InvoicePeriod>
              <cac:AccountingSupplierParty><cac:Party><cac:PartyName><cbc:Name>Acme AI</cbc:Name></cac:PartyName></cac:Party></cac:AccountingSupplierParty>
              <cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="USD">306.90</cbc:LineExtensionAmount><cbc:PayableAmount currencyID="USD">306.90</cbc:PayableAmount></cac:LegalMonetaryTotal>
              <cac:InvoiceLine>
                <cbc:ID>1</cbc:ID>
                <cbc:InvoicedQuantity unitCode="E48">1</cbc:InvoicedQuantity>
                <cbc:LineExtensionAmount currencyID="USD">306.90</cbc:LineExtensionAmount>
                <cac:AllowanceCharge><cbc:ChargeIndicator>true</cbc:ChargeIndicator><cbc:AllowanceChargeReason>Priority processing 10%</cbc:AllowanceChargeReason><cbc:Amount currencyID="USD">27.90</cbc:Amount></cac:AllowanceCharge>
                <cac:Item><cbc:Name>Claude Sonnet 4.6 - Input Tokens</cbc:Name></cac:Item>
                <cac:Price><cbc:PriceAmount currencyID="USD">306.90</cbc:PriceAmount></cac:Price>
              </cac:InvoiceLine>
            </Invoice>
            """
        let r = try await run("ubl", [file("acme.xml", xml)], store, account: "acct_42") {
            $0.rateCard = try! UBLInvoiceTests.acmeCard()
            $0.invoiceScope = .account
        }
        let held = try #require(r.reasons.first { $0.code == "amounts_may_include_charges" }, "\(r.reasons.map(\.code))")
        #expect(held.effect == .blocksPositive && held.detail.contains("'Priority processing 10%'"), "\(held.detail)")
        #expect(r.findings.map(\.quantity) == [9_300_000] && r.corrections.isEmpty && r.held.isEmpty, "\(r.findings)")
    }

    /// A USD invoice with one line's amount tagged EUR: its number was added to the document's
    /// USD total as if it were USD (the total check passed), and converted with `--fx` it was
    /// corrected (+2,302,789 on an exact meter). UBL writes every amount but the tax total in the
    /// document's currency: refused, naming the line.
    @Test func aUBLLineInAnotherCurrencyThanItsDocumentIsRefused() throws {
        let parser = try #require(PluginExampleTests.registry.plugin("ubl")?.parsers.first)
        let example = try #require(PluginExampleTests.examples.first { $0.example.file.name == "ubl_ai_invoice.xml" }).example.file.text
        let marker = #"<b:LineExtensionAmount currencyID="USD">37.04</b:LineExtensionAmount>"#
        #expect(example.contains(marker))
        #expect(throws: Never.self) { try parser.parse(file("ubl_ai_invoice.xml", example)) }
        let mixed = example.replacingOccurrences(of: marker, with: marker.replacingOccurrences(of: "USD", with: "EUR"))
        let error = #expect(throws: InvoiceError.self) { try parser.parse(file("ubl_ai_invoice.xml", mixed)) }
        #expect(
            error?.description.contains("ubl_ai_invoice.xml:") == true && error?.description.contains("currencyID EUR is not the document's currency") == true,
            "\(String(describing: error))")
    }

    /// A May invoice whose lines of one item say May 1–20 (`InvoiceLine/InvoicePeriod`): the
    /// document's period covered the whole month and the meter's May 21–31 were proposed as
    /// over-metering. The file is named as not the whole bill; an item billed on lines covering
    /// the month between them is whole.
    @Test func aUBLItemWhoseLinesBillPartOfTheInvoicePeriodIsNotTheWholeBill() throws {
        let parser = try #require(PluginExampleTests.registry.plugin("ubl")?.parsers.first)
        func invoice(_ lines: [(item: String, from: String, to: String)], total: String? = nil) -> InvoiceFile {
            let body = lines.enumerated().map { i, l in
                """
                <cac:InvoiceLine><cbc:ID>\(i + 1)</cbc:ID><cbc:InvoicedQuantity unitCode="MIO">1</cbc:InvoicedQuantity>
                <cbc:LineExtensionAmount currencyID="USD">3.00</cbc:LineExtensionAmount>
                <cac:InvoicePeriod><cbc:StartDate>\(l.from)</cbc:StartDate><cbc:EndDate>\(l.to)</cbc:EndDate></cac:InvoicePeriod>
                <cac:Item><cbc:Name>\(l.item)</cbc:Name></cac:Item><cac:Price><cbc:PriceAmount currencyID="USD">3.00</cbc:PriceAmount></cac:Price></cac:InvoiceLine>
                """
            }.joined(separator: "\n")
            return file(
                "acme.xml",
                """
                <?xml version="1.0" encoding="UTF-8"?>
                <Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
                    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
                    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
                  <cbc:ID>ACME-2026-05</cbc:ID><cbc:IssueDate>2026-06-01</cbc:IssueDate><cbc:DocumentCurrencyCode>USD</cbc:DocumentCurrencyCode>
                  <cac:InvoicePeriod><cbc:StartDate>2026-05-01</cbc:StartDate><cbc:EndDate>2026-05-31</cbc:EndDate></cac:InvoicePeriod>
                \(total.map { "<cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID=\"USD\">\($0)</cbc:LineExtensionAmount></cac:LegalMonetaryTotal>" } ?? "")
                \(body)
                </Invoice>
                """)
        }
        let cut = try parser.parse(
            invoice([("Claude Sonnet 4.6 - Input Tokens", "2026-05-01", "2026-05-20"), ("Claude Sonnet 4.6 - Output Tokens", "2026-05-01", "2026-05-31")]))
        #expect(
            cut.coverage.incomplete == [
                "acme.xml: the lines of 'Claude Sonnet 4.6 - Input Tokens' bill the invoice period (2026-05-01 to 2026-05-31) but not "
                    + "2026-05-21 to 2026-05-31: that part of it is not billed in this file"
            ], "\(cut.coverage.incomplete)")
        let whole = try parser.parse(
            invoice([
                ("Claude Sonnet 4.6 - Input Tokens", "2026-05-01", "2026-05-20"), ("Claude Sonnet 4.6 - Input Tokens", "2026-05-21", "2026-05-31"),
            ]))
        #expect(whole.coverage.incomplete.isEmpty, "\(whole.coverage.incomplete)")
        // An item first billed on May 12 is named by the days it leaves out (was "only up to 2026-04-30").
        let late = try parser.parse(invoice([("Claude Opus 4.8 - Input Tokens", "2026-05-12", "2026-05-31")]))
        #expect(late.coverage.incomplete.map { $0.contains("but not 2026-05-01 to 2026-05-11:") } == [true], "\(late.coverage.incomplete)")
        // Lines of a day each, in a document whose line total they sum to, leave days out as daily
        // usage does: judged day by day by the engine. Without that total, the days are named.
        let dayLines: [(item: String, from: String, to: String)] = [
            ("Claude Opus 4.8 - Input Tokens", "2026-05-12", "2026-05-12"), ("Claude Opus 4.8 - Input Tokens", "2026-05-14", "2026-05-14"),
        ]
        let daily = try parser.parse(invoice(dayLines, total: "6.00"))
        #expect(daily.coverage.incomplete.isEmpty, "\(daily.coverage.incomplete)")
        let unvouched = try parser.parse(invoice(dayLines))
        #expect(
            unvouched.coverage.incomplete.map { $0.contains("but not 2026-05-01 to 2026-05-11, 2026-05-13, 2026-05-15 to 2026-05-31:") } == [true],
            "\(unvouched.coverage.incomplete)")
    }

    /// A Vertex export in six-hour windows that lost one row (May 10's noon output: a BigQuery
    /// pull cut at a row limit, rows in no order), its input billed in that window: read as
    /// over-metering (−100,000 proposed on an exact meter). Held for that cell; whole, exact.
    @Test func aVertexWindowMissingBesideItsModelsOtherRowsHoldsOverMetering() async throws {
        let store = try await store(
            (8...12).flatMap { [("acct_a", "gemini-2.5-flash", "input", 4_000_000, $0), ("acct_a", "gemini-2.5-flash", "output", 400_000, $0)] },
            vendor: "google-vertex")
        func row(_ day: Int, _ hour: Int, output: Bool) -> String {
            let from = "2026-05-\(String(format: "%02d", day))T\(String(format: "%02d", hour)):00:00Z"
            let to = "2026-05-\(String(format: "%02d", day))T\(String(format: "%02d", hour + 5)):59:59Z"
            return
                #"{"service":{"description":"Vertex AI"},"sku":{"description":"Gemini 2.5 Flash GA Text \#(output ? "Output" : "Input") - Predictions"},"usage_start_time":"\#(from)","usage_end_time":"\#(to)","project":{"id":"proj-a"},"cost":\#(output ? "0.25" : "0.3"),"currency":"USD","usage":{"amount":\#(output ? 100000 : 1000000),"unit":"count"},"credits":[],"cost_type":"regular","export_time":"2026-05-13T06:00:00Z"}"#
        }
        func export(losing lost: (day: Int, hour: Int)?) -> InvoiceFile {
            let rows = (8...12).flatMap { d in
                [0, 6, 12, 18].flatMap { h in [row(d, h, output: false)] + (lost.map { $0 == (d, h) } == true ? [] : [row(d, h, output: true)]) }
            }
            return file("billing.json", rows.joined(separator: "\n"))
        }
        let days = try TimeRange(from: Timestamp(rfc3339: "2026-05-08T00:00:00Z")!, to: Timestamp(rfc3339: "2026-05-13T00:00:00Z")!)
        let cut = try await run("google-vertex", [export(losing: (10, 12))], store, account: "acct_a") { $0.range = days }
        let missing = try #require(cut.reasons.first { $0.code == "export_rows_missing" }, "\(cut.reasons.map(\.code)) \(cut.corrections)")
        #expect(missing.tokenType == .output && missing.days == ["2026-05-10"], "\(missing)")
        #expect(cut.corrections.isEmpty && cut.held.isEmpty, "\(cut.corrections)")
        let whole = try await run("google-vertex", [export(losing: nil)], store, account: "acct_a") { $0.range = days }
        #expect(whole.reasons.isEmpty && whole.findings.isEmpty, "\(whole.reasons.map(\.code)) \(whole.findings)")
    }

    /// A Vertex billing export with May 10's rows exported again a day later (`export_time`
    /// differs, nothing else): added together, +1,000,000 was proposed. Held, in JSON and CSV.
    @Test func vertexRowsExportedAgainHoldTheirModel() async throws {
        let store = try await store([("acct_a", "gemini-2.5-flash", "input", 1_000_000, 10)], vendor: "google-vertex")
        func row(_ exported: String) -> String {
            #"{"service":{"description":"Vertex AI"},"sku":{"description":"Gemini 2.5 Flash GA Text Input - Predictions"},"usage_start_time":"2026-05-10T00:00:00Z","usage_end_time":"2026-05-11T00:00:00Z","project":{"id":"proj-a"},"cost":0.3,"currency":"USD","usage":{"amount":1000000,"unit":"count"},"credits":[],"cost_type":"regular","export_time":"\#(exported)"}"#
        }
        let header =
            "service_description,sku_description,usage_start_time,usage_end_time,project_id,cost,currency,usage_amount,usage_unit,cost_type,export_time\n"
        func csvRow(_ exported: String) -> String {
            "Vertex AI,Gemini 2.5 Flash GA Text Input - Predictions,2026-05-10T00:00:00Z,2026-05-11T00:00:00Z,proj-a,0.3,USD,1000000,count,regular,\(exported)\n"
        }
        for export in [
            file("billing.json", [row("2026-05-11T06:00:00Z"), row("2026-05-12T06:00:00Z")].joined(separator: "\n")),
            file("billing.csv", header + csvRow("2026-05-11T06:00:00Z") + csvRow("2026-05-12T06:00:00Z")),
        ] {
            let r = try await run("google-vertex", [export], store, account: "acct_a") { $0.range = Self.mayDay(10) }
            #expect(r.reasons.map(\.code) == ["identical_rows"], "\(export.name): \(r.reasons.map(\.code))")
            #expect(r.corrections.isEmpty && r.held.isEmpty, "\(export.name): \(r.corrections)")
        }
        // One snapshot reads as the meter; a row pasted twice, export_time and all, is still refused.
        let once = try await run("google-vertex", [file("billing.json", row("2026-05-11T06:00:00Z"))], store, account: "acct_a") {
            $0.range = Self.mayDay(10)
        }
        #expect(once.findings.isEmpty && once.reasons.isEmpty, "\(once.reasons.map(\.code))")
        await #expect {
            _ = try await self.run(
                "google-vertex", [self.file("billing.json", [row("2026-05-11T06:00:00Z"), row("2026-05-11T06:00:00Z")].joined(separator: "\n"))], store,
                account: "acct_a"
            ) {
                $0.range = Self.mayDay(10)
            }
        } throws: { ($0 as? UsageBoxError)?.message.contains("lists the same line twice") == true }
    }
}
