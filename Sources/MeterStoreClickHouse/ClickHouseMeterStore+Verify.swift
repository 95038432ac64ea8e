import ExactJSON
public import Metering
import SegmentChain

extension ClickHouseMeterStore {
    /// A segment as its latest row and its latest check describe it.
    struct SegmentRecord {
        var id: UInt64
        var sealedAt: Int64?
        var sha: String?
        var prev: String?
        var count: Int64
        var sum: Int64
        var firstTs: Int64?
        var lastTs: Int64?
        var running: String
        /// The rule it was sealed under (`SegmentHash.currentRule`, or 1 before post-close marks: a
        /// row from before migration 4 reads the column's default, one an older writer still
        /// running inserts reads 0 on 18.16, which fills omitted JSONEachRow fields with zeros).
        var rule: Int
        var checkedAt: Int64?
        var corruptReason: String?
    }

    /// Every account's segments, or those of `accounts`.
    func segmentRecords(_ accounts: [String]? = nil) async throws -> [String: [SegmentRecord]] {
        let filter = accounts.map { "WHERE account_id IN (\($0.map(ClickHouseClient.quote).joined(separator: ", ")))" } ?? ""
        let segs = try await rows(
            """
            SELECT account_id, segment_id, argMax(sealed_at, version), argMax(sha256, version), argMax(prev_sha256, version),
                   argMax(event_count, version), argMax(sum, version), argMax(first_ts, version), argMax(last_ts, version), argMax(running_hash, version),
                   argMax(hash_rule, version)
            FROM \(t("segments")) \(filter) GROUP BY account_id, segment_id ORDER BY account_id, segment_id
            """)
        // The newest check's reason, NULL (clean) included: `argMax(corrupt_reason, …)` skips
        // NULLs, so a segment once found corrupt stayed corrupt after re-hashing clean.
        let checks = try await rows(
            """
            SELECT account_id, segment_id, max(checked_at), tupleElement(argMax(tuple(corrupt_reason), checked_at), 1)
            FROM \(t("segment_checks")) \(filter) GROUP BY account_id, segment_id
            """)
        var latest: [String: (Int64, String?)] = [:]
        for c in checks {
            latest["\(c[0].chString ?? "")\u{0}\(c[1].chInt ?? 0)"] = (c[2].chInt ?? 0, c[3].chString)
        }
        var out: [String: [SegmentRecord]] = [:]
        for r in segs {
            let account = r[0].chString ?? ""
            let id = UInt64(r[1].chInt ?? 0)
            let check = latest["\(account)\u{0}\(id)"]
            out[account, default: []].append(
                SegmentRecord(
                    id: id, sealedAt: r[2].chInt, sha: r[3].chString, prev: r[4].chString, count: r[5].chInt ?? 0, sum: r[6].chInt ?? 0,
                    firstTs: r[7].chInt, lastTs: r[8].chInt, running: r[9].chString ?? "", rule: max(1, Int(r[10].chInt ?? 1)), checkedAt: check?.0,
                    corruptReason: check?.1))
        }
        return out
    }

    /// What an independent re-hash of a segment finds wrong with it, if anything.
    func rehash(_ account: String, _ seg: SegmentRecord, previous: String?) async throws -> String? {
        let d = try await digest(account, segment: seg.id, previous: previous, rule: seg.rule)
        if d.unreadable > 0 { return "\(d.unreadable) stored event(s) cannot be read back as events" }
        if seg.sealedAt != nil {
            if seg.rule > SegmentHash.currentRule { return "it names hash rule \(seg.rule), which no usagebox seals under" }
            if seg.prev != previous { return "its chain link does not name the previous sealed segment" }
            if d.hash.finalize() != seg.sha { return "its events no longer hash to the SHA-256 recorded when it sealed" }
            if Int64(d.count) != seg.count || d.sum != seg.sum { return "its count or sum differs from the ones recorded when it sealed" }
            return nil
        }
        if Int64(d.count) != seg.count { return "the running hash covers \(seg.count) events, the segment holds \(d.count)" }
        if d.multiset.hex != seg.running { return "its events do not match the running hash kept while it is open" }
        return nil
    }

    func recordCheck(_ account: String, _ id: UInt64, _ reason: String?) async throws {
        try await insert(
            "segment_checks",
            [
                .object([
                    ("account_id", .string(account)), ("segment_id", .number(String(id))), ("checked_at", .int(clock().microseconds)),
                    ("corrupt_reason", reason.map(JSONValue.string) ?? .null),
                ])
            ], anyReplica: true)
    }

