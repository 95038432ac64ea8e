public import Metering

/// The kata's May 2026 month for `acct_42`, generated deterministically. Every event says which
/// vendor served it (`vendor: anthropic`), so a reconciliation knows the traffic is Anthropic's.
///
/// Totals match the kata: opus 3,140 events / 42,180,000 tokens; sonnet 28,755 / 191,400,000
/// (input 122,900,000 over 14,378 events, output 68,500,000 over 14,377); haiku 14,002 / 88,060,000.
public enum DemoData {
    public static let account = "acct_42"
    public static let meter = "claude_tokens"
    public static let from = Timestamp(rfc3339: "2026-05-01T00:00:00Z")!
    public static let to = Timestamp(rfc3339: "2026-06-01T00:00:00Z")!

    public struct Series: Sendable {
        public var model: String
        public var short: String
        public var tokenType: String
        public var events: Int
        public var sum: Int64
    }

    public static let series: [Series] = [
        Series(model: "claude-opus-4-8", short: "opus", tokenType: "input", events: 1570, sum: 31_640_000),
        Series(model: "claude-opus-4-8", short: "opus", tokenType: "output", events: 1570, sum: 10_540_000),
        Series(model: "claude-sonnet-4-5", short: "sonnet", tokenType: "input", events: 14_378, sum: 122_900_000),
        Series(model: "claude-sonnet-4-5", short: "sonnet", tokenType: "output", events: 14_377, sum: 68_500_000),
        Series(model: "claude-haiku-4-5", short: "haiku", tokenType: "input", events: 7001, sum: 66_045_000),
        Series(model: "claude-haiku-4-5", short: "haiku", tokenType: "output", events: 7001, sum: 22_015_000),
    ]

    /// All events of the month, in timestamp order within each series.
    public static func events() -> [UsageEvent] {
        var out: [UsageEvent] = []
        out.reserveCapacity(series.reduce(0) { $0 + $1.events })
        let monthSeconds: Int64 = 31 * 86_400
        for (s, serie) in series.enumerated() {
            let n = Int64(serie.events)
            let base = serie.sum / n
            let remainder = serie.sum % n
            var quantities = (0..<n).map { base + ($0 < remainder ? 1 : 0) }
            // Deterministic variation that keeps the total: move a pseudo-random amount between neighbours.
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(s)
            for k in stride(from: 0, to: Int(n) - 1, by: 2) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let d = Int64((state >> 33) % UInt64(max(1, base / 2)))
                quantities[k] += d
                quantities[k + 1] -= d
            }
            for i in 0..<n {
                let seconds = i * monthSeconds / n + Int64(s) * 7
                let id = "evt_2026-05_\(serie.short)_\(serie.tokenType == "input" ? "in" : "out")_\(pad(i + 1))"
                out.append(
                    UsageEvent(
                        eventID: id, accountID: account, meterID: meter, modelID: serie.model, quantity: quantities[Int(i)],
                        unit: "tokens", timestamp: Timestamp(microseconds: from.microseconds + seconds * 1_000_000),
                        dimensions: ["token_type": serie.tokenType, "vendor": "anthropic"]))
            }
        }
        return out
    }

    private static func pad(_ v: Int64) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 6 - s.count)) + s
    }
}
