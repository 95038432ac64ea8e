public import Metering

/// Half-open spans of time, `[from, to)`: the engine's coverage of a period and a plugin naming
/// the days an item's lines leave out walk them the same way.
public enum TimeSpans {
    public typealias Span = (from: Timestamp, to: Timestamp)

    /// Sorted, with overlapping and touching spans joined (empty ones dropped).
    public static func merge(_ spans: [Span]) -> [Span] {
        var out: [Span] = []
        for s in spans.filter({ $0.from < $0.to }).sorted(by: { $0.from < $1.from }) {
            if let last = out.last, s.from <= last.to {
                out[out.count - 1].to = max(last.to, s.to)
            } else {
                out.append(s)
            }
        }
        return out
    }

    /// The parts of `whole` no span covers, in order.
    public static func uncovered(by spans: [Span], within whole: Span) -> [Span] {
        var out: [Span] = []
        var cursor = whole.from
        for c in merge(spans) where c.to > cursor && c.from < whole.to {
            if c.from > cursor { out.append((cursor, c.from)) }
            cursor = max(cursor, c.to)
            if cursor >= whole.to { break }
        }
        if cursor < whole.to { out.append((cursor, whole.to)) }
        return out
    }
}
