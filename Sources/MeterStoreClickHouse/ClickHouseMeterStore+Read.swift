import ExactJSON
public import Metering

extension ClickHouseMeterStore {
    /// The kept dimensions of each meter that has a setting (nil: every dimension).
    func meterConfigs() async throws -> [String: (unit: String?, keeps: Set<String>?)] {
        var out: [String: (unit: String?, keeps: Set<String>?)] = [:]
        // ClickHouse's aggregates skip NULL, which is what is wanted here: ingest records a new
        // meter's unit in a row whose rollup_dimensions is NULL, and that must not undo a setting.
        // "Every dimension", once set, is stored as `*` (a NULL was read past, to the older list).
        for r in try await rows(
            "SELECT meter_id, argMax(unit, version), argMax(rollup_dimensions, version) FROM \(t("meters")) GROUP BY meter_id",
            shardsRead: false)
        {
            guard let id = r[0].chString else { continue }
            out[id] = (r[1].chString, r[2].chString.flatMap { $0 == KeptDimensionsChange.every ? nil : Set(Self.decodeNameList($0)) })
        }
        for (id, unit) in try await unitsOfClashedMeters() { out[id]?.unit = unit }
        return out
    }

    static func decodeNameList(_ text: String) -> [String] {
        ((try? JSONParser.parse(text))?.arrayValue ?? []).compactMap(\.stringValue)
    }

