public import ExactJSON

/// Which accounts a request may see.
public enum AccountScope: Sendable, Hashable {
    case all
    case accounts([String])

    public func allows(_ account: String) -> Bool {
        switch self {
        case .all: return true
        case let .accounts(list): return list.contains(account)
        }
    }

    /// The narrower of two scopes.
    public func intersect(_ other: AccountScope) -> AccountScope {
        switch (self, other) {
        case (.all, _): return other
        case (_, .all): return self
        case let (.accounts(a), .accounts(b)): return .accounts(a.filter(b.contains))
        }
    }
}

/// An event field or a dimension, as named in `group_by` and filters.
public enum UsageField: Sendable, Hashable {
    case accountID, meterID, modelID, kind, unit
    case hour, day, month
    case dimension(String)

    /// The name used in requests and in result groups (`dim.NAME` for colliding dimensions).
    public var name: String {
        switch self {
        case .accountID: return "account_id"
        case .meterID: return "meter_id"
        case .modelID: return "model_id"
        case .kind: return "kind"
        case .unit: return "unit"
        case .hour: return "hour"
        case .day: return "day"
        case .month: return "month"
        // A dimension named like a field, a parameter or a metric, or itself starting `dim.`, goes
        // by `dim.NAME`: the dimensions `hour` and `dim.hour` are `dim.hour` and `dim.dim.hour`
        // (both came back as `dim.hour`, one group key lost).
        case let .dimension(d): return UsageField.reservedNames.contains(d) || d.hasPrefix("dim.") ? "dim." + d : d
        }
    }

    /// Field, parameter and metric names a dimension can only be reached through as `dim.NAME`
    /// (a dimension `sum` grouped as `sum` was written under the metric's name in each group, and
    /// the metric overwrote it: the groups came back alike).
    public static let reservedNames: Set<String> = Set(
        [
            "event_id", "account_id", "meter_id", "model_id", "kind", "unit", "source", "from", "to", "group_by",
            "hour", "day", "month",
        ] + UsageMetric.allCases.map(\.rawValue))

    /// The refusal of a dimension no event in scope carries, as every backend words it. The field
    /// is the dimension's name (callers retry without a dimension they name so), which a
    /// `dim.` prefix sent with it does not change.
    public static func unknownDimension(_ field: UsageField, in q: UsageQuery) -> UsageBoxError {
        UsageBoxError.invalidArgument(
            "unknown \(q.groupBy.contains(field) ? "group_by" : "filter") '\(field.name)': it is neither an event field nor a dimension seen on these events",
            field: field.name)
    }

    /// Parses a `group_by` or filter name.
    /// `member`: where the name was given (`group_by`, `filters[0].field`), which an error names;
    /// by default the name is itself the parameter (a filter such as `model_id=…`).
    public init(parsing name: String, member: String? = nil) throws {
        switch name {
        case "account_id": self = .accountID
        case "meter_id": self = .meterID
        case "model_id": self = .modelID
        case "kind": self = .kind
        case "unit": self = .unit
        case "hour": self = .hour
        case "day": self = .day
        case "month": self = .month
        default:
            if name.hasPrefix("dim.") {
                let d = String(name.dropFirst(4))
                guard !d.isEmpty else { throw UsageBoxError.invalidArgument("empty dimension name in '\(name)'", field: member ?? name) }
                self = .dimension(d)
            } else if UsageField.reservedNames.contains(name) || name.isEmpty {
                // `source` is a query parameter too: a dimension of that name is `dim.source`.
                throw UsageBoxError.invalidArgument(
                    "'\(name)' cannot be grouped or filtered on\(name.isEmpty ? "" : " (a dimension of that name is dim.\(name))")", field: member ?? name)
            } else {
                self = .dimension(name)
            }
        }
    }

    public var isDimension: Bool {
        if case .dimension = self { return true } else { return false }
    }

    public var isTimeBucket: Bool {
        switch self {
        case .hour, .day, .month: return true
        default: return false
        }
    }
}

public struct UsageFilter: Sendable, Hashable {
    public enum Op: String, Sendable { case eq, neq, `in`, notIn = "not_in" }
    public var field: UsageField
    public var op: Op
    public var values: [String] { didSet { valueSet = Set(values) } }
    /// `values` hashed: a filter of 10,000 values scanned on every row of a read took a minute
    /// over 20,000 distinct dimension values (tester R).
    private var valueSet: Set<String>

    public init(field: UsageField, op: Op, values: [String]) {
        self.field = field
        self.op = op
        self.values = values
        self.valueSet = Set(values)
    }

    /// Whether a (possibly absent) value passes the filter. An absent value matches no `eq`/`in`.
    public func matches(_ value: String?) -> Bool {
        switch op {
        case .eq, .in: return value.map(valueSet.contains) ?? false
        case .neq, .notIn: return value.map { !valueSet.contains($0) } ?? true
        }
    }
}

public enum UsageMetric: String, Sendable, Hashable, CaseIterable { case sum, count, min, max, avg }

public enum SourcePreference: String, Sendable { case auto, rollup, raw }

/// A grouped read of usage (docs/api.md).
public struct UsageQuery: Sendable, Hashable {
    public var scope: AccountScope
    public var range: TimeRange
    public var groupBy: [UsageField]
    public var filters: [UsageFilter]
    public var metrics: [UsageMetric]
    public var source: SourcePreference

