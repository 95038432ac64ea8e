import Metering

/// A plain aligned table for terminals: numbers right-aligned with thousands separators.
public struct TextTable: Sendable {
    public var headers: [String]
    public var rows: [[String]]
    public var rightAligned: Set<Int>

    public init(headers: [String], rows: [[String]] = [], rightAligned: Set<Int> = []) {
        self.headers = headers
        self.rows = rows
        self.rightAligned = rightAligned
    }

    public func render() -> String {
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let padding = String(repeating: " ", count: max(0, widths[i] - c.count))
                return rightAligned.contains(i) ? padding + c : c + padding
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        var out = [line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += rows.map(line)
        return out.joined(separator: "\n")
    }

    /// 191400000 → "191,400,000".
    public static func grouped(_ v: Int64) -> String { DigitGrouping.grouped(v) }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
