import Foundation
import ReconCore

/// Anthropic's first-party API: the Admin API cost report (JSON, cents), the Console cost export
/// (CSV, dollars, display names) and the Admin API usage report (JSON, token counts used as
/// stated quantities). See README.md for what each export means.
public enum AnthropicPlugin: VendorPlugin {
    public static let id = "anthropic"
    public static let name = "Anthropic"
    public static let rateCardName = "anthropic"
    /// The default workspace has no id: lines without one are its own.
    public static let tenantKeys: Set<String> = ["workspace_id", "workspace"]
    public static let providerNames: Set<String> = ["anthropic"]
    public static let parsers: [any InvoiceParser] = [
        AnthropicCostReportParser(), AnthropicUsageReportParser(), AnthropicConsoleCostParser(),
    ]

    /// The Admin API's names and the Console export's names → canonical token types.
    public static let tokenTypeMap: [String: TokenType] = [
        "uncached_input_tokens": .input,
        "output_tokens": .output,
        "cache_read_input_tokens": .cacheRead,
        "cache_creation.ephemeral_5m_input_tokens": .cacheWrite5m,
        "cache_creation.ephemeral_1h_input_tokens": .cacheWrite1h,
        "input_no_cache": .input,
        "output": .output,
        "input_cache_read": .cacheRead,
        "input_cache_write_5m": .cacheWrite5m,
        "input_cache_write_1h": .cacheWrite1h,
    ]

    /// The Console writes context windows as "≤ 200k" / "> 200k"; the API as "0-200k" / "200k-1M".
    static func contextWindow(_ raw: String?) -> String? {
        guard let raw, !raw.isEmpty else { return nil }
        switch raw.trimmingCharacters(in: .whitespaces) {
        case "≤ 200k", "<= 200k", "0-200k": return "0-200k"
        case "> 200k", "200k-1M": return "200k-1M"
        default: return raw
        }
    }
}
