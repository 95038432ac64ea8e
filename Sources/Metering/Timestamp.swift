public import ExactJSON

/// A UTC instant in whole microseconds since 1970-01-01T00:00:00Z.
///
/// Events are stored and compared as integers; RFC 3339 text is only the wire form.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }
    public init(seconds: Int64) { self.microseconds = seconds * 1_000_000 }

    /// Unix seconds read from outside (an export's `start_time`): nil outside the years 0000–9999
    /// that RFC 3339 can write, rather than a trap on overflow.
    public init?(unixSeconds: Int64) {
        guard (-62_167_219_200...253_402_300_799).contains(unixSeconds) else { return nil }
        self.microseconds = unixSeconds * 1_000_000
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.microseconds < b.microseconds }

    public static let microsPerHour: Int64 = 3_600_000_000

    /// Hours since the epoch (floor), the rollup bucket.
    public var hour: Int64 { floorDiv(microseconds, Self.microsPerHour) }
    public var day: Int64 { floorDiv(microseconds, Self.microsPerHour * 24) }
    public var isWholeHour: Bool { microseconds % Self.microsPerHour == 0 }

    public static func ofHour(_ hour: Int64) -> Timestamp { Timestamp(microseconds: hour * microsPerHour) }

    /// RFC 3339 in UTC: `2026-05-01T00:00:00Z`, with `.ffffff` only when sub-second.
    public var description: String { rfc3339 }

    public var rfc3339: String {
        String(unsafeUninitializedCapacity: Self.maxRFC3339Length) { writeRFC3339(into: $0) }
    }

    /// Appends `rfc3339`'s bytes without building a `String` (the canonical encoding of every event).
    public func appendRFC3339(to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maxRFC3339Length) { buf in
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[..<writeRFC3339(into: buf)]))
        }
    }

    static let maxRFC3339Length = 27

    /// Writes `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` digit by digit (this runs for every event hashed);
    /// returns the length. `fixedWidth` writes the fraction always (27 bytes).
    private func writeRFC3339(into buf: UnsafeMutableBufferPointer<UInt8>, fixedWidth: Bool = false) -> Int {
        let secs = floorDiv(microseconds, 1_000_000)
        let micros = microseconds - secs * 1_000_000
        let days = floorDiv(secs, 86_400)
        let rem = secs - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        var i = 0
        func digits(_ v: Int64, _ width: Int) {
            var v = v
            for k in stride(from: width - 1, through: 0, by: -1) {
                buf[i + k] = UInt8(48 + v % 10)
                v /= 10
            }
            i += width
        }
        func char(_ c: UInt8) { buf[i] = c; i += 1 }
        digits(y, 4); char(45); digits(m, 2); char(45); digits(d, 2); char(84)
        digits(rem / 3600, 2); char(58); digits(rem % 3600 / 60, 2); char(58); digits(rem % 60, 2)
        if micros != 0 || fixedWidth { char(46); digits(micros, 6) }
        char(90)
        return i
    }

    /// `YYYY-MM-DD` of the UTC day.
    public var dayString: String {
        let (y, m, d) = civil(fromDays: day)
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2)
    }

    /// The first instant of the UTC day after the one `t` falls in.
    public static func startOfDay(after t: Timestamp) -> Timestamp { Timestamp(microseconds: (t.day + 1) * microsPerHour * 24) }

    /// The first instant of `t`'s UTC day.
    public var startOfDay: Timestamp { Timestamp(microseconds: day * Self.microsPerHour * 24) }

    /// Parses `YYYY-MM-DD` as that day's first instant in UTC.
    public init?(date text: String) {
        guard text.utf8.count == 10, let t = Timestamp(rfc3339: text + "T00:00:00Z") else { return nil }
        self = t
    }

    /// Months since January of year 0 (the UTC month's ordinal): consecutive months differ by one.
    public var monthIndex: Int64 {
        let (y, m, _) = civil(fromDays: day)
        return Int64(y) * 12 + Int64(m) - 1
    }

    /// `YYYY-MM` of the UTC month.
    public var monthString: String {
        let (y, m, _) = civil(fromDays: day)
        return pad(y, 4) + "-" + pad(m, 2)
    }

    /// `YYYY-MM-DDTHH:00:00Z` of the hour.
    public var hourString: String { Timestamp.ofHour(hour).rfc3339 }

    /// Parses RFC 3339 with a mandatory offset (`Z` or `±HH:MM`), at most microsecond precision.
    public init?(rfc3339 text: String) {
        guard let t = Timestamp(rfc3339Bytes: Array(text.utf8)) else { return nil }
        self = t
    }

    /// The same, of UTF-8 bytes indexed from 0: the SQL view's collation compares stored
    /// timestamps without building a string for each.
    public init?<Bytes: RandomAccessCollection>(rfc3339Bytes b: Bytes) where Bytes.Element == UInt8, Bytes.Index == Int {
        guard b.startIndex == 0, b.count >= 20 else { return nil }
        func num(_ from: Int, _ len: Int) -> Int64? {
            guard from + len <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + len) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == 32,
            let h = num(11, 2), b[13] == 58, let mi = num(14, 2), b[16] == 58, let s = num(17, 2)
        else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= daysIn(month: mo, year: y), h < 24, mi < 60, s < 60 else { return nil }
        var i = 19
        var micros: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 6 {
                    micros = micros * 10 + Int64(b[i] - 48)
                } else if b[i] != 48 {
                    return nil  // finer than a microsecond: refuse rather than silently truncate
                }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        guard i < b.count else { return nil }
        var offsetSeconds: Int64 = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58, let om = num(i + 4, 2), oh < 24, om < 60 else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(y, mo, d)
        let secs = days * 86_400 + h * 3600 + mi * 60 + s - offsetSeconds
        self.microseconds = secs * 1_000_000 + micros
        // An offset can carry the instant out of years 0000–9999 in UTC (`9999-12-31T23:59:59-23:59`),
        // which no answer can write back (it echoed year 0000 and a day "00-1-12-31").
        guard (0...9999).contains(civil(fromDays: day).0) else { return nil }
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always 27 bytes, whose byte order is time order; false
    /// (nothing meaningful written) outside years 0–9999. The SQL view's collation compares by it.
    public func writeFixedWidth(to p: UnsafeMutablePointer<UInt8>) -> Bool {
        guard (0...9999).contains(civil(fromDays: day).0) else { return false }
        return writeRFC3339(into: UnsafeMutableBufferPointer(start: p, count: 27), fixedWidth: true) == 27
    }

    /// First instant of the UTC month `YYYY-MM`.
    public init?(month text: String) {
        guard text.utf8.count == 7, let ts = Timestamp(rfc3339: text + "-01T00:00:00Z") else { return nil }
        self = ts
    }

    /// First instant of the next UTC month.
    public var startOfNextMonth: Timestamp {
        let (y, m, _) = civil(fromDays: day)
        let (ny, nm) = m == 12 ? (y + 1, Int64(1)) : (y, m + 1)
        return Timestamp(seconds: daysFromCivil(ny, nm, 1) * 86_400)
    }

    public var startOfMonth: Timestamp {
        let (y, m, _) = civil(fromDays: day)
        return Timestamp(seconds: daysFromCivil(y, m, 1) * 86_400)
    }

    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(microseconds: Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000)
    }
}

