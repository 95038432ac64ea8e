import Foundation
import Metering
import ReconCore
import Testing

/// Lines that are a model's token usage but that a parser cannot fully read, and money given back
/// on token usage with no tokens: each was "not usage", so its money left the vendor's side (or the
/// usage it corrects stood) and a correction was proposed on what was left. Each now holds.
extension MessyMonthEndTests {
    /// A refund of money alone on a token usage type (CUR `Refund`, Azure `Refund`, a Vertex
    /// `adjustment` with no usage amount): the bill's 2,000,000 stood beside a meter of 1,600,000,
    /// and +400,000 was proposed. It is money back for usage billed wrong by an amount nobody
    /// priced: the model is held (`usage_refund`).
    @Test func moneyGivenBackOnTokenUsageWithNoTokensHoldsTheModel() async throws {
        let bedrock = try await store([("acct_b", "claude-sonnet-4-6", "input", 1_600_000, 10)], vendor: "aws-bedrock")
        let cur =
            Self.curHeader + Self.curRow("Usage", 10, "USE1-Claude4.6Sonnet-input-tokens", 2000, "6.0")
            + Self.curRow("Refund", 10, "USE1-Claude4.6Sonnet-input-tokens", 0, "-1.2")
        let b = try await run("aws-bedrock", [file("cur.csv", cur)], bedrock, account: "acct_b") { $0.range = Self.mayDay(10) }

        let azure = try await store([("acct_z", "gpt-4o", "input", 1_600_000, 25)], vendor: "azure-openai")
        let a = try await azureMay25(
            [
                "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,2000,1K,5.00,USD,Usage",
                "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,0,1K,-1.00,USD,Refund",
            ], azure)

        let v = try await vertexMay10(metered: 1_600_000, [Self.vertexRow(cost: "0.60", 2_000_000), Self.vertexRow(cost: "-0.12", 0, "adjustment")])
        for (name, r, model) in [("bedrock", b, "claude-sonnet-4-6"), ("azure", a, "gpt-4o"), ("vertex", v, "gemini-2.5-flash")] {
            #expect(r.models.first?.gap == 400_000 && r.corrections.isEmpty && r.held.isEmpty, "\(name): \(r.corrections.map(\.quantity))")
            #expect(
                r.reasons.contains { $0.code == "usage_refund" && $0.modelID == model && $0.effect == .blocksModel },
                "\(name): \(r.reasons.map(\.code)) \(r.unmapped.map(\.reason))")
        }
    }

    /// Anthropic rows naming a token type under a cost_type not read (a kind added later, a cut
    /// cell): −250,000 was proposed on the cost report's 1,000,000 beside a meter of 1,250,000.
    /// They stay the model's usage of an unread token type, in the cost report and the Console CSV.
    @Test func anAnthropicTokenRowOfAnUnreadCostTypeHoldsItsModel() async throws {
        let store = try S.store()
        _ = try await store.ingest([S.event("a", model: "claude-sonnet-4-5", type: "input", quantity: 1_250_000, vendor: "anthropic")])
        let report = S.costReport([
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "300"),
            .init(model: "claude-sonnet-4-5", tokenType: "uncached_input_tokens", cents: "75", costType: "tokens_priority"),
        ])
        let day = "2026-05-\(String(format: "%02d", TestSupport.Row(cents: "0").day))"
        let console = file(
            "claude_api_cost_2026_05.csv",
            Self.consoleHeader + "\(day),Claude Sonnet 4.5,Default,k1,message,≤ 200k,input_no_cache,3.00,3.00,token,not_available,,apikey_1,active\n"
                + "\(day),Claude Sonnet 4.5,Default,k1,message,≤ 200k,input_no_cache,0.75,0.75,tok,not_available,,apikey_1,active\n")
        for invoice in [report, console] {
            let r = try await run("anthropic", [invoice], store, account: "acct_42") { $0.invoiceScope = .account }
            #expect(r.corrections.isEmpty && r.held.isEmpty, "\(invoice.name): \(r.corrections.map(\.quantity))")
            #expect(
                r.reasons.contains { $0.code == "unknown_token_type" && $0.modelID == "claude-sonnet-4-5" }
                    && r.findings.first?.quantity == -250_000, "\(invoice.name): \(r.reasons.map(\.code)) \(r.findings.map(\.quantity))")
        }
    }

    /// A Console row whose usage_type is not the base (`message`) nor `batch` (a priority row) was
    /// priced at the base rate: $18.00 of output read as 1,200,000 tokens and +200,000 was
    /// proposed. It is a tier the card must price, never at the base rate.
    @Test func aConsoleRowOfAnotherUsageTypeIsNotPricedAtTheBaseRate() async throws {
        let store = try await store([("acct_42", "claude-sonnet-4-5", "output", 1_000_000, 10)], vendor: "anthropic")
        let console = file(
            "claude_api_cost_2026_05.csv",
            Self.consoleHeader + "2026-05-10,Claude Sonnet 4.5,Default,k1,priority,≤ 200k,output,18.00,18.00,token,not_available,,apikey_1,active\n")
        let r = try await run("anthropic", [console], store, account: "acct_42") { $0.invoiceScope = .account }
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        #expect(r.unmapped.map(\.reason) == ["no_rate_for_tier"], "\(r.unmapped)")
    }

    /// Token usage whose model is not named: a FOCUS Usage row in Tokens with no ModelId, an
    /// OpenAI cost result `input_tokens` in tokens. "Not usage", the model's cell came out short
    /// and −500,000 was proposed; it is some model's usage now (`unplaced_vendor_usage`).
    @Test func tokenUsageNamingNoModelIsUnplacedNotDropped() async throws {
        let focusStore = try await store([("acct_42", "gpt-4.1-2025-04-14", "input", 1_500_000, 1)], vendor: "openai")
        /// A row of the model's input, and one naming no model: `quantity unit`.
        func focus(_ named: (cost: String, tokens: Int), _ unnamed: String) async throws -> ReconciliationReport {
            let csv =
                Self.providerFOCUSHeader + Self.providerFOCUSRow(named.cost, named.tokens, "Input", "OpenAI")
                + "1.00,USD,Usage,,2026-05-01T00:00:00Z,2026-05-02T00:00:00Z,\(unnamed),1.00,OpenAI,,proj-1\n"
            return try await run("focus", [file("focus.csv", csv)], focusStore, account: "acct_42") {
                $0.range = Self.mayDay(1)
                $0.invoiceScope = .account
            }
        }
        let f = try await focus(("2.00", 1_000_000), "500000,Tokens")
        let openAIStore = try await store([("acct_42", "gpt-4o-2024-08-06", "input", 1_500_000, 10)], vendor: "openai")
        let stated = #","quantity":1000000,"quantity_unit":"tokens""#, bare = #","quantity":500000,"quantity_unit":"tokens""#
        let o = try await run(
            "openai", [openAICosts([openAICost("gpt-4o-2024-08-06, input", "2.5", extra: stated), openAICost("input_tokens", "1.25", extra: bare)])],
            openAIStore, account: "acct_42"
        ) {
            $0.range = Self.mayDay(10)
            $0.invoiceScope = .account
        }
        for (name, r) in [("focus", f), ("openai", o)] {
            #expect(r.corrections.isEmpty && r.held.isEmpty && r.findings.first?.quantity == -500_000, "\(name): \(r.corrections.map(\.quantity))")
            #expect(r.findings.first?.blockedBy == ["unplaced_vendor_usage"], "\(name): \(r.findings.map(\.blockedBy)) \(r.reasons.map(\.code))")
        }
        // A Usage row of another unit naming no model (a VM's hours) is still not usage.
        let h = try await focus(("3.00", 1_500_000), "24,Hours")
        #expect(h.reasons.isEmpty && h.findings.isEmpty && h.unmapped.map(\.reason) == ["not_usage"], "\(h.reasons.map(\.code)) \(h.unmapped)")
    }
}