    public func verify(_ req: VerifyRequest) async throws -> VerifyReport {
        try await verify(accounts: [req.account], range: req.range, mode: req.mode, byDay: req.byDay)[0]
    }

    public func verify(accounts: [String], range: TimeRange, mode: VerifyMode) async throws -> [VerifyReport] {
        try await verify(accounts: accounts, range: range, mode: mode, byDay: false)
    }

    /// Accounts checked in one statement: reconciliation's gate sent two per account, each reading
    /// a granule of every part for its account, and an org of 100 accounts spent seconds there
    /// (docs/clickhouse.md).
    static let verifyChunk = 25
    static let verifyChunkEvents: Int64 = 2_000_000

    func verify(accounts: [String], range: TimeRange, mode: VerifyMode, byDay: Bool) async throws -> [VerifyReport] {
        let h = Timestamp.microsPerHour
        let fromHour = floorDiv(range.from.microseconds, h)
        let toHour = floorDiv(range.to.microseconds + h - 1, h)
        var reports: [String: VerifyReport] = [:]
        let distinct = Array(Set(accounts)).sorted()
        var held: [String: Int64] = [:]
        for start in stride(from: 0, to: distinct.count, by: 1000) {  // an IN list well inside ClickHouse's syntax limits
            held.merge(try await eventsHeld(Array(distinct[start..<min(start + 1000, distinct.count)]), fromHour: fromHour, toHour: toHour)) { $1 }
        }
        // Chunks of accounts by the events their segments hold in the period (an account past
        // the bound is a chunk of its own, as every account was), so that a statement's work and
        // time stay near one account's of before.
        var pending: [[String]] = []
        var events: Int64 = 0
        for account in distinct {
            let n = held[account] ?? 0
            if let last = pending.last, !last.isEmpty, last.count < Self.verifyChunk, VerifyTotals.saturating(events, n) <= Self.verifyChunkEvents {
                pending[pending.count - 1].append(account)
                events += n
            } else {
                pending.append([account])
                events = n
            }
        }
        pending.reverse()
        while let chunk = pending.popLast() {
            var cells: [String: RollupCheck] = [:]
            do {
                try await rollupCheck(chunk, fromHour: fromHour, toHour: toHour, byDay: byDay, into: &cells)
            } catch let e as UsageBoxError where e.code == .invalidArgument && e.message.hasPrefix(ClickHouseClient.answerLimitPrefix) {
                if chunk.count > 1 {
                    // Cells that differ come back with their dimensions: a store whose rollups lost
                    // much answers more than the limit for several accounts, not for one.
                    pending += [Array(chunk[(chunk.count / 2)...]), Array(chunk[..<(chunk.count / 2)])]
                    continue
                }
                // One account: each level's cells in an answer of their own, as each level was read
                // before both came in one (a per-day report keeps every cell of both); only a level
                // past the limit alone is refused. The events are read twice, in this case only.
                cells = [:]
                try await rollupCheck(chunk, fromHour: fromHour, toHour: toHour, byDay: byDay, levels: .hourly, into: &cells)
                try await rollupCheck(chunk, fromHour: fromHour, toHour: toHour, byDay: byDay, levels: .daily, into: &cells)
            }
            // Segments as they are now (read once for every chunk, an open segment that took
            // events while earlier chunks ran read as corrupt), a few accounts at a time:
            // re-hashing one is a read of its events.
            let segmentsOf = try await segmentRecords(chunk)
            let segments = try await chunk.concurrentMap(atMost: 4) { account in
                try await self.checkSegments(account, segmentsOf[account] ?? [], fromHour: fromHour, toHour: toHour, mode: mode)
            }
            for (account, (checked, corrupt)) in zip(chunk, segments) {
                var c = cells[account] ?? RollupCheck()
                if byDay {
                    // Every day of the period is listed, days without events too.
                    var day = floorDiv(fromHour, 24)
                    while day * 24 < toHour {
                        if c.days[day] == nil { c.days[day] = (0, 0, 0) }
                        day += 1
                    }
                }
                let (rollupSum, rawSum) = c.totals.reported()
                var report = VerifyReport(
                    ok: c.drift == 0 && corrupt.isEmpty && c.mismatches.isEmpty && !c.extremaMismatch, mode: mode, rollupSum: rollupSum,
                    rawSum: rawSum, drift: c.drift, segmentsChecked: checked, segmentsCorrupt: corrupt.count, mismatches: c.mismatches,
                    days: byDay
                        ? c.days.sorted { $0.key < $1.key }.map {
                            .init(
                                day: Timestamp(microseconds: $0.key * h * 24).dayString, rollupSum: $0.value.rollup, rawSum: $0.value.raw, drift: $0.value.drift
                            )
                        } : nil)
                report.corruptSegments = corrupt
                reports[account] = report
            }
        }
        return accounts.map { reports[$0]! }
    }

