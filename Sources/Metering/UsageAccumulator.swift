import ExactJSON

/// One row a backend reads for a grouped usage query: an aggregate of the events of one rollup
/// key (account, meter, model, kind, unit, dimensions), in one hour when the query groups by time.
public struct UsageRow: Sendable {
    public var account: String
    public var meter: String
    public var model: String?
    public var kind: String
    public var unit: String?
    public var dimensions: [String: String]
    /// The hour (since the epoch) the row counts, when the query groups by a time bucket.
    public var hour: Int64?
    public var aggregate: UsageAggregate

    public init(
        account: String, meter: String, model: String?, kind: String, unit: String?, dimensions: [String: String], hour: Int64?,
        aggregate: UsageAggregate
    ) {
        self.account = account
        self.meter = meter
        self.model = model
        self.kind = kind
        self.unit = unit
        self.dimensions = dimensions
        self.hour = hour
        self.aggregate = aggregate
    }
}

/// Folds backend rows into the groups a `UsageQuery` asks for: filters, group keys, checked sums,
/// the group limit and the ordering every backend answers with. Backends read rows; this decides.
public struct UsageAccumulator: Sendable {
    public let query: UsageQuery
    private var groups: [[String?]: UsageAggregate] = [:]
    /// Each group's sum so far, wide: rows come per kind (a Usage row, then its Corrections), so
    /// a sum that nets to 64 bits may pass beyond them on the way. Checked when the answer is made.
    private var sums: [[String?]: Int128] = [:]

    /// The most groups one answer may hold: a group_by on a dimension with a value per event would
    /// otherwise build an answer as large as the store.
    public static let maxGroups = 100_000

    /// The refusal of an answer past the bounds above (or a store's own, ClickHouse's rows);
    /// `isAnswerLimit` knows it again. Not over HTTP: the client prefixes the server's message,
    /// and a remote read names one account or all, so sets of accounts are the store's to read.
    public static func answerLimit(_ what: String) -> UsageBoxError {
        .invalidArgument("the answer would \(what); group by fewer fields or narrow from/to", field: "group_by")
    }
    public static func isAnswerLimit(_ error: any Error) -> Bool {
        guard let e = error as? UsageBoxError else { return false }
        // `contains`: the HTTP client's error says "server answered 400: the answer would …", and
        // an export through `--server` failed where the same export on a file was read in parts
        // (tester O2).
        return e.code == .invalidArgument && e.field == "group_by" && e.message.contains("the answer would ")
    }
    /// The most bytes the groups' JSON may take (estimated as they are added): 100,000 groups of
    /// long dimension values built a 96 MB answer, and a server holds a few times an answer's size
    /// while it writes it, for each read it runs at once.
    public static let maxAnswerBytes = 16 << 20
    private var answerBytes = 0
    /// What every group writes besides its values: the field names, quotes and figures.
    private let groupOverhead: Int
    /// Rows added, filtered or not: the request's deadline is checked every so many.
    private var rowsSeen = 0

    public init(_ query: UsageQuery) {
        self.query = query
        // Braces and a comma, then each metric's name and figure at its widest (a 64-bit integer
        // has 20 characters; an average is given 40), each name's quotes, colon and comma. A flat
        // 120 overcounted a sum-and-count answer by 40 % and refused 12 MB as "larger than 16 MiB".
        let figures = query.metrics.reduce(3) { $0 + $1.rawValue.utf8.count + 4 + ($1 == .avg ? 40 : 20) }
        groupOverhead = query.groupBy.reduce(figures) { $0 + JSONWriter.encodedLength($1.name) + 2 }
    }

    /// Whether a row with these fields passes the query's filters (time buckets are not filters).
    public func passes(account: String, meter: String, model: String?, kind: String, unit: String?, dimensions: [String: String]) -> Bool {
        query.filters.allSatisfy { f in
            switch f.field {
            case .accountID: return f.matches(account)
            case .meterID: return f.matches(meter)
            case .modelID: return f.matches(model)
            case .kind: return f.matches(kind)
            case .unit: return f.matches(unit)
            case let .dimension(d): return f.matches(dimensions[d])
            case .hour, .day, .month: return true
            }
        }
    }