    public func usage(_ q: UsageQuery) async throws -> UsageResult {
        for f in q.filters where f.field.isTimeBucket {
            throw UsageBoxError.invalidArgument("'\(f.field.name)' cannot be a filter; narrow 'from' and 'to' instead", field: f.field.name)
        }
        let scope = Self.accountClause(q.scope)
        let named = q.dimensionsNamed
        // Rollups that may lack the events of a failed insert until it is settled (a second or
        // so after ClickHouse is back) are not read: raw events answer meanwhile.
        let unsettled = await writer.hasUnsettled(in: q.scope, owns: owns)
        if !named.isEmpty {
            let seen = Set(
                try await rows("SELECT DISTINCT arrayJoin(dim_keys) FROM \(t(unsettled ? "events" : ClickHouseSchema.everyKey.table)) WHERE \(scope)")
                    .compactMap {
                        $0[0].chString
                    })
            for field in q.groupBy + q.filters.map(\.field) {
                if case let .dimension(d) = field, !seen.contains(d) { throw UsageField.unknownDimension(field, in: q) }
            }
        }
        // Rollups keep every dimension here; a meter told to keep fewer is still read from raw
        // events for the others, as on every backend.
        var blocking: (String, String)?
        if !named.isEmpty {
            let configs = try await meterConfigs()
            let used = try await rows("SELECT DISTINCT meter_id FROM \(t(ClickHouseSchema.everyKey.table)) WHERE \(scope)").compactMap { $0[0].chString }
            for meter in used.sorted() where q.admits(meterID: meter) {
                if let keeps = configs[meter]?.keeps, let d = named.first(where: { !keeps.contains($0) }) {
                    blocking = (meter, d)
                    break
                }
            }
        }
        let useRaw: Bool
        switch q.source {
        case .raw: useRaw = true
        case .auto: useRaw = blocking != nil || unsettled
        case .rollup:
            if let (meter, dim) = blocking {
                throw UsageBoxError.invalidArgument(
                    "the rollups of meter \(meter) do not keep dimension '\(dim)'; ask for source=raw or source=auto", field: "source")
            }
            if unsettled {
                throw UsageBoxError.unavailable(
                    "the rollups of these accounts may lack the events of a failed insert until it is settled (about a second "
                        + "once ClickHouse answers): retry, or ask for source=auto or source=raw")
            }
            useRaw = false
        }
        var acc = UsageAccumulator(q)
        let byHour = q.groupBy.contains(where: \.isTimeBucket)
        // Rows per rollup key only when a dimension is grouped or filtered on: ClickHouse folds
        // the keys otherwise (an account of 16,000 keys of long dimensions sent every key's row to
        // a read grouped by model; eight such reads held 1.3 GB). Per key, the answer is bounded.
        let keyed = !named.isEmpty
        let dims = keyed ? "any(dim_keys), any(dim_values)" : "emptyArrayString(), emptyArrayString()"
        let byKey = keyed ? ", dimensions" : ""
        for span in UsagePlan.spans(q.range, raw: useRaw, needsHourly: q.groupBy.contains(.hour)) {
            let sql: String
            let pushdown = Self.pushdown(q.filters)
            let rollup = span.level == .raw ? nil : ClickHouseSchema.Rollup.of(span.level)
            switch span.level {
            case .hourRollup, .dayRollup:
                let (table, bucket) = (rollup!.table, rollup!.bucket)
                sql = """
                    SELECT account_id, meter_id, model_id, kind, unit, \(dims), \(byHour ? bucket : "0"),
                           sumMerge(sum_hi), sumMerge(sum_lo), countMerge(count), minMerge(min), maxMerge(max)
                    FROM \(t(table)) WHERE \(scope) AND \(bucket) >= \(span.from) AND \(bucket) < \(span.to)\(pushdown.rollup)
                    GROUP BY account_id, meter_id, model_id, kind, unit\(byKey)\(byHour ? ", \(bucket)" : "")
                    """
            case .raw:
                let hour = "intDiv(ts, 3600000000)"
                sql = """
                    SELECT account_id, meter_id, ifNull(model_id, ''), kind, ifNull(unit, ''), \(dims), \(byHour ? hour : "0"),
                           sum(intDiv(quantity, \(ClickHouseSchema.half))), sum(quantity % \(ClickHouseSchema.half)), count(), min(quantity), max(quantity)
                    FROM \(t("events")) WHERE \(scope) AND ts >= \(span.from) AND ts < \(span.to)\(pushdown.raw)
                    GROUP BY account_id, meter_id, model_id, kind, unit\(byKey)\(byHour ? ", \(hour)" : "")
                    """
            }
            let answer: [[JSONValue]]
            do {
                answer = try await rows(sql, limit: Self.usageAnswerBytes)
            } catch let e as UsageBoxError where e.code == .invalidArgument && e.field == nil && e.message.hasPrefix(ClickHouseClient.answerLimitPrefix) {
                // The read's own bound, as the accumulator says it: a reconcile then reads in sets of accounts.
                throw UsageAccumulator.answerLimit("be larger than \(Self.usageAnswerBytes >> 20) MiB of ClickHouse rows")
            }
            for r in answer {
                let model = r[2].chString ?? "", unit = r[4].chString ?? ""
                var dims: [String: String] = [:]
                for (k, v) in zip(r[5].arrayValue ?? [], r[6].arrayValue ?? []) { if let k = k.chString, let v = v.chString { dims[k] = v } }
                var bucket: Int64? = byHour ? r[7].chInt : nil
                if let rollup { bucket = bucket.map { $0 * rollup.hours } }
                // As the SQLite store says it, with how to find the events that carry it.
                guard let sum = try? Self.combine(hi: r[8].chInt ?? 0, lo: r[9].chInt ?? 0, "the sum") else { throw UsageBoxError.sumOverflow }
                try acc.add(
                    UsageRow(
                        account: r[0].chString ?? "", meter: r[1].chString ?? "", model: model.isEmpty ? nil : model,
                        kind: r[3].chString ?? "", unit: unit.isEmpty ? nil : unit, dimensions: dims, hour: bucket,
                        aggregate: UsageAggregate(sum: sum, count: r[10].chInt ?? 0, min: r[11].chInt ?? 0, max: r[12].chInt ?? 0)))
            }
        }
        return try acc.result(source: useRaw ? "raw" : "rollup")
    }

    /// The most one span of a grouped read may bring back from ClickHouse (its rows per rollup key).
    static let usageAnswerBytes = 32 << 20

    /// Simple field filters pushed into the query (the accumulator checks every filter anyway).
    static func pushdown(_ filters: [UsageFilter]) -> (rollup: String, raw: String) {
        var rollup = "", raw = ""
        for f in filters where (f.op == .eq || f.op == .in) && !f.values.isEmpty {
            let values = ClickHouseClient.list(f.values)
            switch f.field {
            case .modelID:
                rollup += " AND model_id IN (\(values))"
                raw += " AND model_id IN (\(values))"
            case .meterID:
                rollup += " AND meter_id IN (\(values))"
                raw += " AND meter_id IN (\(values))"
            case .kind:
                rollup += " AND kind IN (\(values))"
                raw += " AND kind IN (\(values))"
            case .accountID:
                rollup += " AND account_id IN (\(values))"
                raw += " AND account_id IN (\(values))"
            default: break
            }
        }
        return (rollup, raw)
    }