    /// The events each account's segments overlapping the hours hold, to size verify's chunks:
    /// each segment's count is taken as at most 2^31 and never below 0, so a tampered count
    /// neither wraps the sum nor traps.
    func eventsHeld(_ accounts: [String], fromHour: Int64, toHour: Int64) async throws -> [String: Int64] {
        let h = Timestamp.microsPerHour
        let answer = try await rows(
            """
            SELECT account_id, sum(least(greatest(n, 0), 2147483647)) FROM (
              SELECT account_id, segment_id, argMax(event_count, version) AS n, argMax(first_ts, version) AS f, argMax(last_ts, version) AS l
              FROM \(t("segments")) WHERE account_id IN (\(accounts.map(ClickHouseClient.quote).joined(separator: ", ")))
              GROUP BY account_id, segment_id)
            WHERE f < \(toHour * h) AND l >= \(fromHour * h) GROUP BY account_id
            """)
        var out: [String: Int64] = [:]
        for r in answer { out[r[0].chString ?? ""] = r[1].chInt ?? 0 }
        return out
    }

    /// Re-hashes the segments of `account` overlapping the hours (incremental: only those not
    /// re-hashed clean since they sealed), recording what sealed ones were found.
    func checkSegments(
        _ account: String, _ all: [SegmentRecord], fromHour: Int64, toHour: Int64, mode: VerifyMode
    ) async throws -> (checked: Int, corrupt: [VerifyReport.CorruptSegment]) {
        let h = Timestamp.microsPerHour
        var checked = 0
        var corrupt: [VerifyReport.CorruptSegment] = []
        var previous: String?
        for seg in all {
            defer { if seg.sealedAt != nil { previous = seg.sha } }
            guard let first = seg.firstTs, let last = seg.lastTs, first < toHour * h, last >= fromHour * h else { continue }
            checked += 1
            let trusted = mode == .incremental && seg.sealedAt != nil && seg.checkedAt != nil && seg.corruptReason == nil
            var reason: String?
            if trusted {
                reason = nil
            } else if mode == .incremental, seg.sealedAt != nil, let known = seg.corruptReason {
                reason = known
            } else {
                reason = try await rehash(account, seg, previous: previous)
                if seg.sealedAt != nil { try await recordCheck(account, seg.id, reason) }
            }
            if let reason { corrupt.append(.init(segmentID: ExplainReport.SegmentInfo.name(seg.id), reason: reason)) }
        }
        return (checked, corrupt)
    }

    /// What comparing one account's rollups with its raw events found.
    struct RollupCheck {
        var drift: Int64 = 0
        var totals = VerifyTotals()
        var mismatches: [VerifyReport.Mismatch] = []
        var extremaMismatch = false
        var days: [Int64: (rollup: Int64, raw: Int64, drift: Int64)] = [:]
    }

