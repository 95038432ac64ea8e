public import ExactJSON

public enum VerifyMode: String, Sendable, Codable { case deep, incremental }

public struct VerifyRequest: Sendable, Hashable {
    public var account: String
    public var range: TimeRange
    public var mode: VerifyMode
    public var byDay: Bool
    public init(account: String, range: TimeRange, mode: VerifyMode = .deep, byDay: Bool = false) {
        self.account = account
        self.range = range
        self.mode = mode
        self.byDay = byDay
    }
}

/// The raw-vs-rollup self-check (docs/api.md).
public struct VerifyReport: Sendable, Hashable {
    public var ok: Bool
    public var mode: VerifyMode
    public var rollupSum: Int64
    public var rawSum: Int64
    public var drift: Int64
    public var segmentsChecked: Int
    public var segmentsCorrupt: Int
    public var mismatches: [Mismatch]
    public var days: [Day]?
    /// Why segments were found corrupt (not in the contract's example; shown for the operator).
    public var corruptSegments: [CorruptSegment] = []

    public struct Mismatch: Sendable, Hashable {
        public var meterID: String
        public var modelID: String?
        public var kind: EventKind
        public var dimensions: String
        public var hour: Timestamp
        public var rollupSum: Int64
        public var rawSum: Int64
        public var rollupCount: Int64
        public var rawCount: Int64
        public init(meterID: String, modelID: String?, kind: EventKind, dimensions: String, hour: Timestamp,
                    rollupSum: Int64, rawSum: Int64, rollupCount: Int64, rawCount: Int64) {
            self.meterID = meterID
            self.modelID = modelID
            self.kind = kind
            self.dimensions = dimensions
            self.hour = hour
            self.rollupSum = rollupSum
            self.rawSum = rawSum
            self.rollupCount = rollupCount
            self.rawCount = rawCount
        }
    }

    public struct Day: Sendable, Hashable {
        public var day: String
        public var rollupSum: Int64
        public var rawSum: Int64
        public var drift: Int64
        public init(day: String, rollupSum: Int64, rawSum: Int64, drift: Int64) {
            self.day = day
            self.rollupSum = rollupSum
            self.rawSum = rawSum
            self.drift = drift
        }
    }

    public struct CorruptSegment: Sendable, Hashable {
        public var segmentID: String
        public var reason: String
        public init(segmentID: String, reason: String) {
            self.segmentID = segmentID
            self.reason = reason
        }
    }

    public init(ok: Bool, mode: VerifyMode, rollupSum: Int64, rawSum: Int64, drift: Int64, segmentsChecked: Int,
                segmentsCorrupt: Int, mismatches: [Mismatch], days: [Day]?) {
        self.ok = ok
        self.mode = mode
        self.rollupSum = rollupSum
        self.rawSum = rawSum
        self.drift = drift
        self.segmentsChecked = segmentsChecked
        self.segmentsCorrupt = segmentsCorrupt
        self.mismatches = mismatches
        self.days = days
    }

    public var jsonValue: JSONValue {
        var m: [(String, JSONValue)] = [
            ("ok", .bool(ok)), ("mode", .string(mode.rawValue)), ("rollup_sum", .int(rollupSum)), ("raw_sum", .int(rawSum)),
            ("drift", .int(drift)), ("segments_checked", .int(segmentsChecked)), ("segments_corrupt", .int(segmentsCorrupt)),
            ("mismatches", .array(mismatches.map { x in
                var o: [(String, JSONValue)] = [("meter_id", .string(x.meterID)), ("model_id", .optionalString(x.modelID)),
                    ("kind", .string(x.kind.rawValue))]
                o.append(("dimensions", .object(UsageEvent.decodeDimensions(x.dimensions).map { ($0.key, .string($0.value)) })))
                o += [("hour", .string(x.hour.rfc3339)), ("rollup_sum", .int(x.rollupSum)), ("raw_sum", .int(x.rawSum)),
                      ("rollup_count", .int(x.rollupCount)), ("raw_count", .int(x.rawCount))]
                return .object(o)
            })),
        ]
        if !corruptSegments.isEmpty {
            m.append(("corrupt_segments", .array(corruptSegments.map {
                .object([("segment_id", .string($0.segmentID)), ("reason", .string($0.reason))])
            })))
        }
        if let days {
            m.append(("days", .array(days.map {
                .object([("day", .string($0.day)), ("rollup_sum", .int($0.rollupSum)), ("raw_sum", .int($0.rawSum)),
                         ("drift", .int($0.drift))])
            })))
        }
        return .object(m)
    }
}

/// Provenance of a period's numbers (docs/api.md).
public struct ExplainReport: Sendable, Hashable {
    public var accountID: String
    public var range: TimeRange
    public var totals: Breakdown
    public var breakdown: [Breakdown]
    public var segments: [SegmentInfo]
    public var chainHead: String?
    public var corrections: [CorrectionInfo]
    /// How much of the account's sealed history was re-hashed clean, by verify or the scrub.
    public var integrity: ScrubProgress?

    public struct Breakdown: Sendable, Hashable {
        public var modelID: String?
        public var usage: Int64 = 0
        public var corrections: Int64 = 0
        public var count: Int64 = 0
        public var net: Int64 { usage &+ corrections }
        public init(modelID: String? = nil) { self.modelID = modelID }
    }

    public struct SegmentInfo: Sendable, Hashable {
        public var segmentID: String
        public var firstTimestamp: Timestamp?
        public var lastTimestamp: Timestamp?
        public var events: Int64
        public var sum: Int64
        public var sha256: String?
        public var sealedAt: Timestamp?
        public init(segmentID: String, firstTimestamp: Timestamp?, lastTimestamp: Timestamp?, events: Int64, sum: Int64,
                    sha256: String?, sealedAt: Timestamp?) {
            self.segmentID = segmentID
            self.firstTimestamp = firstTimestamp
            self.lastTimestamp = lastTimestamp
            self.events = events
            self.sum = sum
            self.sha256 = sha256
            self.sealedAt = sealedAt
        }
    }

