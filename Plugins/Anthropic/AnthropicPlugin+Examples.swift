import ReconCore

extension AnthropicPlugin {
    static func file(_ name: String, _ bytes: [UInt8]) -> InvoiceFile { InvoiceFile(name: name, bytes: bytes) }

    /// The demo's May 2026 cost report (the kata's invoice), bundled with the binary.
    public static var demoCostReport: InvoiceFile { file("cost_report_2026_05.json", PackageResources.cost_report_2026_05_json) }

    public static let examples: [PluginExample] = [
        PluginExample(
            name: "anthropic: admin cost report, May 2026 (the kata)", file: demoCostReport, parserID: "admin-cost-report",
            expectedLineCount: 31 * 7 + 1,
            expectedAmounts: [
                "claude-opus-4-8/input": "158.2", "claude-opus-4-8/output": "263.5",
                "claude-sonnet-4-5/input": "370.26", "claude-sonnet-4-5/output": "1027.5", "claude-sonnet-4-5/cache_read": "1.8",
                "claude-haiku-4-5/input": "66.045", "claude-haiku-4-5/output": "110.075", "(not usage)": "12.5",
            ]),
        PluginExample(
            name: "anthropic: console cost CSV (display names, ≤/> 200k, quoted commas)",
            file: file("console_cost_2026_08.csv", PackageResources.console_cost_2026_08_csv), parserID: "console-cost-csv",
            expectedLineCount: 6,
            expectedAmounts: [
                "claude-haiku-4-5/input": "0.05", "claude-sonnet-4-5/cache_read": "0.1", "claude-sonnet-4-5/output": "1.5",
                "claude-sonnet-4-5/input": "0.6", "claude-opus-4-8/cache_write_5m": "0.0625", "(not usage)": "0.35",
            ]),
        PluginExample(
            name: "anthropic: admin usage report (stated quantities)",
            file: file("usage_report_2026_05.json", PackageResources.usage_report_2026_05_json), parserID: "admin-usage-report",
            expectedLineCount: 7,
            expectedQuantities: [
                "claude-sonnet-4-5/input": 1500, "claude-sonnet-4-5/cache_read": 200, "claude-sonnet-4-5/cache_write_5m": 500,
                "claude-sonnet-4-5/cache_write_1h": 1000, "claude-sonnet-4-5/output": 500, "claude-haiku-4-5/input": 10000,
                "claude-haiku-4-5/output": 2500,
            ]),
        PluginExample(
            name: "anthropic: tiers and modifiers (batch, long context, US geo, flat 1M context) priced; priority and an unpriced context never at base",
            file: file("cost_report_tiers_2026_05.json", PackageResources.cost_report_tiers_2026_05_json), parserID: "admin-cost-report",
            expectedLineCount: 7,
            expectedAmounts: [
                "claude-sonnet-4-5/input": "13.5", "claude-opus-4-8/input": "5.5", "claude-sonnet-4-6/input": "3",
                "claude-haiku-4-5/input": "2",
            ],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["claude-sonnet-4-5/input": 3_000_000, "claude-opus-4-8/input": 1_000_000, "claude-sonnet-4-6/input": 1_000_000],
            expectedUnmapped: ["no_rate_for_tier": "5"]),
        PluginExample(
            name: "anthropic: console cost with a discount (volume from list price, money as billed) and fast mode",
            file: file("console_cost_discount_2026_05.csv", PackageResources.console_cost_discount_2026_05_csv), parserID: "console-cost-csv",
            expectedLineCount: 3,
            expectedAmounts: ["claude-haiku-4-5/input": "0.90", "claude-haiku-4-5/output": "4.50", "claude-opus-4-8/output": "25.00"],
            reconcilePeriod: ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            expectedVendorTokens: ["claude-haiku-4-5/input": 1_000_000, "claude-haiku-4-5/output": 1_000_000, "claude-opus-4-8/output": 500_000]),
        PluginExample(
            name: "anthropic: a truncated cost report is refused with its position",
            file: file("cost_report_truncated.json", PackageResources.cost_report_truncated_json), parserID: "admin-cost-report",
            expectedError: "cost_report_truncated.json:1: malformed JSON"),
        PluginExample(
            name: "anthropic: a non-number amount is refused naming line and field",
            file: file("console_cost_bad_amount.csv", PackageResources.console_cost_bad_amount_csv), parserID: "console-cost-csv",
            expectedError: "console_cost_bad_amount.csv:3: field 'cost_usd'"),
    ]
}