    /// Rollups against raw events, per rollup key and hour and per key and day, for each of
    /// `accounts`, in one statement: the events are read once, into hourly cells that are compared
    /// with the hourly rollups and then added up by day and compared with the daily ones (each
    /// level read the events again; at 10M events the reads were most of a reconcile). The raw
    /// cells cover the period's whole days, as the daily check always did; hourly cells outside
    /// the period's hours only feed their day.
    ///
    /// ClickHouse adds up each account's sides and returns only the cells that differ (all of
    /// them for `byDay`, whose days add up every cell), and those whose high half is so large that
    /// joining the halves may pass 64 bits, so that the check refuses as it does cell by cell.
    /// Clean cells add nothing to drift, mismatches or extrema. A cell's dimensions come back only
    /// where its two sides differ (a mismatch names them): every cell's, of an account with
    /// thousands of keys of long dimensions, was a response of hundreds of megabytes.
    ///
    /// `levels` keeps the cells of one level only (the other's come back empty); the totals are
    /// added with the hourly cells. Cells are added to `out`'s checks, hourly before daily as in
    /// one answer.
    func rollupCheck(
        _ accounts: [String], fromHour: Int64, toHour: Int64, byDay: Bool, levels: CheckedLevels = .both, into out: inout [String: RollupCheck]
    ) async throws {
        let hourly = ClickHouseSchema.rollups.first { $0.hours == 1 }!
        let daily = ClickHouseSchema.rollups.first { $0.hours == 24 }!
        let list = accounts.map(ClickHouseClient.quote).joined(separator: ", ")
        let (fromDay, toDay) = (floorDiv(fromHour, 24), floorDiv(toHour + 23, 24))
        let key = "account_id, meter_id, model_id, kind, unit, dimensions"
        // A cell whose halves may not join in 64 bits (high × 2^32 + low, the low half's carry
        // included) is kept, so that joining them refuses as it does for a cell read alone.
        func wide(_ p: String) -> String { "abs(\(p)_hi) + intDiv(abs(\(p)_lo), 4294967296) >= 2147483646" }
        func keep(_ r: String, _ e: String, same: String, level kept: Bool) -> String {
            !kept ? "0" : byDay ? "1" : "NOT \(same) OR \(wide(r)) OR \(wide(e))"
        }
        func same(_ r: String, _ e: String) -> String {
            "\(r)_hi = \(e)_hi AND \(r)_lo = \(e)_lo AND \(r)_count = \(e)_count AND \(r)_min = \(e)_min AND \(r)_max = \(e)_max"
        }
        func cell(_ bucket: String, _ r: String, _ e: String, same: String) -> String {
            "(meter_id, model_id, kind, unit, dimensions, \(bucket), \(r)_hi, \(r)_lo, \(r)_count, \(e)_hi, \(e)_lo, \(e)_count, "
                + "\(r)_min, \(e)_min, \(r)_max, \(e)_max, \(same))"
        }
        // Cells in the order each level's were read in alone (by key, then bucket; the first 100
        // mismatches are the same ones, and a day's saturating sums add up in the same order),
        // sorted before their dimensions are left out where the two sides agree.
        func listed(_ cells: String) -> String {
            "arrayMap(t -> (t.1, t.2, t.3, t.4, if(t.17, '', t.5), t.6, t.7, t.8, t.9, t.10, t.11, t.12, t.13, t.14, t.15, t.16), "
                + "arraySort(t -> (t.1, t.2, t.3, t.4, t.5, t.6), \(cells)))"
        }
        func rollup(_ level: ClickHouseSchema.Rollup, _ p: String, from: Int64, to: Int64) -> String {
            """
            SELECT \(key), \(level.bucket), sumMerge(sum_hi) AS \(p)_hi, sumMerge(sum_lo) AS \(p)_lo, countMerge(count) AS \(p)_count,
                   minMerge(min) AS \(p)_min, maxMerge(max) AS \(p)_max
            FROM \(t(level.table)) WHERE account_id IN (\(list)) AND \(level.bucket) >= \(from) AND \(level.bucket) < \(to)
            GROUP BY \(key), \(level.bucket)
            """
        }
        let inHours = "hour >= \(fromHour) AND hour < \(toHour)"
        let answer = try await rows(
            """
            SELECT account_id, sum(hr_hi), sum(hr_lo), sum(he_hi), sum(he_lo), \(listed("groupArrayArray(hours)")),
                   \(listed("groupArrayIf(\(cell("day", "dr", "de", same: "day_same")), \(keep("dr", "de", same: "day_same", level: levels != .hourly)))"))
            FROM (
              SELECT \(key), day, hr_hi, hr_lo, he_hi, he_lo, hours, dr_hi, dr_lo, dr_count, dr_min, dr_max, de_hi, de_lo, de_count, de_min, de_max,
                     \(same("dr", "de")) AS day_same
              FROM (
                SELECT \(key), intDiv(hour, 24) AS day,
                       sumIf(r_hi + intDiv(r_lo, \(ClickHouseSchema.half)), \(inHours)) AS hr_hi, sumIf(r_lo % \(ClickHouseSchema.half), \(inHours)) AS hr_lo,
                       sumIf(e_hi + intDiv(e_lo, \(ClickHouseSchema.half)), \(inHours)) AS he_hi, sumIf(e_lo % \(ClickHouseSchema.half), \(inHours)) AS he_lo,
                       groupArrayIf(\(cell("hour", "r", "e", same: "hour_same")), \(inHours) AND (\(keep("r", "e", same: "hour_same", level: levels != .daily)))) AS hours,
                       sum(e_hi) AS de_hi, sum(e_lo) AS de_lo, sum(e_count) AS de_count,
                       minIf(e_min, e_count > 0) AS de_min, maxIf(e_max, e_count > 0) AS de_max
                FROM (
                  SELECT \(key), hour, r_hi, r_lo, r_count, r_min, r_max, e_hi, e_lo, e_count, e_min, e_max, \(same("r", "e")) AS hour_same
                  FROM (\(rollup(hourly, "r", from: fromDay * 24, to: toDay * 24)))
                  ALL FULL OUTER JOIN
                  (SELECT account_id, meter_id, ifNull(model_id, '') AS model_id, kind, ifNull(unit, '') AS unit, dimensions,
                          intDiv(ts, \(hourly.micros)) AS hour,
                          sum(intDiv(quantity, \(ClickHouseSchema.half))) AS e_hi, sum(quantity % \(ClickHouseSchema.half)) AS e_lo, count() AS e_count,
                          min(quantity) AS e_min, max(quantity) AS e_max
                   FROM \(t("events")) WHERE account_id IN (\(list)) AND ts >= \(fromDay * daily.micros) AND ts < \(toDay * daily.micros)
                   GROUP BY \(key), hour)
                  USING (\(key), hour))
                GROUP BY \(key), day)
              ALL FULL OUTER JOIN
              (\(rollup(daily, "dr", from: fromDay, to: toDay)))
              USING (\(key), day))
            GROUP BY account_id
            """, limit: verifyAnswerBytes)
        for r in answer {
            let account = r[0].chString ?? ""
            var c = out[account] ?? RollupCheck()
            // Each side's halves summed over every hourly cell, a cell's low half's carry moved to
            // its high half first, so neither sum wraps (a tampered low half near 2^63 did).
            if levels != .daily {
                c.totals.add(rollupHigh: r[1].chInt ?? 0, rollupLow: r[2].chInt ?? 0, rawHigh: r[3].chInt ?? 0, rawLow: r[4].chInt ?? 0)
            }
            for (level, column) in [(hourly, r[5]), (daily, r[6])] {
                guard case let .array(kept) = column else { throw UsageBoxError(.internal, "ClickHouse: verify's cells are not an array") }
                for case let .array(cell) in kept { try c.add(cell, level: level, byDay: byDay) }
            }
            out[account] = c
        }
    }

