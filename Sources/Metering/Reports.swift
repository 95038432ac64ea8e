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
/// The rollup and raw totals a verify reports, added wide. A tampered rollup of Int64.max beside
/// other hours passed 64 bits, and verify refused with "read a shorter range", which no range
/// could follow; the sides differing is drift, reported with the totals saturated. Sides that
/// agree past 64 bits (an account's true total too large for one answer) are saturated too.
public struct VerifyTotals: Sendable {
    /// Sums and drifts a verify reports per day and in all, saturating: any drift fails the
    /// check, so its size past 64 bits does not matter, but a wrap or a refusal would.
    public static func saturating(_ a: Int64, _ b: Int64) -> Int64 {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : s
    }

    public private(set) var rollup: Int128 = 0
    public private(set) var raw: Int128 = 0
    public init() {}

    public mutating func add(rollup r: Int64, raw w: Int64) {
        rollup += Int128(r)
        raw += Int128(w)
    }

    /// Adds sums kept as high and low halves (high × 2^32 + low), as the ClickHouse store keeps them.
    public mutating func add(rollupHigh: Int64, rollupLow: Int64, rawHigh: Int64, rawLow: Int64) {
        rollup += Int128(rollupHigh) * 4_294_967_296 + Int128(rollupLow)
        raw += Int128(rawHigh) * 4_294_967_296 + Int128(rawLow)
    }

