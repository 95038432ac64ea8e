import ExactJSON
import GRDB
import Metering

extension SQLiteMeterStore {
    public func usage(_ query: UsageQuery) async throws -> UsageResult {
        try await wrap { try await boundedRead { db in try self.usage(db, query) } }
    }

    func usage(_ db: Database, _ q: UsageQuery) throws -> UsageResult {
        try validateNames(db, q)
        for f in q.filters where f.field.isTimeBucket {
            throw UsageBoxError.invalidArgument("'\(f.field.name)' cannot be a filter; narrow 'from' and 'to' instead", field: f.field.name)
        }
        let named = q.dimensionsNamed
        var blocking: (String, String)?
        if !named.isEmpty {
            let meters = try KeyDirectory.meters(db)
            let (clause, args) = Self.accountClause(q.scope, column: "account_id")
            for meter in try String.fetchAll(db, sql: "SELECT DISTINCT meter_id FROM rollup_key WHERE \(clause) ORDER BY meter_id", arguments: args)
            where q.admits(meterID: meter) {
                guard let m = meters[meter], let d = named.first(where: { !m.keeps($0) }) else { continue }
                blocking = (meter, d)
                break
            }
        }
        var keys = RollupKeyReader()
        let useRaw: Bool
        switch q.source {
        case .raw: useRaw = true
        case .auto: useRaw = blocking != nil
        case .rollup:
            if let (meter, dim) = blocking {
                throw UsageBoxError.invalidArgument(
                    "the rollups of meter \(meter) do not keep dimension '\(dim)'; ask for source=raw or source=auto", field: "source")
            }
            useRaw = false
        }
        var acc = UsageAccumulator(q)
        let byHour = q.groupBy.contains(where: \.isTimeBucket)
        for span in UsagePlan.spans(q.range, raw: useRaw, needsHourly: q.groupBy.contains(.hour)) {
            switch span.level {
            case .raw: try readRaw(db, q, from: span.from, to: span.to, hour: byHour, into: &acc)
            case .hourRollup: try readRollups(db, q, from: span.from, to: span.to, into: &acc, keys: &keys, table: "rollup_hour")
            case .dayRollup: try readRollups(db, q, from: span.from, to: span.to, into: &acc, keys: &keys, table: "rollup_day")
            }
        }
        return try acc.result(source: useRaw ? "raw" : "rollup")
    }

    /// A group_by or filter naming a dimension never seen on the scope's events is an error, not a zero.
    func validateNames(_ db: Database, _ q: UsageQuery) throws {
        let named = q.dimensionsNamed
        guard !named.isEmpty else { return }
        let (clause, args) = Self.accountClause(q.scope, column: "account_id")
        let seen = Set(try String.fetchAll(db, sql: "SELECT DISTINCT name FROM account_dimension WHERE \(clause)", arguments: args))
        for field in q.groupBy + q.filters.map(\.field) {
            if case let .dimension(d) = field, !seen.contains(d) { throw UsageField.unknownDimension(field, in: q) }
        }
    }

    /// Reads one rollup level; with `rollup_day`, `from`/`to` are days. Only the keys with rows
    /// in the range are fetched, as the rows name them.
    private func readRollups(
        _ db: Database, _ q: UsageQuery, from: Int64, to: Int64, into acc: inout UsageAccumulator, keys: inout RollupKeyReader, table: String
    ) throws {
        guard from < to else { return }
        let column = table == "rollup_day" ? "day" : "hour"
        let (clause, scopeArgs) = Self.accountClause(q.scope, column: "account_id")
        let (pushed, pushedArgs) = Self.pushedFilters(q)
        let byHour = q.groupBy.contains(where: \.isTimeBucket)
        let sql = """
            SELECT key_id, \(byHour ? column : "NULL"), SUM(sum), SUM(count), MIN(min), MAX(max) FROM \(table)
            WHERE key_id IN (SELECT id FROM rollup_key WHERE \(clause)\(pushed)) AND \(column) >= ? AND \(column) < ?
            GROUP BY key_id\(byHour ? ", \(column)" : "")
            """
        let rows = try Row.fetchCursor(db, sql: sql, arguments: scopeArgs + pushedArgs + [from, to])
        while let r = try rows.next() {
            let key = try keys.key(r[0], db)
            let bucket: Int64? = r[1]
            try acc.add(
                UsageRow(
                    account: key.account, meter: key.meter, model: key.model, kind: key.kind, unit: key.unit,
                    dimensions: key.dimensions, hour: table == "rollup_day" ? bucket.map { $0 * 24 } : bucket,
                    aggregate: UsageAggregate(sum: r[2], count: r[3], min: r[4], max: r[5])))
        }
    }