    public func storedEvents(account: String, ids: [String]) async throws -> [UsageEvent] {
        try StoredEventLookup.check(account: account, ids: ids)
        guard !ids.isEmpty else { return [] }
        let found = try await rows(
            """
            SELECT \(Self.eventColumns) FROM \(t("events"))
            WHERE account_id = \(ClickHouseClient.quote(account)) AND event_id IN (\(ClickHouseClient.list(Array(Set(ids)))))
            """
        ).compactMap { Self.event($0, account: account) }
        // A row stored twice (the events table is a plain MergeTree; verify counts such rows) is one event here.
        var seen = Set<String>()
        return found.filter { seen.insert($0.eventID).inserted }
    }

    public func explain(account: String, range: TimeRange) async throws -> ExplainReport {
        let byModel = try await usage(UsageQuery(scope: .accounts([account]), range: range, groupBy: [.modelID, .kind, .unit]))
        let (totals, breakdown) = try ExplainReport.breakdown(byModel)
        let a = ClickHouseClient.quote(account)
        let segs = try await rows(
            """
            SELECT segment_id, first, last, events, total, sha, sealed FROM (
                SELECT segment_id, argMax(first_ts, version) AS first, argMax(last_ts, version) AS last, argMax(event_count, version) AS events,
                       argMax(sum, version) AS total, argMax(sha256, version) AS sha, argMax(sealed_at, version) AS sealed
                FROM \(t("segments")) WHERE account_id = \(a) GROUP BY segment_id)
            WHERE first < \(range.to.microseconds) AND last >= \(range.from.microseconds) ORDER BY segment_id
            """)
        let segments = segs.map { r in
            ExplainReport.SegmentInfo(
                segmentID: ExplainReport.SegmentInfo.name(r[0].chInt ?? 0), firstTimestamp: r[1].chInt.map(Timestamp.init(microseconds:)),
                lastTimestamp: r[2].chInt.map(Timestamp.init(microseconds:)), events: r[3].chInt ?? 0, sum: r[4].chInt ?? 0,
                sha256: r[5].chString, sealedAt: r[6].chInt.map(Timestamp.init(microseconds:)))
        }
        let head = try await rows(
            """
            SELECT argMax(sha, segment_id) FROM (SELECT segment_id, argMax(sha256, version) AS sha, argMax(sealed_at, version) AS sealed
                FROM \(t("segments")) WHERE account_id = \(a) GROUP BY segment_id) WHERE isNotNull(sealed)
            """)
        // The latest `listLimit` only, counted apart: the list is bounded in the read, not after it.
        let correctionsWhere =
            "account_id = \(a) AND kind = 'Correction' AND ts >= \(range.from.microseconds) AND ts < \(range.to.microseconds)"
        let corrections = try await rows(
            """
            SELECT \(Self.eventColumns), post_close FROM \(t("events"))
            WHERE \(correctionsWhere) ORDER BY ts DESC, event_id DESC LIMIT \(ExplainReport.listLimit)
            """
        ).reversed()
        let correctionCount = try await rows("SELECT count() FROM \(t("events")) WHERE \(correctionsWhere)").first?[0].chInt ?? 0
        var report = ExplainReport(
            accountID: account, range: range, totals: totals, breakdown: breakdown, segments: segments,
            chainHead: head.first?[0].chString.flatMap { $0.isEmpty ? nil : $0 },
            corrections: corrections.compactMap { r in Self.event(r, account: account).map { .init(event: $0, postClose: r[9].chInt == 1) } })
        report.correctionsOmitted = max(0, Int(correctionCount) - report.corrections.count)
        // A row stored twice is one event (as `storedEvents` reads them).
        let postClose = try await rows(
            """
            SELECT count(), sum(q) FROM (SELECT event_id, any(quantity) AS q FROM \(t("events"))
                WHERE account_id = \(a) AND post_close = 1 AND ts >= \(range.from.microseconds) AND ts < \(range.to.microseconds) GROUP BY event_id)
            """)
        report.postClose = .init(events: postClose.first?[0].chInt ?? 0, sum: postClose.first?[1].chInt ?? 0)
        report.integrity = try await integrity(account: account)
        return report.capped()
    }

