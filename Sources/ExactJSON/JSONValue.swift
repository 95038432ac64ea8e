/// A JSON value that keeps numbers as the exact digits written and objects in their written order.
///
/// Metering quantities are 64-bit integers and invoice amounts are exact decimals, so a number is
/// never routed through `Double`: callers read `.number(text)` and convert the text themselves.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number exactly as written in the source (or as it should be written on output).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in source order; duplicate keys are rejected by the parser.
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Looks a member up by key (objects only).
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        for (k, v) in members where k == key { return v }
        return nil
    }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// A number's digits as written, or a string's text: how exports write amounts ("1.80" or 1.80).
    public var decimalText: String? {
        switch self {
        case let .number(n): return n
        case let .string(s): return s
        default: return nil
        }
    }

    /// A number's digits as written; nil for anything else.
    public var numberText: String? {
        if case let .number(n) = self { return n }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    public var objectValue: [(String, JSONValue)]? {
        if case let .object(o) = self { return o }
        return nil
    }

    /// The value of an integer number or of a string holding an integer; nil for anything else
    /// (fractions, exponents, out-of-range values).
    public var exactInt64: Int64? {
        switch self {
        case let .number(text): return Int64(exactly: text)
        default: return nil
        }
    }

    /// A short name of the value's type for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    public static func int(_ value: Int64) -> JSONValue { .number(String(value)) }
    public static func int(_ value: Int) -> JSONValue { .number(String(value)) }
    public static func optionalString(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
}

extension Int64 {
    /// Parses an integer written as plain digits with an optional minus sign; rejects "1.0", "1e3", "+1".
    public init?(exactly text: String) {
        var utf8 = text.utf8[...]
        guard !utf8.isEmpty else { return nil }
        var negative = false
        if utf8.first == UInt8(ascii: "-") { negative = true; utf8 = utf8.dropFirst() }
        guard !utf8.isEmpty, utf8.count <= 19 else { return nil }
        var value: Int64 = 0
        for byte in utf8 {
            guard byte >= 48, byte <= 57 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            // Accumulate negatively so Int64.min parses.
            let (s, o2) = m.subtractingReportingOverflow(Int64(byte - 48))
            guard !o1, !o2 else { return nil }
            value = s
        }
        if negative { self = value; return }
        guard value != .min else { return nil }
        self = -value
    }
}

/// Hashing agrees with `==`: numbers by their written digits, object members in order.
extension JSONValue: Hashable {
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case let .bool(b):
            hasher.combine(1)
            hasher.combine(b)
        case let .number(n):
            hasher.combine(2)
            hasher.combine(n)
        case let .string(s):
            hasher.combine(3)
            hasher.combine(s)
        case let .array(items):
            hasher.combine(4)
            hasher.combine(items.count)
            for v in items { v.hash(into: &hasher) }
        case let .object(members):
            hasher.combine(5)
            hasher.combine(members.count)
            for (k, v) in members {
                hasher.combine(k)
                v.hash(into: &hasher)
            }
        }
    }
}