extension MessyMonthEndTests {
    /// The OpenAI usage API's audio (and image) counts: in the 2025 layout `input_tokens` is text
    /// only, so a meter counting audio as input read 400,000 over the vendor and −400,000 was
    /// proposed. A model with such counts holds its downward corrections; one without is corrected.
    @Test func anOpenAIUsageReportWithAudioTokensHoldsTheModel() async throws {
        let store = try await store([("acct_42", "gpt-4o-2024-08-06", "input", 1_000_000, 10)], vendor: "openai")
        func usage(audio: Int) -> InvoiceFile {
            file(
                "usage.json",
                #"{"object":"page","has_more":false,"next_page":null,"data":[{"object":"bucket","start_time":1778371200,"end_time":1778457600,"results":[{"object":"organization.usage.completions.result","model":"gpt-4o-2024-08-06","input_tokens":600000,"output_tokens":0,"input_audio_tokens":\#(audio),"num_model_requests":40}]}]}"#
            )
        }
        func reconcile(_ f: InvoiceFile) async throws -> ReconciliationReport {
            try await run("openai", [f], store, account: "acct_42") {
                $0.range = Self.mayDay(10)
                $0.invoiceScope = .account
            }
        }
        let audio = try await reconcile(usage(audio: 400_000))
        #expect(audio.corrections.isEmpty && audio.held.isEmpty, "\(audio.corrections.map(\.quantity))")
        #expect(audio.findings.first?.blockedBy == ["unknown_token_type"], "\(audio.findings.map(\.blockedBy)) \(audio.reasons.map(\.code))")
        let text = try await reconcile(usage(audio: 0))
        #expect(text.corrections.map(\.quantity) == [-400_000], "\(text.reasons.map(\.code)) \(text.held.map(\.reason))")
    }
}

