/// Lowercase hex, as the stores write hashes: segment hashes, event contents, running multiset hashes.
public enum LowercaseHex {
    public static func of(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A 256-bit value held as four 64-bit words, most significant first.
    public static func of(words: (UInt64, UInt64, UInt64, UInt64)) -> String {
        var out: [UInt8] = []
        append(words: words, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the 64 hex digits of a 256-bit value (most significant word first) to UTF-8 bytes.
    public static func append(words: (UInt64, UInt64, UInt64, UInt64), to out: inout [UInt8]) {
        for w in [words.0, words.1, words.2, words.3] {
            for shift in stride(from: 60, through: 0, by: -4) {
                let nibble = UInt8(truncatingIfNeeded: w >> UInt64(shift)) & 15
                out.append(nibble < 10 ? 0x30 + nibble : 0x57 + nibble)
            }
        }
    }
}