    /// Simple field filters as SQL conditions on columns events and rollup keys share, with their
    /// arguments; the accumulator checks every filter anyway.
    static func pushedFilters(_ q: UsageQuery) -> (String, StatementArguments) {
        var sql = ""
        var args = StatementArguments()
        for f in q.filters where f.op == .eq || f.op == .in {
            let column: String?
            switch f.field {
            case .modelID: column = "model_id"
            case .meterID: column = "meter_id"
            case .kind: column = "kind"
            case .accountID: column = "account_id"
            default: column = nil
            }
            guard let column, !f.values.isEmpty else { continue }
            sql += " AND \(column) IN (\(Array(repeating: "?", count: f.values.count).joined(separator: ",")))"
            args += StatementArguments(f.values)
        }
        return (sql, args)
    }

    private func readRaw(_ db: Database, _ q: UsageQuery, from: Int64, to: Int64, hour: Bool, into acc: inout UsageAccumulator) throws {
        let (events, segmentArgs) = Self.eventsBySegment(
            "e.account_id, e.meter_id, e.model_id, e.kind, e.unit, e.dimensions, e.quantity, e.ts", scope: q.scope, from: from, to: to)
        var args = segmentArgs
        args += [from, to]
        let (extra, pushedArgs) = Self.pushedFilters(q)
        args += pushedArgs
        let sql = """
            SELECT account_id, meter_id, model_id, kind, unit, dimensions, \(hour ? "ts / 3600000000" : "NULL"),
                   SUM(quantity), COUNT(*), MIN(quantity), MAX(quantity)
            FROM (\(events)) WHERE ts >= ? AND ts < ?\(extra)
            GROUP BY account_id, meter_id, model_id, kind, unit, dimensions\(hour ? ", ts / 3600000000" : "")
            """
        let rows = try Row.fetchCursor(db, sql: sql, arguments: args)
        var dimCache: [String: [String: String]] = [:]
        while let r = try rows.next() {
            let dimText: String = r[5]
            let dims: [String: String]
            if let d = dimCache[dimText] {
                dims = d
            } else {
                var d: [String: String] = [:]
                for x in UsageEvent.decodeDimensions(dimText) { d[x.key] = x.value }
                dimCache[dimText] = d
                dims = d
            }
            try acc.add(
                UsageRow(
                    account: r[0], meter: r[1], model: r[2], kind: r[3], unit: r[4], dimensions: dims, hour: r[6],
                    aggregate: UsageAggregate(sum: r[7], count: r[8], min: r[9], max: r[10])))
        }
    }