extension MessyMonthEndTests {
    /// An Azure OpenAI meter of tokens whose class is written in a way not read ("Prompt") was
    /// not usage: the model's input cell came out short and −400,000 was proposed. It is usage of
    /// a model not placed now (the unread word stays in the model's name: which word is the class
    /// is not known), which holds downward corrections.
    @Test func anAzureTokenMeterOfAnUnreadClassHoldsItsModel() async throws {
        let store = try await store([("acct_z", "gpt-4o", "input", 1_400_000, 25)], vendor: "azure-openai")
        let r = try await azureMay25(
            [
                "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,1000,1K,2.50,USD,Usage",
                "Foundry Models,Azure OpenAI,gpt 4o Prompt glbl Tokens,400,1K,1.00,USD,Usage",
            ], store)
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
        #expect(r.findings.first?.blockedBy == ["unplaced_vendor_usage"], "\(r.findings.map(\.blockedBy)) \(r.unmapped.map(\.reason))")
    }
}

extension MessyMonthEndTests {
    /// A Bedrock usage type of tokens that neither form reads (a class spelt
    /// `cache-write-1h-input-token-count`) was not usage beside the model's read rows; one with a
    /// digit-less region (`EU-`) is read now. Another service's usage type naming tokens is not
    /// Bedrock usage.
    @Test func aBedrockTokenUsageTypeNotReadIsUnplacedNotDropped() async throws {
        let store = try await store([("acct_b", "claude-sonnet-4-6", "input", 1_400_000, 10)], vendor: "aws-bedrock")
        func reconcile(_ rows: String) async throws -> ReconciliationReport {
            try await run("aws-bedrock", [file("cur.csv", Self.curHeader + rows)], store, account: "acct_b") { $0.range = Self.mayDay(10) }
        }
        let unread = try await reconcile(
            Self.curRow("Usage", 10, "USE1-Claude4.6Sonnet-input-tokens", 1000, "3.0")
                + Self.curRow("Usage", 10, "USE1-Claude4.6Sonnet-input-token-count-v2", 400, "1.2"))
        #expect(unread.corrections.isEmpty && unread.held.isEmpty, "\(unread.corrections.map(\.quantity))")
        #expect(unread.findings.first?.blockedBy == ["unplaced_vendor_usage"], "\(unread.findings.map(\.blockedBy)) \(unread.unmapped)")
        let eu = try await reconcile(
            Self.curRow("Usage", 10, "USE1-Claude4.6Sonnet-input-tokens", 1000, "3.0") + Self.curRow("Usage", 10, "EU-Claude4.6Sonnet-input-tokens", 400, "1.2")
        )
        #expect(eu.findings.isEmpty && eu.reasons.isEmpty, "\(eu.findings.map(\.quantity)) \(eu.reasons.map(\.code))")
        let other = try await reconcile(
            Self.curRow("Usage", 10, "USE1-Claude4.6Sonnet-input-tokens", 1400, "4.2")
                + "Usage,2026-05-10T00:00:00Z,2026-05-11T00:00:00Z,AmazonCognito,USE1-TokenRefreshes,100,Requests,0.5,USD\n")
        #expect(other.findings.isEmpty && other.reasons.isEmpty && other.unmapped.count == 1, "\(other.reasons.map(\.code)) \(other.unmapped)")
    }
}

