/// Parses a raw URL query into ordered name/value pairs.
///
/// Percent-escapes are decoded; `+` is kept as a literal plus (not a space), so a timestamp pasted
/// as `from=2026-05-01T02:00:00+02:00` means what it says.
enum QueryString {
    static func parse(_ query: String) throws -> [(String, String)] {
        guard !query.isEmpty else { return [] }
        return try query.split(separator: "&", omittingEmptySubsequences: true).map { part in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try decode(pieces[0])
            let value = pieces.count > 1 ? try decode(pieces[1]) : ""
            return (name, value)
        }
    }

    static func decode(_ s: Substring) throws -> String {
        guard s.contains("%") else { return String(s) }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = hex(it[it.startIndex]), let lo = hex(it[it.startIndex + 1]) else {
                    throw BadQuery(text: String(s))
                }
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw BadQuery(text: String(s)) }
        return text
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 65...70: return b - 55
        case 97...102: return b - 87
        default: return nil
        }
    }

    struct BadQuery: Error { var text: String }
}
