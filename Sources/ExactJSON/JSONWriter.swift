/// Serializes `JSONValue`s compactly (or pretty, two-space indented) keeping member order.
public enum JSONWriter {
    public static func write(_ value: JSONValue, pretty: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(256)
        append(value, to: &out, pretty: pretty, indent: 0)
        return out
    }

    public static func append(_ value: JSONValue, to out: inout String, pretty: Bool = false, indent: Int = 0) {
        switch value {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n): out += n
        case let .string(s): appendString(s, to: &out)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                if pretty { newline(&out, indent + 1) }
                append(item, to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&out, indent) }
            out += "]"
        case let .object(members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += "," }
                if pretty { newline(&out, indent + 1) }
                appendString(k, to: &out)
                out += pretty ? ": " : ":"
                append(v, to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&out, indent) }
            out += "}"
        }
    }

    private static func newline(_ out: inout String, _ indent: Int) {
        out += "\n"
        out += String(repeating: "  ", count: indent)
    }

    /// Appends `s` as a JSON string to UTF-8 bytes, escaped exactly as `appendString(_:to:)` on a
    /// `String` does (the hot paths that write bytes: canonical encodings, ClickHouse rows).
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendString(utf8: $0, to: &out) }
    }

    /// Appends an integer's decimal digits (a `-` first when negative), as `String(n)` spells
    /// it, without building the `String`: ingest writes a few per event.
    public static func appendInteger(_ n: Int64, to out: inout [UInt8]) {
        if n < 0 { out.append(0x2D) }
        appendInteger(unsigned: n.magnitude, to: &out)
    }

    /// The same for an unsigned integer.
    public static func appendInteger(unsigned n: UInt64, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 20 digits at most, on the stack
        withUnsafeMutableBytes(of: &digits) { buf in
            var v = n
            var i = 20
            repeat {
                i -= 1
                buf[i] = UInt8(truncatingIfNeeded: 48 + v % 10)
                v /= 10
            } while v != 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<20]))
        }
    }

    /// Whether a byte of a string's UTF-8 must be escaped in JSON (control characters, `"`, `\`).
    @inline(__always) static func needsEscape(_ b: UInt8) -> Bool { b < 0x20 || b == 0x22 || b == 0x5C }

    /// The bytes `appendString(utf8:to:)` writes for these, quotes included: what an answer's size
    /// bound must count (a value of quotes or control characters doubles or sextuples).
    public static func encodedLength(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var n = bytes.count + 2
        for b in bytes where needsEscape(b) {
            switch b {
            case 0x22, 0x5C, 0x0A, 0x0D, 0x09: n += 1
            default: n += 5
            }
        }
        return n
    }

    /// The same for a `String`.
    public static func encodedLength(_ s: String) -> Int {
        var s = s
        return s.withUTF8 { encodedLength(utf8: $0) }
    }

    /// Appends UTF-8 bytes as a JSON string (quotes included); one pass when nothing needs escaping.
    public static func appendString(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        guard bytes.contains(where: needsEscape) else {
            out.append(contentsOf: bytes)
            out.append(0x22)
            return
        }
        for b in bytes {
            switch b {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case ..<0x20: out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, 0x30 + (b >> 4), (b & 15) < 10 ? 0x30 + (b & 15) : 0x57 + (b & 15)])
            default: out.append(b)
            }
        }
        out.append(0x22)
    }

    /// The compact form as UTF-8 bytes, counted first so the array is allocated once at its size
    /// (a 26 MB answer grown by doubling, then copied to a string with its newline and to the
    /// response, held five times its size at once), with `suffix` (a newline) after it.
    public static func bytes(_ value: JSONValue, suffix: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encodedLength(value) + suffix.count)
        appendBytes(value, to: &out)
        out += suffix
        return out
    }

    /// The bytes `bytes(_:)` writes for `value`.
    public static func encodedLength(_ value: JSONValue) -> Int {
        switch value {
        case .null: return 4
        case let .bool(b): return b ? 4 : 5
        case let .number(n): return n.utf8.count
        case let .string(s): return encodedLength(s)
        case let .array(items): return items.reduce(max(items.count - 1, 0) + 2) { $0 + encodedLength($1) }
        case let .object(members): return members.reduce(max(members.count - 1, 0) + 2) { $0 + encodedLength($1.0) + 1 + encodedLength($1.1) }
        }
    }

    /// Appends the compact form of `value` to UTF-8 bytes.
    public static func appendBytes(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .number(n): out.append(contentsOf: n.utf8)
        case let .string(s): appendString(s, to: &out)
        case let .array(items):
            out.append(0x5B)
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(0x2C) }
                appendBytes(item, to: &out)
            }
            out.append(0x5D)
        case let .object(members):
            out.append(0x7B)
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out.append(0x2C) }
                appendString(k, to: &out)
                out.append(0x3A)
                appendBytes(v, to: &out)
            }
            out.append(0x7D)
        }
    }

    /// Appends `s` as a JSON string; escaping, when needed, is the byte writer's.
    public static func appendString(_ s: String, to out: inout String) {
        var s = s
        let escaped: [UInt8]? = s.withUTF8 { bytes in
            guard bytes.contains(where: needsEscape) else { return nil }
            var escaped: [UInt8] = []
            appendString(utf8: bytes, to: &escaped)
            return escaped
        }
        if let escaped {
            out += String(decoding: escaped, as: UTF8.self)
        } else {
            out += "\""
            out += s
            out += "\""
        }
    }
}