    public init(
        scope: AccountScope, range: TimeRange, groupBy: [UsageField] = [], filters: [UsageFilter] = [],
        metrics: [UsageMetric] = [.sum, .count], source: SourcePreference = .auto
    ) {
        self.scope = scope
        self.range = range
        self.groupBy = groupBy
        self.filters = filters
        self.metrics = metrics
        self.source = source
    }

    /// Whether rows of `meterID` may be in the answer: every filter on the meter admits it. Only
    /// those meters' kept dimensions decide whether rollups can answer (another meter's refused a
    /// rollup read of one that keeps everything: tester R2).
    public func admits(meterID: String) -> Bool {
        filters.allSatisfy { $0.field != .meterID || $0.matches(meterID) }
    }

    /// The most hour, day or month buckets a grouped answer's range may span, on the server and
    /// on a local file alike (the CLI answered what `--server` refused: tester O).
    public static let maxTimeBuckets = 10_000

    /// Refuses a range that spans more than `limit` buckets of a time field it groups by: the
    /// buckets the range touches, its first instant's through its last's (calendar months, not
    /// 28 days each: 9,600 months were counted as 10,436 and refused).
    public func checkTimeBuckets(limit: Int = UsageQuery.maxTimeBuckets) throws {
        let first = range.from, last = Timestamp(microseconds: range.to.microseconds - 1)
        for field in groupBy {
            let buckets: Int64
            switch field {
            case .hour: buckets = last.hour - first.hour + 1
            case .day: buckets = last.day - first.day + 1
            case .month: buckets = last.monthIndex - first.monthIndex + 1
            default: continue
            }
            guard buckets <= Int64(limit) else {
                throw UsageBoxError.invalidArgument(
                    "grouping by \(field.name) over this range gives \(buckets) buckets; an answer holds at most \(limit): narrow from/to",
                    field: "group_by")
            }
        }
    }

    /// Every dimension the query names (grouping or filtering).
    public var dimensionsNamed: [String] {
        (groupBy + filters.map(\.field)).compactMap { if case let .dimension(d) = $0 { return d } else { return nil } }
    }
}

/// The aggregate of one group.
public struct UsageAggregate: Sendable, Hashable {
    public var sum: Int64 = 0
    public var count: Int64 = 0
    public var min: Int64 = .max
    public var max: Int64 = .min

    public init() {}
    public init(sum: Int64, count: Int64, min: Int64, max: Int64) {
        self.sum = sum
        self.count = count
        self.min = min
        self.max = max
    }

    /// Adds another aggregate; sums that overflow 64 bits are an error, never a wrap.
    public mutating func add(_ o: UsageAggregate) throws {
        let (s, overflow) = sum.addingReportingOverflow(o.sum)
        guard !overflow else { throw UsageBoxError.sumOverflow }
        sum = s
        count += o.count
        min = Swift.min(min, o.min)
        max = Swift.max(max, o.max)
    }
}

public struct UsageGroup: Sendable, Hashable {
    /// One value per `groupBy` field, in order; nil when the events lack it.
    public var keys: [String?]
    public var aggregate: UsageAggregate
    public init(keys: [String?], aggregate: UsageAggregate) {
        self.keys = keys
        self.aggregate = aggregate
    }
}

public struct UsageResult: Sendable, Hashable {
    /// `rollup` or `raw`: what was actually read.
    public var source: String
    public var groupBy: [UsageField]
    public var metrics: [UsageMetric]
    public var groups: [UsageGroup]

    public init(source: String, groupBy: [UsageField], metrics: [UsageMetric], groups: [UsageGroup]) {
        self.source = source
        self.groupBy = groupBy
        self.metrics = metrics
        self.groups = groups
    }

    /// Sorts groups by their key values ascending in byte order, null first (docs/api.md).
    public static func sortGroups(_ groups: inout [UsageGroup]) {
        groups.sort { a, b in
            for (x, y) in zip(a.keys, b.keys) where x != y {
                guard let x else { return true }
                guard let y else { return false }
                return x.utf8.lexicographicallyPrecedes(y.utf8)
            }
            return false
        }
    }

    /// sum / count with six decimals, computed exactly in integers (half away from zero), for any
    /// sum and count (a 10^13 average overflowed sum × 10^6 and took the server down).
    public static func average(_ a: UsageAggregate) -> String {
        guard a.count > 0 else { return "0" }
        let count = a.count.magnitude
        var whole = a.sum.magnitude / count
        let rest = a.sum.magnitude % count
        // rest < count, so rest × 10^6 fits unless count is past 1.8 × 10^13 events: then halve both.
        var (num, den) = (rest, count)
        while num.multipliedReportingOverflow(by: 1_000_000).overflow { (num, den) = (num / 2, den / 2) }
        var micro = num * 1_000_000 / den
        if (num * 1_000_000 % den) * 2 >= den { micro += 1 }
        if micro == 1_000_000 { (whole, micro) = (whole + 1, 0) }
        var frac = String(micro)
        frac = String(repeating: "0", count: 6 - frac.count) + frac
        while frac.hasSuffix("0") { frac.removeLast() }
        let sign = a.sum < 0 && (whole > 0 || micro > 0) ? "-" : ""
        return sign + String(whole) + (frac.isEmpty ? "" : "." + frac)
    }
}