    public mutating func add(_ row: UsageRow) throws {
        try WorkDeadline.poll(&rowsSeen)
        guard passes(account: row.account, meter: row.meter, model: row.model, kind: row.kind, unit: row.unit, dimensions: row.dimensions)
        else { return }
        let key: [String?] = query.groupBy.map { field in
            switch field {
            case .accountID: return row.account
            case .meterID: return row.meter
            case .modelID: return row.model
            case .kind: return row.kind
            case .unit: return row.unit
            case .hour: return row.hour.map { Timestamp.ofHour($0).rfc3339 }
            case .day: return row.hour.map { Timestamp.ofHour($0).dayString }
            case .month: return row.hour.map { Timestamp.ofHour($0).monthString }
            case let .dimension(d): return row.dimensions[d]
            }
        }
        var aggregate: UsageAggregate
        if let known = groups[key] {
            aggregate = known
        } else {
            aggregate = UsageAggregate()
            // A group's keys as the answer writes them (name, escaped value), and its figures.
            answerBytes += key.reduce(groupOverhead) { $0 + ($1.map(JSONWriter.encodedLength) ?? 4) }
            guard answerBytes <= Self.maxAnswerBytes else {
                throw Self.answerLimit("be larger than \(Self.maxAnswerBytes >> 20) MiB")
            }
        }
        var partial = row.aggregate
        partial.sum = 0
        try aggregate.add(partial)
        sums[key, default: 0] += Int128(row.aggregate.sum)
        groups[key] = aggregate
        guard groups.count <= Self.maxGroups else {
            throw Self.answerLimit("hold more than \(Self.maxGroups) groups")
        }
    }

    /// The answer, groups sorted by their keys (byte order, null first); one empty group when the
    /// query groups by nothing and nothing matched. A group's net sum beyond 64 bits is an error.
    public func result(source: String) throws -> UsageResult {
        try WorkDeadline.current?.check()
        var list = try groups.map { key, aggregate in
            var aggregate = aggregate
            guard let sum = Int64(exactly: sums[key] ?? 0) else { throw UsageBoxError.sumOverflow }
            aggregate.sum = sum
            return UsageGroup(keys: key, aggregate: aggregate)
        }
        if query.groupBy.isEmpty && list.isEmpty { list = [UsageGroup(keys: [], aggregate: UsageAggregate())] }
        UsageResult.sortGroups(&list)
        return UsageResult(source: source, groupBy: query.groupBy, metrics: query.metrics, groups: list)
    }
}

/// Which store level answers each part of a query's range: whole days from daily rollups, whole
/// hours from hourly rollups, and the partial hours at either edge from raw events — or all of it
/// from raw events. Every backend reads the same plan, so rollup and raw answers agree.
public enum UsagePlan {
    public enum Level: Sendable, Equatable { case hourRollup, dayRollup, raw }

    /// A part of the range: `from`/`to` are hours for `hourRollup`, days for `dayRollup`, and
    /// microseconds for `raw`.
    public struct Span: Sendable, Equatable {
        public var level: Level
        public var from: Int64
        public var to: Int64
    }

    public static func spans(_ range: TimeRange, raw: Bool, needsHourly: Bool) -> [Span] {
        let from = range.from.microseconds, to = range.to.microseconds
        guard !raw else { return [Span(level: .raw, from: from, to: to)] }
        let h = Timestamp.microsPerHour
        let innerFrom = (from + h - 1) / h, innerTo = to / h
        guard innerFrom < innerTo else { return [Span(level: .raw, from: from, to: to)] }
        var spans: [Span] = []
        if from < innerFrom * h { spans.append(Span(level: .raw, from: from, to: innerFrom * h)) }
        let dayFrom = (innerFrom + 23) / 24, dayTo = innerTo / 24
        if !needsHourly, dayFrom < dayTo {
            if innerFrom < dayFrom * 24 { spans.append(Span(level: .hourRollup, from: innerFrom, to: dayFrom * 24)) }
            spans.append(Span(level: .dayRollup, from: dayFrom, to: dayTo))
            if dayTo * 24 < innerTo { spans.append(Span(level: .hourRollup, from: dayTo * 24, to: innerTo)) }
        } else {
            spans.append(Span(level: .hourRollup, from: innerFrom, to: innerTo))
        }
        if innerTo * h < to { spans.append(Span(level: .raw, from: innerTo * h, to: to)) }
        return spans
    }
}