extension MessyMonthEndTests {
    /// The mirror: an adjustment billing more money on a token SKU or meter with no tokens was
    /// not usage, the usage it adds to left out: −400,000 was proposed. It holds the model's
    /// downward corrections now (its usage of an unread kind).
    @Test func moneyAddedOnTokenUsageWithNoTokensHoldsDownwardCorrections() async throws {
        let azure = try await store([("acct_z", "gpt-4o", "input", 2_000_000, 25)], vendor: "azure-openai")
        let a = try await azureMay25(
            [
                "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,1600,1K,4.00,USD,Usage",
                "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,0,1K,1.00,USD,Adjustment",
            ], azure)
        let v = try await vertexMay10(metered: 2_000_000, [Self.vertexRow(cost: "0.48", 1_600_000), Self.vertexRow(cost: "0.12", 0, "adjustment")])
        for (name, r) in [("azure", a), ("vertex", v)] {
            #expect(r.models.first?.gap == -400_000 && r.corrections.isEmpty && r.held.isEmpty, "\(name): \(r.corrections.map(\.quantity))")
            #expect(r.findings.first?.blockedBy == ["unknown_token_type"], "\(name): \(r.findings.map(\.blockedBy)) \(r.unmapped)")
        }
    }

    /// Not inference: a Bedrock model customization's training tokens, a Vertex tuning SKU and an
    /// Azure fine-tuning or embedding meter stay not usage (they held every model's downward
    /// corrections); a Marketplace usage type of tokens not read holds its product's model only.
    @Test func tokensThatAreNotInferenceStayNotUsage() async throws {
        let bedrock = try await store([("acct_b", "claude-sonnet-4-6", "input", 1_400_000, 10)], vendor: "aws-bedrock")
        let b = try await run(
            "aws-bedrock",
            [
                file(
                    "cur.csv",
                    Self.curHeader + Self.curRow("Usage", 10, "USE1-Claude4.6Sonnet-input-tokens", 1000, "3.0")
                        + Self.curRow("Usage", 10, "USE1-Llama3-Customization-Training-Tokens", 400, "1.2"))
            ], bedrock, account: "acct_b"
        ) { $0.range = Self.mayDay(10) }
        #expect(b.reasons.isEmpty && b.corrections.map(\.quantity) == [-400_000], "\(b.reasons.map(\.code)) \(b.unmapped)")
        let azure = try await store([("acct_z", "gpt-4o", "input", 1_400_000, 25)], vendor: "azure-openai")
        for meter in ["gpt 4o Training Tokens", "text embedding 3 small Tokens"] {
            let a = try await azureMay25(
                [
                    "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,1000,1K,2.50,USD,Usage",
                    "Foundry Models,Azure OpenAI,\(meter),400,1K,1.00,USD,Usage",
                ], azure)
            #expect(a.reasons.isEmpty && a.corrections.map(\.quantity) == [-400_000], "\(meter): \(a.reasons.map(\.code)) \(a.unmapped)")
        }
        let v = try await vertexMay10(
            metered: 1_400_000, [Self.vertexRow(cost: "0.30", 1_000_000), Self.vertexRow("Gemini 2.0 Flash Tuning", cost: "5", 400_000)])
        #expect(v.reasons.isEmpty && v.corrections.map(\.quantity) == [-400_000], "\(v.reasons.map(\.code)) \(v.unmapped)")
    }
}