@inline(__always) func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

private func pad(_ v: Int64, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

private func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

private func daysIn(month m: Int64, year y: Int64) -> Int64 {
    switch m {
    case 2: return isLeap(y) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

/// Howard Hinnant's days-from-civil, exact for the proleptic Gregorian calendar.
func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
    let y = m <= 2 ? y0 - 1 : y0
    let era = floorDiv(y, 400)
    let yoe = y - era * 400
    let mp = (m + 9) % 12
    let doy = (153 * mp + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
    let z = z0 + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encoded as its RFC 3339 text in UTC (`2026-05-31T23:59:59Z`).
extension Timestamp: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let t = Timestamp(rfc3339: text) else {
            throw JSONValueDecoder.Failure(path: JSONValueDecoder.pathText(decoder.codingPath), message: "'\(text)' is not an RFC 3339 timestamp with offset")
        }
        self = t
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rfc3339)
    }
}

/// A half-open time range `[from, to)`.
public struct TimeRange: Sendable, Hashable {
    public var from: Timestamp
    public var to: Timestamp

    public init(from: Timestamp, to: Timestamp) throws {
        guard from < to else {
            throw UsageBoxError.invalidArgument("'from' must be earlier than 'to'", field: "from")
        }
        self.from = from
        self.to = to
    }

    /// Parses the two RFC 3339 parameters, naming the one that is wrong.
    public init(from: String?, to: String?) throws {
        guard let fromText = from else { throw UsageBoxError.invalidArgument("'from' is required", field: "from") }
        guard let toText = to else { throw UsageBoxError.invalidArgument("'to' is required", field: "to") }
        guard let f = Timestamp(rfc3339: fromText) else {
            throw UsageBoxError.invalidArgument("'from' is not an RFC 3339 timestamp with offset: \(fromText)", field: "from")
        }
        guard let t = Timestamp(rfc3339: toText) else {
            throw UsageBoxError.invalidArgument("'to' is not an RFC 3339 timestamp with offset: \(toText)", field: "to")
        }
        try self.init(from: f, to: t)
    }

    public func contains(_ t: Timestamp) -> Bool { t >= from && t < to }
}
