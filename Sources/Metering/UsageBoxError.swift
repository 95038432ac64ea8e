public import ExactJSON

/// The one error type every layer answers with; the HTTP server maps `code` to a status.
public struct UsageBoxError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case invalidArgument = "invalid_argument"
        case unauthenticated = "unauthenticated"
        case permissionDenied = "permission_denied"
        case notFound = "not_found"
        case conflict = "conflict"
        case payloadTooLarge = "payload_too_large"
        case unprocessable = "unprocessable"
        case verifyDrift = "verify_drift"
        /// A reconciliation whose evidence does not allow corrections was asked to apply them.
        case inconclusive = "inconclusive"
        /// Too many requests of a kind at once, or too many failed authentications: try again later.
        case rateLimited = "rate_limited"
        case timeout = "timeout"
        /// The store cannot be reached, or cannot answer completely, right now: nothing was
        /// stored or answered; try again later (`retryAfter`).
        case unavailable = "unavailable"
        case `internal` = "internal"
    }

    public var code: Code
    public var message: String
    public var field: String?
    /// For `rateLimited` and `unavailable`: seconds before trying again (the `Retry-After` header).
    public var retryAfter: Int?

    /// The message and field bounded: a JSON query naming an unknown member of 16.7 MB was
    /// answered with it three times, 50 MB past the 16 MiB answer limit (tester R2).
    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message.utf8.count <= Self.maxMessageBytes ? message : "\(message.prefix(Self.maxMessageBytes / 4))… (\(message.utf8.count) bytes)"
        self.field = field.map(EventDecoder.shown)
    }

    /// The longest message an error carries whole.
    public static let maxMessageBytes = 4_096

    public static func invalidArgument(_ message: String, field: String? = nil) -> UsageBoxError {
        UsageBoxError(.invalidArgument, message, field: field)
    }

    public static func unavailable(_ message: String, retryAfter: Int = 1) -> UsageBoxError {
        var e = UsageBoxError(.unavailable, message)
        e.retryAfter = retryAfter
        return e
    }

    public static func rateLimited(_ message: String, retryAfter: Int) -> UsageBoxError {
        var e = UsageBoxError(.rateLimited, message)
        e.retryAfter = retryAfter
        return e
    }

    public var description: String {
        if let field { return "\(message) (field: \(field))" }
        return message
    }
}

extension Int64 {
    /// `self + other`, or an error naming what would pass 64 bits: sums are checked, never wrapped.
    public func checkedAdding(_ other: Int64, _ what: @autoclosure () -> String) throws -> Int64 {
        let (r, overflow) = addingReportingOverflow(other)
        guard !overflow else { throw UsageBoxError.invalidArgument("adding up \(what()) overflows a 64-bit integer; read a shorter range", field: "from") }
        return r
    }
}

extension UsageBoxError {
    /// A read whose sum passes 64 bits (one tenant's huge event poisons every org-wide total): the
    /// answer says how to find it.
    /// `from`: every route that sums (usage, explain, verify, reconcile) has a range to narrow;
    /// it named `group_by`, which explain and verify do not take.
    public static let sumOverflow = UsageBoxError.invalidArgument(
        "a sum over this range overflows a 64-bit integer: narrow from/to (a usage read may also group by day or hour) "
            + "to find the events that carry it",
        field: "from")
}

extension UsageBoxError {
    /// An error about one event of a batch names it as `events[N].field`; N is the event's place
    /// in the request. A client that split a batch, or read it from a file, renumbers it.
    public var eventIndex: Int? {
        guard let f = field, f.hasPrefix("events["), let close = f.firstIndex(of: "]") else { return nil }
        return Int(f[f.index(f.startIndex, offsetBy: 7)..<close])
    }

    /// The same error with its event index mapped (a sub-batch's place → the whole batch's), and
    /// `prefix` before its message (the file and line the event came from).
    public func renumbered(_ map: (Int) -> Int, prefix: String = "") -> UsageBoxError {
        guard let i = eventIndex, let f = field, let close = f.firstIndex(of: "]") else { return self }
        var e = self
        e.field = "events[\(map(i))" + f[close...]
        e.message = prefix + message
        return e
    }
}

extension UsageBoxError {
    /// A request body that is no JSON, naming where (one wording for every route that reads one).
    public static func malformedBody(_ e: JSONParseError) -> UsageBoxError {
        .invalidArgument("malformed JSON body at line \(e.line), column \(e.column): \(e.message)", field: "body")
    }
}
