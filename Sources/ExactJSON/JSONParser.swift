/// A strict RFC 8259 parser over UTF-8 bytes that produces `JSONValue`s with exact number text.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// 1-based line and column of the offending byte.
    public let line: Int
    public let column: Int
    public var description: String { "line \(line), column \(column): \(message)" }
    /// Where in the parsed bytes, when the line and column are still to be worked out.
    let offset: Int?

    public init(message: String, line: Int, column: Int) {
        self.init(message: message, line: line, column: column, offset: nil)
    }

    init(message: String, line: Int, column: Int, offset: Int?) {
        self.message = message
        self.line = line
        self.column = column
        self.offset = offset
    }
}

public enum JSONParser {
    /// Nesting limit, so hostile input cannot exhaust the stack.
    public static let maxDepth = 128

    public static func parse(_ text: String) throws -> JSONValue {
        var copy = text
        return try copy.withUTF8 { try parse(bytes: $0) }
    }

    public static func parse(bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var cursor = Cursor(bytes: bytes)
        cursor.skipWhitespace()
        let value = try cursor.parseValue(depth: 0)
        cursor.skipWhitespace()
        guard cursor.index == bytes.count else { throw cursor.error("unexpected data after the JSON value") }
        return value
    }

    public static func parse<Bytes: Collection>(bytes: Bytes) throws -> JSONValue where Bytes.Element == UInt8 {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { try parse(bytes: $0) }
    }

    struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        /// False while a stream tries a step that may only have run out of input: most such errors
        /// are retried with more bytes, so the line and column are worked out only for one that stays.
        var locatesErrors = true

        init(bytes: UnsafeBufferPointer<UInt8>, index: Int = 0, locatesErrors: Bool = true) {
            self.bytes = bytes
            self.index = index
            self.locatesErrors = locatesErrors
        }

        func error(_ message: String) -> JSONParseError {
            guard locatesErrors else { return JSONParseError(message: message, line: 0, column: 0, offset: index) }
            var line = 1, column = 1
            for i in 0..<min(index, bytes.count) {
                if bytes[i] == 10 { line += 1; column = 1 } else { column += 1 }
            }
            return JSONParseError(message: message, line: line, column: column)
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws -> JSONValue {
            guard depth < JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth)") }
            guard index < bytes.count else { throw error("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
            default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("unexpected end of input") }
            let lit = UnsafeBufferPointer(start: literal.utf8Start, count: count)
            for i in 0..<count where bytes[index + i] != lit[i] { throw error("invalid literal") }
            index += count
        }

        mutating func parseObject(depth: Int) throws -> JSONValue {
            index += 1
            var members: [(String, JSONValue)] = []
            // Small objects (events, export lines) check duplicate keys by scanning, comparing a
            // fingerprint of each key's bytes first; a Set only pays off for big ones.
            var seen: Set<String>?
            var fingerprints = InlineArray<16, UInt64>(repeating: 0)  // no allocation per object
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyStart = index
                let key = try parseString()
                if members.count < 16 {
                    // An escaped key (escapes shorten it) or one with non-ASCII bytes (String
                    // equality is canonical equivalence: "K" equals U+212A) is compared with every
                    // other key (fingerprint 0).
                    let written = keyStart + 1..<index - 1
                    let print = written.count == key.utf8.count ? fingerprint(written) : 0
                    for i in 0..<members.count {
                        let f = fingerprints[i]
                        if f == print || f == 0 || print == 0, members[i].0 == key { throw error("duplicate key \"\(key)\"") }
                    }
                    fingerprints[members.count] = print
                } else {
                    if seen == nil { seen = Set(members.map(\.0)) }
                    guard seen!.insert(key).inserted else { throw error("duplicate key \"\(key)\"") }
                }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                if members.isEmpty { members.reserveCapacity(8) }
                members.append((key, try parseValue(depth: depth + 1)))
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of input in object") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                throw error("expected ',' or '}'")
            }
        }

        mutating func parseArray(depth: Int) throws -> JSONValue {
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of input in array") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        }

        mutating func parseNumber() throws -> String {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: digits expected after '.'") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: exponent digits expected") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        }

        func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }

        /// A hash of an ASCII key's bytes as written (never 0): equal ASCII keys written without
        /// escapes have equal fingerprints. 0 for a key with any non-ASCII byte.
        func fingerprint(_ range: Range<Int>) -> UInt64 {
            var h = UInt64(range.count) &* 0x9E37_79B9_7F4A_7C15
            var high: UInt8 = 0
            for i in range {
                high |= bytes[i]
                h = (h ^ UInt64(bytes[i])) &* 0x100_0000_01B3
            }
            return high >= 0x80 ? 0 : h | 1
        }

        mutating func parseString() throws -> String {
            index += 1  // opening quote
            let start = index
            // Fast path: no escapes; pure ASCII needs no UTF-8 validation.
            var ascii = true
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    let s =
                        ascii
                        ? String(unsafeUninitializedCapacity: slice.count) { dest in
                            _ = dest.initialize(fromContentsOf: slice)
                            return slice.count
                        } : try validatedString(slice)
                    index += 1
                    return s
                }
                if b >= 0x80 { ascii = false }
                if b == UInt8(ascii: "\\") { break }
                if b < 0x20 { throw error("control character in string") }
                index += 1
            }
            var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    index += 1
                    return try out.withUnsafeBufferPointer { try validatedString($0) }
                }
                if b < 0x20 { throw error("control character in string") }
                if b != UInt8(ascii: "\\") { out.append(b); index += 1; continue }
                index += 1
                guard index < bytes.count else { break }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate in string")
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("unpaired surrogate in string")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid unicode escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("invalid escape")
                }
            }
            throw error("unterminated string")
        }

        mutating func parseHex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("invalid unicode escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[index]
                let d: UInt32
                switch b {
                case 48...57: d = UInt32(b - 48)
                case 65...70: d = UInt32(b - 55)
                case 97...102: d = UInt32(b - 87)
                default: throw error("invalid unicode escape")
                }
                v = v << 4 | d
                index += 1
            }
            return v
        }

        func validatedString(_ buffer: UnsafeBufferPointer<UInt8>) throws -> String {
            guard let s = String(validating: buffer, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
            return s
        }
    }
}
