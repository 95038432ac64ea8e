import Foundation
import Metering
import ReconCore
import Testing

/// What an export says in words other than the ones a parser first read: another column naming
/// the tenant, another spelling of long context, another letter case. Read as given, each made a
/// wrong correction (another tenant's usage billed to the account, long-context tokens priced at
/// the base rate) or dropped billed tokens as "not usage".
extension MessyMonthEndTests {
    static let azureTenantHeader =
        "Date,SUBCOLUMN,ResourceId,MeterCategory,MeterSubCategory,MeterName,Quantity,UnitOfMeasure,CostInBillingCurrency,BillingCurrencyCode,ChargeType\n"
    static func azureTenantRow(_ subscription: String, _ column: String, tokens: Int) -> String {
        let cell = column == "none" ? "" : "\(subscription),"
        return "05/25/2026,\(cell)/subscriptions/\(subscription)/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/ai,"
            + "Foundry Models,Azure OpenAI,gpt 4o Inp glbl Tokens,\(tokens / 1000),1K,\(Decimal(tokens) * Decimal(string: "0.0000025")!),USD,Usage\n"
    }

    /// A second subscription's 400,000 beside the account's 1,000,000: named by a legacy EA
    /// export's `SubscriptionGuid`, by `SubscriptionName`, or only by each row's `ResourceId`, it
    /// read as one tenant and +400,000 was proposed on the account reconciled.
    @Test func anAzureExportNamingItsSubscriptionsOtherwiseStillBillsTwo() async throws {
        let azure = try await store([("acct_z", "gpt-4o", "input", 1_000_000, 25)], vendor: "azure-openai")
        for column in ["SubscriptionGuid", "SubscriptionName", "none"] {
            let header =
                column == "none"
                ? Self.azureTenantHeader.replacingOccurrences(of: "SUBCOLUMN,", with: "")
                : Self.azureTenantHeader.replacingOccurrences(of: "SUBCOLUMN", with: column)
            let csv = header + Self.azureTenantRow("aaaa-1111", column, tokens: 1_000_000) + Self.azureTenantRow("bbbb-2222", column, tokens: 400_000)
            let r = try await run("azure-openai", [file("azure.csv", csv)], azure, account: "acct_z") { $0.range = Self.mayDay(25) }
            #expect(r.models.first?.gap == 400_000 && r.corrections.isEmpty, "\(column): \(r.corrections.map(\.quantity))")
            #expect(r.reasons.contains { $0.code == "several_attributions_in_invoice" }, "\(column): \(r.reasons.map(\.code))")
        }
        // One subscription, however named, is one tenant: the gap is corrected.
        let one = Self.azureTenantHeader.replacingOccurrences(of: "SUBCOLUMN,", with: "") + Self.azureTenantRow("aaaa-1111", "none", tokens: 1_400_000)
        let r = try await run("azure-openai", [file("azure.csv", one)], azure, account: "acct_z") { $0.range = Self.mayDay(25) }
        #expect(r.corrections.map(\.quantity) == [400_000], "\(r.reasons.map(\.code))")
    }

    /// A Vertex export whose query kept the project's number or name, not its id.
    @Test func aVertexExportNamingItsProjectsOtherwiseStillBillsTwo() async throws {
        let vertex = try await store([("acct_a", "gemini-2.5-flash", "input", 1_000_000, 10)], vendor: "google-vertex")
        for key in ["number", "name"] {
            let rows = [("p1", 1_000_000, "0.30"), ("p2", 400_000, "0.12")].map { project, tokens, cost in
                Self.vertexRow(cost: cost, tokens).replacingOccurrences(of: #""credits":[]"#, with: #""credits":[],"project":{"\#(key)":"\#(project)"}"#)
            }
            let r = try await run("google-vertex", [file("billing.json", rows.joined(separator: "\n"))], vertex, account: "acct_a") {
                $0.range = Self.mayDay(10)
            }
            #expect(r.models.first?.gap == 400_000 && r.corrections.isEmpty, "\(key): \(r.corrections.map(\.quantity))")
            #expect(r.reasons.contains { $0.code == "several_attributions_in_invoice" }, "\(key): \(r.reasons.map(\.code))")
        }
    }

    /// Money-only Vertex lines of 2.5 Pro input, $1.00 each: at the long-context rate ($2.50/M)
    /// 400,000 tokens; any spelling but `(Long)` read 800,000 at the base rate and +400,000 was
    /// proposed. Lower-cased SKUs were "not usage"; Flex and by-the-character SKUs were priced as
    /// standard tokens.
    @Test func vertexSKUsAreReadWhateverTheSpellingOfTheirTierAndCase() async throws {
        func moneyOnly(_ sku: String) -> String {
            #"{"service":{"description":"Vertex AI"},"sku":{"description":"\#(sku)"},"usage_start_time":"2026-05-10T00:00:00Z","usage_end_time":"2026-05-11T00:00:00Z","cost":1.00,"currency":"USD","cost_at_list":1.00,"credits":[],"cost_type":"regular"}"#
        }
        let vertex = try await store([("acct_a", "gemini-2.5-pro", "input", 400_000, 10)], vendor: "google-vertex")
        for sku in [
            "Gemini 2.5 Pro Text Input - Predictions (Long)", "Gemini 2.5 Pro Text Input - Predictions (Long Context)",
            "Gemini 2.5 Pro Text Input - Predictions - Long", "Gemini 2.5 Pro Text Input Long Context - Predictions",
            "Gemini 2.5 Pro Text Input - Predictions >200K", "gemini 2.5 pro text input - predictions (long)",
            "GEMINI 2.5 PRO LONG TEXT INPUT - PREDICTIONS",
        ] {
            let r = try await run("google-vertex", [file("billing.json", moneyOnly(sku))], vertex, account: "acct_a") {
                $0.invoiceScope = .account
                $0.range = Self.mayDay(10)
            }
            #expect(r.models.first?.vendor == 400_000 && r.corrections.isEmpty && r.unmapped.isEmpty, "\(sku): \(r.models) \(r.unmapped.map(\.reason))")
        }
        for sku in ["Gemini 2.5 Pro Text Input - Flex Predictions", "Gemini 2.5 Pro Text Input Characters - Predictions"] {
            let r = try await run("google-vertex", [file("billing.json", moneyOnly(sku))], vertex, account: "acct_a") {
                $0.invoiceScope = .account
                $0.range = Self.mayDay(10)
            }
            #expect(r.corrections.isEmpty && !r.unmapped.contains { $0.reason.hasPrefix("not_usage") }, "\(sku): \(r.corrections.map(\.quantity))")
            #expect(r.findings.allSatisfy { !$0.blockedBy.isEmpty }, "\(sku): \(r.findings)")
        }
    }

    /// An empty invoice file says so ("none of the parsers recognizes this file" sent people to
    /// the format).
    @Test func anEmptyInvoiceSaysSo() async throws {
        let azure = try await store([("acct_z", "gpt-4o", "input", 1_000_000, 25)], vendor: "azure-openai")
        await #expect { try await run("azure-openai", [file("azure.csv", " \r\n")], azure, account: "acct_z") } throws: { error in
            "\(error)".contains("azure.csv: the file is empty")
        }
    }
}