    /// Which rollup levels' cells one `rollupCheck` answer carries.
    enum CheckedLevels { case both, hourly, daily }

    /// Re-hashes up to `maxSegments` sealed segments, least recently checked first.
    public func scrub(maxSegments: Int) async throws -> ScrubProgress {
        // The least recently checked sealed segments, chosen in ClickHouse: every segment's
        // record was read for two, every few seconds, and a store of a year of hourly seals
        // passed the answer bound.
        let chosen = try await rows(
            """
            SELECT account_id, segment_id FROM (\(sealedSegments(nil)))
            ALL LEFT JOIN (\(latestChecks(nil))) USING (account_id, segment_id)
            ORDER BY checked, account_id, segment_id LIMIT \(max(maxSegments, 0))
            """)
        let accounts = Array(Set(chosen.compactMap { $0[0].chString })).sorted()
        let records = accounts.isEmpty ? [:] : try await segmentRecords(accounts)
        for r in chosen {
            guard let account = r[0].chString, let id = r[1].chInt.map(UInt64.init) else { continue }
            var previous: String?
            for seg in records[account] ?? [] where seg.sealedAt != nil {
                if seg.id == id {
                    try await recordCheck(account, seg.id, try await rehash(account, seg, previous: previous))
                    break
                }
                previous = seg.sha
            }
        }
        return try await integrity(account: nil)
    }

    /// Sealed segments' keys, of one account or all.
    func sealedSegments(_ account: String?) -> String {
        """
        SELECT account_id, segment_id FROM \(t("segments"))\(account.map { " WHERE account_id = \(ClickHouseClient.quote($0))" } ?? "")
        GROUP BY account_id, segment_id HAVING isNotNull(argMax(sealed_at, version))
        """
    }