    /// The totals as a report states them: past 64 bits, at the largest (or smallest). Sides that
    /// agree past 64 bits were refused with "read a shorter range", which no range could follow
    /// when one hour holds them (verify compares whole hours): they are reported, clean.
    public func reported() -> (rollup: Int64, raw: Int64) {
        func clamp(_ v: Int128) -> Int64 { v > Int128(Int64.max) ? .max : v < Int128(Int64.min) ? .min : Int64(v) }
        return (clamp(rollup), clamp(raw))
    }
}

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
        /// Which rollup differs from the raw events: an hourly cell (`hour` is its hour) or a
        /// daily one (`hour` is the day's first). Both are compared with the raw events, never
        /// with each other: a day checked against its hourly rollups reported an hour's error
        /// twice, once under a raw sum no hour held.
        public var rollup: Rollup
        public enum Rollup: String, Sendable, Hashable, Codable { case hour, day }
        /// The cell's smallest and largest quantities, rollup and raw, when they differ (reads of
        /// `min` and `max` are answered from rollups too): nil when they agree or were not compared.
        public var extrema: Extrema?
        public struct Extrema: Sendable, Hashable {
            public var rollupMin: Int64, rawMin: Int64, rollupMax: Int64, rawMax: Int64
            public init(rollupMin: Int64, rawMin: Int64, rollupMax: Int64, rawMax: Int64) {
                (self.rollupMin, self.rawMin, self.rollupMax, self.rawMax) = (rollupMin, rawMin, rollupMax, rawMax)
            }
            /// The extrema of a cell both sides hold events of, when they differ.
            public static func differing(rollup: (min: Int64, max: Int64), raw: (min: Int64, max: Int64)) -> Extrema? {
                rollup == raw ? nil : Extrema(rollupMin: rollup.min, rawMin: raw.min, rollupMax: rollup.max, rawMax: raw.max)
            }
        }
        public init(
            meterID: String, modelID: String?, kind: EventKind, dimensions: String, hour: Timestamp,
            rollupSum: Int64, rawSum: Int64, rollupCount: Int64, rawCount: Int64, rollup: Rollup = .hour
        ) {
            self.rollup = rollup
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

    public init(
        ok: Bool, mode: VerifyMode, rollupSum: Int64, rawSum: Int64, drift: Int64, segmentsChecked: Int,
        segmentsCorrupt: Int, mismatches: [Mismatch], days: [Day]?
    ) {
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
    /// Segments and corrections left out of the lists (the earliest), past `listLimit` each.
    public var segmentsOmitted: Int = 0
    public var correctionsOmitted: Int = 0
    /// Events of the range stored after their month closed (Corrections only), counted apart from
    /// the lists' cap: past 1,000 later corrections, a post-close one was in no read (tester O).
    public var postClose = PostClose()

    /// On the wire as `{"events", "sum"}`, its own names.
    public struct PostClose: Sendable, Hashable, Codable {
        public var events: Int64 = 0
        public var sum: Int64 = 0
        public init(events: Int64 = 0, sum: Int64 = 0) {
            self.events = events
            self.sum = sum
        }
    }

    /// Every answer is bounded: an account with 40,000 corrections made a 57 MB explain.
    public static let listLimit = 1000

    /// The report with at most `listLimit` segments and corrections, the latest ones; the totals
    /// and breakdown still count everything.
    public func capped(_ limit: Int = listLimit) -> ExplainReport {
        var r = self
        r.segmentsOmitted += max(0, segments.count - limit)
        r.correctionsOmitted += max(0, corrections.count - limit)
        r.segments = Array(segments.suffix(limit))
        r.corrections = Array(corrections.suffix(limit))
        return r
    }

    public struct Breakdown: Sendable, Hashable {
        public var modelID: String?
        /// The events' unit: a model metered in tokens and in `kTok` or images is a row per unit
        /// (they were added together, 1,000,000 tokens and 5 kTok read 1,000,005: tester O). The
        /// totals still add every event whatever its unit.
        public var unit: String?
        public var usage: Int64 = 0
        public var corrections: Int64 = 0
        public var count: Int64 = 0
        public var net: Int64 { usage &+ corrections }
        public init(modelID: String? = nil) { self.modelID = modelID }
    }

    public struct SegmentInfo: Sendable, Hashable {
        /// How every store names a segment in answers: `seg_` and its number, eight digits at least.
        public static func name(_ id: some BinaryInteger) -> String {
            let s = String(id)
            return "seg_" + String(repeating: "0", count: max(0, 8 - s.count)) + s
        }
        public var segmentID: String
        public var firstTimestamp: Timestamp?
        public var lastTimestamp: Timestamp?
        public var events: Int64
        public var sum: Int64
        public var sha256: String?
        public var sealedAt: Timestamp?
        public init(
            segmentID: String, firstTimestamp: Timestamp?, lastTimestamp: Timestamp?, events: Int64, sum: Int64,
            sha256: String?, sealedAt: Timestamp?
        ) {
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

    public init(
        accountID: String, range: TimeRange, totals: Breakdown, breakdown: [Breakdown], segments: [SegmentInfo],
        chainHead: String?, corrections: [CorrectionInfo]
    ) {
        self.accountID = accountID
        self.range = range
        self.totals = totals
        self.breakdown = breakdown
        self.segments = segments
        self.chainHead = chainHead
        self.corrections = corrections
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

    /// Validates `YYYY-MM`.
    public static func validate(_ period: String) throws -> Timestamp {
        guard let start = Timestamp(month: period) else {
            throw UsageBoxError.invalidArgument("period must be a calendar month written YYYY-MM, got '\(period)'", field: "period")
        }
        return start
    }

    /// A month that can be closed at `now`: one that has ended. There is no reopen, so closing the
    /// current month (or a mistyped year ahead) would refuse that month's usage for good.
    public static func validateClosable(_ period: String, now: Timestamp) throws {
        let start = try validate(period)
        let end = start.startOfNextMonth
        // Nothing can be dated before 1970 (events are refused there): such a close only locks a
        // month forever for nothing, and cannot be undone.
        guard start.microseconds >= 0 else {
            throw UsageBoxError.invalidArgument("period \(period) is before 1970, where no event can be dated", field: "period")
        }
        guard end <= now else {
            throw UsageBoxError.invalidArgument(
                "period \(period) has not ended (it ends \(end.rfc3339)); a closed month cannot be reopened, so close it once it is over",
                field: "period")
        }
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

}

// Wire names of the report shapes (synthesized coding needs them in this file).
extension VerifyReport.Day: Codable {
    enum CodingKeys: String, CodingKey { case day, rollupSum = "rollup_sum", rawSum = "raw_sum", drift }
}

extension VerifyReport.CorruptSegment: Codable {
    enum CodingKeys: String, CodingKey { case segmentID = "segment_id", reason }
}

extension ExplainReport.SegmentInfo: Codable {
    enum CodingKeys: String, CodingKey {
        case segmentID = "segment_id", firstTimestamp = "first_timestamp", lastTimestamp = "last_timestamp", events, sum, sha256
        case sealedAt = "sealed_at"
    }
}

extension ScrubProgress: Codable {
    enum CodingKeys: String, CodingKey { case sealed = "sealed_segments", verified, corrupt, pending, oldestVerification = "oldest_verification" }
}

extension PeriodRecord: WireShape {
    enum CodingKeys: String, CodingKey { case accountID = "account_id", period, closedAt = "closed_at" }
}

extension MeterInfo: WireShape {
    enum CodingKeys: String, CodingKey { case meterID = "meter_id", unit, rollupDimensions = "rollup_dimensions" }
}

extension SQLResult: WireShape {
    enum CodingKeys: String, CodingKey { case columns, rows, truncated }
}

extension ExplainReport {
    /// Totals and the per-model breakdown (models in byte order, none first) from a read grouped by
    /// model and kind; every sum checked.
    public static func breakdown(_ byModel: UsageResult) throws -> (totals: Breakdown, models: [Breakdown]) {
        var totals = Breakdown()
        struct Row: Hashable {
            var model, unit: String?
        }
        var models: [Row: Breakdown] = [:]
        for g in byModel.groups {
            let model = g.keys[0]
            let row = Row(model: model, unit: g.keys.count > 2 ? g.keys[2] : nil)
            var b = models[row] ?? Breakdown(modelID: model)
            b.unit = row.unit
            if g.keys[1] == EventKind.correction.rawValue {
                b.corrections = try b.corrections.checkedAdding(g.aggregate.sum, "the corrections of \(model ?? "(no model)")")
                totals.corrections = try totals.corrections.checkedAdding(g.aggregate.sum, "the corrections")
            } else {
                b.usage = try b.usage.checkedAdding(g.aggregate.sum, "the usage of \(model ?? "(no model)")")
                totals.usage = try totals.usage.checkedAdding(g.aggregate.sum, "the usage")
            }
            _ = try b.usage.checkedAdding(b.corrections, "the net of \(model ?? "(no model)")")
            _ = try totals.usage.checkedAdding(totals.corrections, "the net total")
            b.count += g.aggregate.count
            totals.count += g.aggregate.count
            models[row] = b
        }
        func precedes(_ a: String?, _ b: String?) -> Bool {
            guard let x = a else { return b != nil }
            guard let y = b else { return false }
            return x.utf8.lexicographicallyPrecedes(y.utf8)
        }
        let breakdown = models.values.sorted { a, b in a.modelID == b.modelID ? precedes(a.unit, b.unit) : precedes(a.modelID, b.modelID) }
        return (totals, breakdown)
    }
}