    public struct CorrectionInfo: Sendable, Hashable {
        public var event: UsageEvent
        public var postClose: Bool
        public init(event: UsageEvent, postClose: Bool) {
            self.event = event
            self.postClose = postClose
        }
    }

    public init(accountID: String, range: TimeRange, totals: Breakdown, breakdown: [Breakdown], segments: [SegmentInfo],
                chainHead: String?, corrections: [CorrectionInfo]) {
        self.accountID = accountID
        self.range = range
        self.totals = totals
        self.breakdown = breakdown
        self.segments = segments
        self.chainHead = chainHead
        self.corrections = corrections
    }

    public var jsonValue: JSONValue {
        func row(_ b: Breakdown, withModel: Bool) -> JSONValue {
            var m: [(String, JSONValue)] = withModel ? [("model_id", .optionalString(b.modelID))] : []
            m += [("usage", .int(b.usage)), ("corrections", .int(b.corrections)), ("net", .int(b.net)), ("count", .int(b.count))]
            return .object(m)
        }
        return .object([
            ("account_id", .string(accountID)), ("from", .string(range.from.rfc3339)), ("to", .string(range.to.rfc3339)),
            ("totals", row(totals, withModel: false)),
            ("breakdown", .array(breakdown.map { row($0, withModel: true) })),
            ("segments", .array(segments.map { s in
                .object([
                    ("segment_id", .string(s.segmentID)),
                    ("first_timestamp", .optionalString(s.firstTimestamp?.rfc3339)),
                    ("last_timestamp", .optionalString(s.lastTimestamp?.rfc3339)),
                    ("events", .int(s.events)), ("sum", .int(s.sum)), ("sha256", .optionalString(s.sha256)),
                    ("sealed_at", .optionalString(s.sealedAt?.rfc3339)),
                ])
            })),
            ("chain_head", .optionalString(chainHead)),
            ("integrity", integrity?.jsonValue ?? .null),
            ("corrections", .array(corrections.map { c in
                .object([
                    ("event_id", .string(c.event.eventID)), ("correction_ref", .optionalString(c.event.correctionRef)),
                    ("model_id", .optionalString(c.event.modelID)), ("meter_id", .string(c.event.meterID)),
                    ("quantity", .int(c.event.quantity)), ("timestamp", .string(c.event.timestamp.rfc3339)),
                    ("dimensions", .object(c.event.dimensions.map { ($0.key, .string($0.value)) })),
                    ("post_close", .bool(c.postClose)),
                ])
            })),
        ])
    }
}

/// Where the independent re-hashing of sealed segments stands (the scrub `usagebox serve` runs,
/// and every verify): a segment counts as verified only once its stored events were re-hashed clean.
public struct ScrubProgress: Sendable, Hashable {
    public var sealed: Int64 = 0
    /// Re-hashed clean and not found corrupt since.
    public var verified: Int64 = 0
    /// Found corrupt by the last re-hash.
    public var corrupt: Int64 = 0
    /// Sealed, never re-hashed yet.
    public var pending: Int64 = 0
    /// The oldest verification among the verified segments: every edit made before it was looked for.
    public var oldestVerification: Timestamp?
    public init() {}

    public var jsonValue: JSONValue {
        .object([("sealed_segments", .int(sealed)), ("verified", .int(verified)), ("corrupt", .int(corrupt)), ("pending", .int(pending)),
                 ("oldest_verification", .optionalString(oldestVerification?.rfc3339))])
    }
}

/// A closed calendar month of one account (docs/api.md).
public struct PeriodRecord: Sendable, Hashable {
    public var accountID: String
    public var period: String
    public var closedAt: Timestamp
    public init(accountID: String, period: String, closedAt: Timestamp) {
        self.accountID = accountID
        self.period = period
        self.closedAt = closedAt
    }

    public var jsonValue: JSONValue {
        .object([("account_id", .string(accountID)), ("period", .string(period)), ("closed_at", .string(closedAt.rfc3339))])
    }

    /// Validates `YYYY-MM`.
    public static func validate(_ period: String) throws -> Timestamp {
        guard let start = Timestamp(month: period) else {
            throw UsageBoxError.invalidArgument("period must be a calendar month written YYYY-MM, got '\(period)'", field: "period")
        }
        return start
    }
}

/// A meter: its unit and which dimensions its rollups keep (nil: all).
public struct MeterInfo: Sendable, Hashable {
    public var meterID: String
    public var unit: String?
    public var rollupDimensions: [String]?
    public init(meterID: String, unit: String?, rollupDimensions: [String]?) {
        self.meterID = meterID
        self.unit = unit
        self.rollupDimensions = rollupDimensions
    }

    public var jsonValue: JSONValue {
        .object([
            ("meter_id", .string(meterID)), ("unit", .optionalString(unit)),
            ("rollup_dimensions", rollupDimensions.map { .array($0.map(JSONValue.string)) } ?? .null),
        ])
    }
}

/// The answer of the read-only SQL endpoint (docs/api.md).
public struct SQLResult: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[JSONValue]]
    public var truncated: Bool
    public init(columns: [String], rows: [[JSONValue]], truncated: Bool) {
        self.columns = columns
        self.rows = rows
        self.truncated = truncated
    }

    public var jsonValue: JSONValue {
        .object([
            ("columns", .array(columns.map(JSONValue.string))),
            ("rows", .array(rows.map(JSONValue.array))),
            ("truncated", .bool(truncated)),
        ])
    }
}