    public func closePeriod(account: String, period: String) async throws -> PeriodRecord {
        try PeriodRecord.validateClosable(period, now: clock())
        guard EventDecoder.isValidIdentifier(account) else {
            throw UsageBoxError.invalidArgument("account must be \(EventDecoder.identifierRule)", field: "account_id")
        }
        // Through the account's writer, so no batch of it is half-decided when the month closes.
        return try await writer.exclusive {
            do {
                try await self.insert(
                    "periods",
                    [
                        .object([
                            ("account_id", .string(account)), ("period", .string(period)),
                            ("closed_at", .int(self.clock().microseconds)),
                        ])
                    ])
            } catch {
                await self.writer.set(account, nil)  // stored or not, ingest rereads the account's periods
                throw error
            }
            // Ingest of this account sees the close from its next batch on.
            if var state = await self.writer.state(account) {
                state.closed.insert(period)
                await self.writer.set(account, state)
            }
            let r = try await self.rows(
                "SELECT min(closed_at) FROM \(self.t("periods")) WHERE account_id = \(ClickHouseClient.quote(account)) AND period = \(ClickHouseClient.quote(period))"
            )
            return PeriodRecord(accountID: account, period: period, closedAt: Timestamp(microseconds: r.first?[0].chInt ?? 0))
        }
    }

    public func periods(account: String) async throws -> [PeriodRecord] {
        try await rows(
            "SELECT period, min(closed_at) FROM \(t("periods")) WHERE account_id = \(ClickHouseClient.quote(account)) GROUP BY period ORDER BY period",
            shardsRead: false
        ).map { PeriodRecord(accountID: account, period: $0[0].chString ?? "", closedAt: Timestamp(microseconds: $0[1].chInt ?? 0)) }
    }

    public func meters(scope: AccountScope) async throws -> [MeterInfo] {
        let configs = try await meterConfigs()
        var ids = Set(
            try await rows("SELECT DISTINCT meter_id FROM \(t(ClickHouseSchema.everyKey.table)) WHERE \(Self.accountClause(scope))").compactMap {
                $0[0].chString
            })
        if case .all = scope { ids.formUnion(configs.keys) }
        return ids.sorted().map { id in
            MeterInfo(meterID: id, unit: configs[id]?.unit ?? nil, rollupDimensions: configs[id]?.keeps.map { $0.sorted() })
        }
    }

    public func setMeter(_ meterID: String, unit: String?, rollupDimensions: [String]?) async throws -> MeterInfo {
        guard EventDecoder.isValidIdentifier(meterID) else {
            throw UsageBoxError.invalidArgument("meter_id must be \(EventDecoder.identifierRule)", field: "meter_id")
        }
        let unit = unit.map(EventDecoder.nfc), change = try KeptDimensionsChange(rollupDimensions)
        if let problem = unit.flatMap(EventDecoder.unitProblem) { throw UsageBoxError.invalidArgument(problem, field: "unit") }
        return try await writer.exclusive {
            // What the change leaves out is kept from the stored meter: not read from a first host
            // lacking a part of `meters` (a unit set elsewhere would be written back as none).
            try await self.checkFirstHostWhole()
            let current = try await self.meterConfigs()[meterID]
            if let old = current?.unit, let unit, old != unit,
                try await !self.rows(
                    "SELECT 1 FROM \(self.t("events")) WHERE meter_id = \(ClickHouseClient.quote(meterID)) AND isNotNull(unit) LIMIT 1"
                ).isEmpty
            {
                throw UsageBoxError(.conflict, "meter \(meterID) already counts '\(old)' in stored events; its unit cannot change", field: "unit")
            }
            let newUnit = unit ?? current?.unit
            let stored = try await self.rows(
                "SELECT max(version) FROM \(self.t("meters")) WHERE meter_id = \(ClickHouseClient.quote(meterID))", shardsRead: false)
            let keeps = change.applied(to: current?.keeps).map { $0.sorted() }
            try await self.insert(
                "meters",
                [
                    .object([
                        ("meter_id", .string(meterID)), ("unit", newUnit.map(JSONValue.string) ?? .null),
                        (
                            "rollup_dimensions",
                            .string(keeps.map { JSONWriter.write(.array($0.map(JSONValue.string))) } ?? KeptDimensionsChange.every)
                        ),
                        ("version", .number(String(await self.nextVersion(above: stored.first?.first)))),
                    ])
                ])
            await self.writer.setMeterUnits(nil)  // ingest rereads units from its next batch on
            return MeterInfo(meterID: meterID, unit: newUnit, rollupDimensions: keeps)
        }
    }
}