extension MessyMonthEndTests {
    static let flashInput = "Gemini 2.5 Flash GA Text Input - Predictions"

    /// A Vertex billing-export row (NDJSON) of May 10.
    static func vertexRow(_ sku: String = flashInput, cost: String, _ amount: Int, _ costType: String = "regular") -> String {
        #"{"service":{"description":"Vertex AI"},"sku":{"description":"\#(sku)"},"usage_start_time":"2026-05-10T00:00:00Z","usage_end_time":"2026-05-11T00:00:00Z","cost":\#(cost),"currency":"USD","usage":{"amount":\#(amount),"unit":"count"},"credits":[],"cost_type":"\#(costType)"}"#
    }

    /// `rows` reconciled for acct_a on May 10 against `metered` tokens of gemini-2.5-flash input.
    func vertexMay10(metered: Int64, _ rows: [String]) async throws -> ReconciliationReport {
        let store = try await store([("acct_a", "gemini-2.5-flash", "input", metered, 10)], vendor: "google-vertex")
        return try await run("google-vertex", [file("billing.json", rows.joined(separator: "\n"))], store, account: "acct_a") {
            $0.invoiceScope = .account
            $0.range = Self.mayDay(10)
        }
    }
}

extension MessyMonthEndTests {
    /// FOCUS spells `ChargeCategory` "Usage" and Azure spells `ChargeType` "Usage" and its service
    /// "Azure OpenAI"; an export that lower-cases them (a tool's re-export, a hand edit) made those
    /// rows "not usage", the model's cell came out short and −500,000 / −400,000 was proposed.
    @Test func chargeCategoriesAndServicesAreReadWhateverTheirCase() async throws {
        let focusStore = try await store([("acct_42", "gpt-4.1-2025-04-14", "input", 1_500_000, 1)], vendor: "openai")
        let csv =
            Self.providerFOCUSHeader + Self.providerFOCUSRow("2.00", 1_000_000, "Input", "OpenAI")
            + Self.providerFOCUSRow("1.00", 500_000, "Input", "OpenAI").replacingOccurrences(of: ",USD,Usage,", with: ",USD,usage,")
        let f = try await run("focus", [file("focus.csv", csv)], focusStore, account: "acct_42") {
            $0.range = Self.mayDay(1)
            $0.invoiceScope = .account
        }
        let azureStore = try await store([("acct_z", "gpt-4o", "input", 1_400_000, 25)], vendor: "azure-openai")
        let a = try await azureMay25(
            [
                "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,1000,1K,2.50,USD,Usage",
                "cognitive services,azure openai,gpt 4o Inp glbl Tokens,400,1K,1.00,USD,usage",
            ], azureStore)
        for (name, r) in [("focus", f), ("azure", a)] {
            #expect(
                r.models.first?.gap == 0 && r.corrections.isEmpty && r.unmapped.isEmpty, "\(name): \(r.corrections.map(\.quantity)) \(r.unmapped.map(\.reason))"
            )
        }
    }
}