    /// Each checked segment's latest check: when (`checked`), and the reason it found, NULL when
    /// clean (`argMax(corrupt_reason, …)` would skip NULLs, as `segmentRecords` says).
    func latestChecks(_ account: String?) -> String {
        """
        SELECT account_id, segment_id, max(checked_at) AS checked, tupleElement(argMax(tuple(corrupt_reason), checked_at), 1) AS reason
        FROM \(t("segment_checks"))\(account.map { " WHERE account_id = \(ClickHouseClient.quote($0))" } ?? "") GROUP BY account_id, segment_id
        """
    }

    /// Where the re-hashing of sealed segments stands, for one account or the whole store, counted
    /// in ClickHouse (an unchecked segment joins as `checked` 0 and a NULL reason).
    func integrity(account: String?) async throws -> ScrubProgress {
        let answer = try await rows(
            """
            SELECT count(), countIf(isNull(reason) AND checked > 0), countIf(isNotNull(reason)), countIf(isNull(reason) AND checked = 0),
                   minIf(checked, isNull(reason) AND checked > 0)
            FROM (\(sealedSegments(account))) ALL LEFT JOIN (\(latestChecks(account))) USING (account_id, segment_id)
            """)
        var p = ScrubProgress()
        guard let r = answer.first, r.count == 5 else { return p }
        p.sealed = r[0].chInt ?? 0
        p.verified = r[1].chInt ?? 0
        p.corrupt = r[2].chInt ?? 0
        p.pending = r[3].chInt ?? 0
        if p.verified > 0, let oldest = r[4].chInt { p.oldestVerification = Timestamp(microseconds: oldest) }
        return p
    }
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

extension ClickHouseMeterStore.RollupCheck {
    /// Adds one cell as `rollupCheck` returns it: meter, model, kind, unit, dimensions (empty
    /// where the sides agree), bucket, then each side's high and low halves, count, min and max.
    mutating func add(_ c: [JSONValue], level: ClickHouseSchema.Rollup, byDay: Bool) throws {
        // An answer of another shape (a server that reads the statement otherwise) is an error, not a trap.
        guard c.count >= 16 else { throw UsageBoxError(.internal, "ClickHouse: a verify cell has \(c.count) fields, not 16") }
        let rollup = try ClickHouseMeterStore.combine(hi: c[6].chInt ?? 0, lo: c[7].chInt ?? 0, "a rollup cell")
        let raw = try ClickHouseMeterStore.combine(hi: c[9].chInt ?? 0, lo: c[10].chInt ?? 0, "a raw cell")
        let (rc, ec) = (c[8].chInt ?? 0, c[11].chInt ?? 0)
        let bucket = c[5].chInt ?? 0
        let (diff, o) = raw.subtractingReportingOverflow(rollup)
        let cellDrift = o ? Int64.max : diff.magnitude > UInt64(Int64.max) ? Int64.max : Int64(diff.magnitude)
        drift = VerifyTotals.saturating(drift, cellDrift)
        // A day's sums are its hours'; its drift is its hourly and its daily cells', so the days
        // add up to `drift`.
        if byDay {
            let day = level.hours == 1 ? floorDiv(bucket, 24) : bucket
            var d = days[day] ?? (0, 0, 0)
            if level.hours == 1 {
                d.rollup = VerifyTotals.saturating(d.rollup, rollup)
                d.raw = VerifyTotals.saturating(d.raw, raw)
            }
            d.drift = VerifyTotals.saturating(d.drift, cellDrift)
            days[day] = d
        }
        // Reads of min and max are answered from the rollups too: their extrema must be the events'.
        let differing =
            rc > 0 && ec > 0
            ? VerifyReport.Mismatch.Extrema.differing(rollup: (c[12].chInt ?? 0, c[14].chInt ?? 0), raw: (c[13].chInt ?? 0, c[15].chInt ?? 0)) : nil
        if differing != nil { extremaMismatch = true }
        if rollup != raw || rc != ec || differing != nil, mismatches.count < 100 {
            let model = c[1].chString ?? ""
            var m = VerifyReport.Mismatch(
                meterID: c[0].chString ?? "", modelID: model.isEmpty ? nil : model, kind: EventKind(rawValue: c[2].chString ?? "") ?? .usage,
                dimensions: c[4].chString ?? "{}", hour: Timestamp(microseconds: bucket * level.micros), rollupSum: rollup, rawSum: raw,
                rollupCount: rc, rawCount: ec, rollup: level.hours == 1 ? .hour : .day)
            m.extrema = differing
            mismatches.append(m)
        }
    }
}