extension MessyMonthEndTests {
    /// The same usage exported twice, one file naming the project by id, the other by number:
    /// read as one tenant key, they looked like two projects and the overlap check let both count
    /// (+1,000,000 under `--invoice-scope account`). Each name is a key of its own now.
    @Test func oneProjectNamedTwoWaysInTwoFilesIsStillAnOverlap() async throws {
        let vertex = try await store([("acct_a", "gemini-2.5-flash", "input", 1_000_000, 10)], vendor: "google-vertex")
        let byID = Self.vertexRow(cost: "0.30", 1_000_000).replacingOccurrences(of: #""credits":[]"#, with: #""credits":[],"project":{"id":"p1"}"#)
        let byNumber = Self.vertexRow(cost: "0.30", 1_000_000).replacingOccurrences(of: #""credits":[]"#, with: #""credits":[],"project":{"number":"123"}"#)
        await #expect {
            try await run("google-vertex", [file("a.json", byID), file("b.json", byNumber)], vertex, account: "acct_a") {
                $0.invoiceScope = .account
                $0.range = Self.mayDay(10)
            }
        } throws: { "\($0)".contains("pass --allow-overlap") }
    }

    /// An amount a spreadsheet shortened (`1.23E+03`, its units digit unwritten) is rounded to the
    /// ten: its tolerance is half of that, or the rounding was proposed (−299,333 on a Sonnet line
    /// that matches the meter).
    @Test func anAmountShortenedByAnExponentIsToleratedToItsLastDigit() async throws {
        #expect(ExactDecimal.scale(of: "1.23E+03") == -1 && ExactDecimal.halfUnit(ofScale: -1) == 5)
        let store = try await store([("acct_42", "claude-sonnet-4-5", "output", 82_299_333, 3)], vendor: "anthropic")
        let csv =
            Self.consoleHeader + "2026-05-03,Claude Sonnet 4.5,Default,k1,message,≤ 200k,output,1.23E+03,1.23E+03,token,not_available,,apikey_1,active\n"
        let r = try await run("anthropic", [file("claude_api_cost_2026_05.csv", csv)], store, account: "acct_42") { $0.invoiceScope = .account }
        #expect(r.models.first?.gap == -299_333 && r.corrections.isEmpty && r.held.isEmpty, "\(r.findings)")
    }

    /// A cost report that may be net and bills nothing of a metered model (credited in full, or
    /// its rows left out): its whole meter read as over-metering; held like a short one.
    @Test func aModelAbsentFromACostReportThatMayBeNetIsHeld() async throws {
        let store = try S.store()
        _ = try await store.ingest([
            S.event("s", model: "claude-sonnet-4-5", type: "output", quantity: 1_000_000, vendor: "anthropic"),
            S.event("h", model: "claude-haiku-4-5", type: "output", quantity: 1_000_000, vendor: "anthropic"),
        ])
        let cost = S.costReport([.init(model: "claude-sonnet-4-5", tokenType: "output_tokens", cents: "1500", atList: false)])
        let r = try await run("anthropic", [cost], store, account: "acct_42")
        #expect(r.reasons.map { "\($0.code) \($0.modelID ?? "-")" } == ["amounts_may_be_net claude-haiku-4-5"], "\(r.reasons.map(\.detail))")
        #expect(r.corrections.isEmpty && r.held.isEmpty, "\(r.corrections.map(\.quantity))")
    }
}
