/// Lowercase hex, as the stores write hashes: segment hashes, event contents, running multiset hashes.
public enum LowercaseHex {
    public static func of(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digit(b >> 4))
            out.append(digit(b & 15))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The lowercase hex digit of a nibble (0–15), as an ASCII byte.
    @inline(__always) static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }

    /// A 256-bit value held as four 64-bit words, most significant first.
    public static func of(words: (UInt64, UInt64, UInt64, UInt64)) -> String {
        var out: [UInt8] = []
        append(words: words, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the 64 hex digits of a 256-bit value (most significant word first) to UTF-8 bytes.
    public static func append(words: (UInt64, UInt64, UInt64, UInt64), to out: inout [UInt8]) {
        // Per event on the ClickHouse write path: no array of the words, one digit at a time.
        func put(_ w: UInt64) {
            for shift in stride(from: 60, through: 0, by: -4) { out.append(digit(UInt8(truncatingIfNeeded: w >> UInt64(shift)) & 15)) }
        }
        put(words.0)
        put(words.1)
        put(words.2)
        put(words.3)
    }
}