    public func explain(account: String, range: TimeRange) async throws -> ExplainReport {
        try await wrap {
            try await boundedRead { db in
                let byModel = try self.usage(db, UsageQuery(scope: .accounts([account]), range: range, groupBy: [.modelID, .kind, .unit]))
                let (totals, breakdown) = try ExplainReport.breakdown(byModel)
                let segments = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, first_ts, last_ts, event_count, sum, sha256, sealed_at FROM segment
                        WHERE account_id = ? AND first_ts < ? AND last_ts >= ? ORDER BY id
                        """, arguments: [account, range.to.microseconds, range.from.microseconds]
                ).map { r in
                    ExplainReport.SegmentInfo(
                        segmentID: Self.segmentName(r["id"]), firstTimestamp: (r["first_ts"] as Int64?).map(Timestamp.init(microseconds:)),
                        lastTimestamp: (r["last_ts"] as Int64?).map(Timestamp.init(microseconds:)), events: r["event_count"], sum: r["sum"],
                        sha256: r["sha256"], sealedAt: (r["sealed_at"] as Int64?).map(Timestamp.init(microseconds:)))
                }
                let head = try String.fetchOne(
                    db,
                    sql: """
                        SELECT sha256 FROM segment WHERE account_id = ? AND sealed_at IS NOT NULL ORDER BY id DESC LIMIT 1
                        """, arguments: [account])
                let (from, to) = (range.from.microseconds, range.to.microseconds)
                let (events, segmentArgs) = Self.eventsBySegment(
                    Self.segmentEventColumns + ", e.post_close, e.seq",
                    scope: .accounts([account]), from: from, to: to)
                // The latest `listLimit` only, counted apart: the list is bounded in the read, not after it.
                let corrections = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.eventColumns), post_close FROM (\(events))
                        WHERE ts >= ? AND ts < ? AND kind = 'Correction' ORDER BY ts DESC, seq DESC LIMIT ?
                        """, arguments: segmentArgs + [from, to, ExplainReport.listLimit]
                ).reversed().map { r in
                    ExplainReport.CorrectionInfo(event: Self.event(from: r), postClose: r[10])
                }
                let correctionCount =
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM (\(events)) WHERE ts >= ? AND ts < ? AND kind = 'Correction'",
                        arguments: segmentArgs + [from, to]) ?? 0
                var report = ExplainReport(
                    accountID: account, range: range, totals: totals, breakdown: breakdown, segments: segments,
                    chainHead: head, corrections: corrections)
                report.correctionsOmitted = max(0, correctionCount - corrections.count)
                if let row = try Row.fetchOne(
                    db, sql: "SELECT count(*), SUM(quantity) FROM (\(events)) WHERE ts >= ? AND ts < ? AND post_close = 1",
                    arguments: segmentArgs + [from, to])
                {
                    report.postClose = .init(events: row[0], sum: row[1] ?? 0)
                }
                report.integrity = try Self.scrubProgress(db, account: account)
                return report.capped()
            }
        }
    }

    public func storedEvents(account: String, ids: [String]) async throws -> [UsageEvent] {
        try StoredEventLookup.check(account: account, ids: ids)
        let unique = Array(Set(ids))
        guard !unique.isEmpty else { return [] }
        return try await wrap {
            try await boundedRead { db in
                // The unique key (account_id, event_id) answers each id.
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.eventColumns) FROM event
                        WHERE account_id = ? AND event_id IN (\(databaseQuestionMarks(count: unique.count)))
                        """, arguments: StatementArguments([account] + unique)
                ).map(Self.event(from:))
            }
        }
    }

    static func segmentName(_ id: Int64) -> String { ExplainReport.SegmentInfo.name(id) }

    public func closePeriod(account: String, period: String) async throws -> PeriodRecord {
        try PeriodRecord.validateClosable(period, now: clock())
        guard EventDecoder.isValidIdentifier(account) else {
            throw UsageBoxError.invalidArgument("account must be \(EventDecoder.identifierRule)", field: "account_id")
        }
        return try await wrap {
            try await writer.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO period (account_id, period, closed_at) VALUES (?, ?, ?)",
                    arguments: [account, period, self.clock().microseconds])
                guard
                    let closedAt = try Int64.fetchOne(
                        db, sql: "SELECT closed_at FROM period WHERE account_id = ? AND period = ?",
                        arguments: [account, period])
                else {
                    throw UsageBoxError(.internal, "period \(period) of \(account) was neither closed nor found")
                }
                return PeriodRecord(accountID: account, period: period, closedAt: Timestamp(microseconds: closedAt))
            }
        }
    }

    public func periods(account: String) async throws -> [PeriodRecord] {
        try await wrap {
            try await writer.read { db in
                try Row.fetchAll(db, sql: "SELECT period, closed_at FROM period WHERE account_id = ? ORDER BY period", arguments: [account])
                    .map { PeriodRecord(accountID: account, period: $0["period"], closedAt: Timestamp(microseconds: $0["closed_at"])) }
            }
        }
    }

    public func meters(scope: AccountScope) async throws -> [MeterInfo] {
        try await wrap {
            try await writer.read { db in
                let (clause, args) = Self.accountClause(scope, column: "k.account_id")
                let sql: String
                if case .all = scope {
                    sql = "SELECT meter_id, unit, rollup_dimensions FROM meter ORDER BY meter_id"
                } else {
                    sql = """
                        SELECT meter_id, unit, rollup_dimensions FROM meter
                        WHERE meter_id IN (SELECT k.meter_id FROM rollup_key k WHERE \(clause)) ORDER BY meter_id
                        """
                }
                return try Row.fetchAll(db, sql: sql, arguments: args).map {
                    MeterInfo(meterID: $0["meter_id"], unit: $0["unit"], rollupDimensions: Self.decodeNameList($0["rollup_dimensions"]).map { $0.sorted() })
                }
            }
        }
    }
}
