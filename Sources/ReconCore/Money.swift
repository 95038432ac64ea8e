public import Foundation

/// Exact decimal helpers. Money is `Decimal` parsed from text, quantities `Int64`; no `Double`.
public enum ExactDecimal {
    /// Parses a plain decimal string (`-12.3400`, `5`, `.5` is refused). Exponents and floats
    /// written with `e` are refused so nothing is silently reinterpreted.
    public static func parse(_ text: String) -> Decimal? {
        guard let digits = digitsIfDecimal(text), digits <= 38 else { return nil }
        return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// The digits of a plain decimal (`-12.50`), of any length; nil when the text is not one.
    static func digitsIfDecimal(_ text: String) -> Int? {
        var digits = 0
        var dots = 0
        for (i, ch) in text.unicodeScalars.enumerated() {
            switch ch {
            case "0"..."9": digits += 1
            case ".": dots += 1; if i == 0 { return nil }
            case "-", "+": if i != 0 { return nil }
            default: return nil
            }
        }
        guard digits > 0, dots <= 1, !text.hasSuffix(".") else { return nil }
        return digits
    }

    /// Why `text` is refused, for an error that names its field: a number with more digits than
    /// are kept exactly, or not a decimal at all. Long text is cut (a hostile cell is not echoed).
    public static func refusal(_ text: String, what: String = "a decimal") -> String {
        let shown = text.count > 48 ? "\(text.prefix(48))… (\(text.utf8.count) bytes)" : text
        if let digits = digitsIfDecimal(text), digits > 38 {
            return "'\(shown)' has \(digits) digits; numbers are read exactly, to at most 38 digits"
        }
        return "'\(shown)' is not \(what)"
    }

    /// Parses a JSON number's text exactly, exponents included (`7.5e-2` → 0.075), never via `Double`.
    public static func parseNumber(_ text: String) -> Decimal? {
        if let d = parse(text) { return d }
        let parts = text.lowercased().split(separator: "e")
        // At most three exponent digits: `Int` reads `-9223372036854775808`, whose `abs` traps
        // (a CSV cost cell so written crashed the server).
        guard parts.count == 2, parts[1].count <= 4, let mantissa = parse(String(parts[0])), let exp = Int(parts[1]), exp.magnitude <= 40 else {
            return nil
        }
        var v = mantissa
        for _ in 0..<exp.magnitude { v = exp < 0 ? v / 10 : v * 10 }
        return v
    }

    /// The power of ten the last written digit stands at, negated ("1.50" → 2, "3.0E-7" → 8,
    /// "1.23E+06" → −4); nil for text `parseNumber` refuses.
    public static func placeOfLastDigit(_ text: String) -> Int? {
        parseNumber(text) != nil ? scale(of: text) : nil
    }

    /// The number of digits after the decimal point as written ("1.50" → 2; "3.0E-7" → 8, the
    /// place its last digit stands at; "1.23E+03" → −1).
    public static func scale(of text: String) -> Int {
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), text.distance(from: e, to: text.endIndex) <= 5,
            let exp = Int(text[text.index(after: e)...])
        {
            // Negative past the units ("1.23E+03" → −1): its half unit is 5, not 0.5, or the
            // rounding of a shortened amount was proposed as a correction.
            return max(-40, scale(of: String(text[..<e])) - exp)
        }
        guard let dot = text.firstIndex(of: ".") else { return 0 }
        return text.distance(from: text.index(after: dot), to: text.endIndex)
    }

    /// Half a unit of the last written decimal place: "1.50" → 0.005.
    public static func halfUnit(ofScale scale: Int) -> Decimal {
        Decimal(sign: .plus, exponent: -scale - 1, significand: 5)
    }

    /// Rounds half-even to a whole number and converts exactly.
    public static func roundedInt64(_ value: Decimal) -> Int64? {
        var v = value
        var out = Decimal()
        NSDecimalRound(&out, &v, 0, .bankers)
        return Int64(exactly: out.description)
    }

    /// The value when it is a whole number that fits 64 bits; nil when it has a fraction or does not fit.
    public static func wholeInt64(_ value: Decimal) -> Int64? {
        guard let whole = roundedInt64(value), Decimal(exactly: whole) == value else { return nil }
        return whole
    }

    /// Rounds up (toward +∞) to a whole number.
    public static func ceilInt64(_ value: Decimal) -> Int64? {
        var v = value
        var out = Decimal()
        NSDecimalRound(&out, &v, 0, .up)
        return Int64(exactly: out.description)
    }

    /// A money string with exactly `scale` decimals, rounded half-even (`"1.80"`).
    public static func format(_ value: Decimal, scale: Int = 2) -> String {
        var v = value
        var out = Decimal()
        NSDecimalRound(&out, &v, scale, .bankers)
        var text = out.description
        if text == "-0" { text = "0" }
        guard scale > 0 else { return text }
        var negative = false
        if text.hasPrefix("-") { negative = true; text.removeFirst() }
        var parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 1 { parts.append("") }
        parts[1] += String(repeating: "0", count: max(0, scale - parts[1].count))
        let result = parts[0] + "." + parts[1]
        return negative && result.contains(where: { $0 != "0" && $0 != "." }) ? "-" + result : result
    }

    /// The exact decimal text of a value (no trailing zeros beyond what Decimal keeps).
    public static func text(_ value: Decimal) -> String { value.description }
}

extension Decimal {
    /// `Decimal(Int64)` through its exact text, never via `Double`.
    public init(exactly value: Int64) {
        self = Decimal(string: String(value))!
    }
}

/// An exact decimal that travels as its text (`"1399.56"`), never as a JSON number: money in
/// reports is read back exactly.
public struct ExactAmount: Codable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: Decimal
    public init(_ value: Decimal) { self.value = value }

    public static let zero = ExactAmount(0)
    public static func < (a: ExactAmount, b: ExactAmount) -> Bool { a.value < b.value }
    public var description: String { ExactDecimal.text(value) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let d = ExactDecimal.parseNumber(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(text)' is not an exact decimal")
        }
        value = d
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(ExactDecimal.text(value))
    }
}

extension ExactDecimal {
    /// Rounds half-even to `scale` decimals and keeps the value a `Decimal`.
    public static func rounded(_ value: Decimal, scale: Int) -> Decimal {
        var v = value
        var out = Decimal()
        NSDecimalRound(&out, &v, scale, .bankers)
        return out
    }
}
