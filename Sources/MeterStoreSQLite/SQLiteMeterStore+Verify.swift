import GRDB
import Metering
import SegmentChain

extension SQLiteMeterStore {
    public func verify(_ request: VerifyRequest) async throws -> VerifyReport {
        try await wrap {
            let (report, outcome) = try await boundedRead { db in try self.verify(db, request) }
            try await record(outcome)
            return report
        }
    }

    /// A segment as verify and the scrub read it, decoded by column name.
    struct SegmentRow: FetchableRecord {
        var id: Int64
        var sealed: Bool
        var sha256: String?
        var prev: String?
        var count: Int64
        var sum: Int64
        var verified: Bool
        var running: String?
        var postClose: Int64?
        var corrupt: String?
        var account: String

        static let columns = """
            id, sealed_at IS NOT NULL AS sealed, sha256, prev_sha256, event_count, sum, verified_at IS NOT NULL AS verified, \
            running_hash, post_close_count, corrupt_reason, account_id
            """
        init(row r: Row) {
            id = r["id"]
            sealed = r["sealed"]
            sha256 = r["sha256"]
            prev = r["prev_sha256"]
            count = r["event_count"]
            sum = r["sum"]
            verified = r["verified"]
            running = r["running_hash"]
            postClose = r["post_close_count"]
            corrupt = r["corrupt_reason"]
            account = r["account_id"]
        }
    }

    /// What an independent re-hash found: sealed segments that hashed clean, and segments found corrupt.
    struct RehashOutcome: Sendable {
        var clean: [Int64] = []
        var corrupt: [(id: Int64, reason: String)] = []
    }

    /// Remembers what re-hashing found, so incremental checks trust only segments re-hashed clean and
    /// keep reporting the ones found corrupt.
    func record(_ outcome: RehashOutcome) async throws {
        guard !outcome.clean.isEmpty || !outcome.corrupt.isEmpty else { return }
        try await writer.write { db in
            let now = self.clock().microseconds
            for id in outcome.clean {
                try db.execute(sql: "UPDATE segment SET verified_at = ?, corrupt_reason = NULL WHERE id = ?", arguments: [now, id])
            }
            for (id, reason) in outcome.corrupt {
                try db.execute(sql: "UPDATE segment SET verified_at = NULL, corrupt_reason = ? WHERE id = ?", arguments: [reason, id])
            }
        }
    }

    public func scrub(maxSegments: Int) async throws -> ScrubProgress {
        try await wrap {
            let outcome = try await writer.read { db -> RehashOutcome in
                var outcome = RehashOutcome()
                let rows = try SegmentRow.fetchAll(
                    db,
                    sql: """
                        SELECT \(SegmentRow.columns) FROM segment WHERE sealed_at IS NOT NULL
                        ORDER BY verified_at IS NOT NULL, verified_at, id LIMIT ?
                        """, arguments: [maxSegments])
                var dir = try KeyDirectory(db)
                for seg in rows {
                    let (_, reasons) = try self.rehash(db, seg) { try dir.id(for: $0, db) }
                    if reasons.isEmpty { outcome.clean.append(seg.id) } else { outcome.corrupt.append((seg.id, reasons.joined(separator: "; "))) }
                }
                return outcome
            }
            try await record(outcome)
            return try await writer.read { db in try Self.scrubProgress(db, account: nil) }
        }
    }

    static func scrubProgress(_ db: Database, account: String?) throws -> ScrubProgress {
        var p = ScrubProgress()
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) AS sealed, SUM(verified_at IS NOT NULL AND corrupt_reason IS NULL) AS verified,
                           SUM(corrupt_reason IS NOT NULL) AS corrupt, SUM(verified_at IS NULL AND corrupt_reason IS NULL) AS pending,
                           MIN(verified_at) AS oldest
                    FROM segment WHERE sealed_at IS NOT NULL\(account == nil ? "" : " AND account_id = ?")
                    """, arguments: account.map { [$0] } ?? [])
        else { return p }
        p.sealed = row["sealed"]
        p.verified = row["verified"] ?? 0
        p.corrupt = row["corrupt"] ?? 0
        p.pending = row["pending"] ?? 0
        p.oldestVerification = (row["oldest"] as Int64?).map(Timestamp.init(microseconds:))
        return p
    }

    /// Re-hashes one segment from its stored events: what is wrong with it, if anything, and its digest.
    func rehash(_ db: Database, _ seg: SegmentRow, key: (UsageEvent) throws -> Int64) throws -> (SegmentDigest, [String]) {
        let d = try digest(db, segmentID: seg.id, previous: seg.prev, key: key)
        var reasons: [String] = []
        if let running = seg.running, running != d.multiset.hex {
            reasons.append("its events no longer match the running hash kept with each batch")
        }
        if let flagged = seg.postClose, d.postClose < flagged { reasons.append(Self.clearedFlags(flagged, now: d.postClose)) }
        if d.count != seg.count || d.sum != seg.sum {
            reasons.append("it holds \(d.count) events summing \(d.sum), recorded as \(seg.count) summing \(seg.sum)")
        }
        guard seg.sealed else { return (d, reasons) }
        if !(1...SegmentHash.currentRule).contains(d.rule) { reasons.append("it names hash rule \(d.rule), which no usagebox seals under") }
        if d.finalize() != seg.sha256 { reasons.append("its events no longer hash to the sealed SHA-256") }
        if try previousSealedHash(db, account: seg.account, before: seg.id) != seg.prev {
            reasons.append("the chain is broken: its previous hash differs from the previous sealed segment's")
        }
        var stored: [Cell: UsageAggregate] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT key_id, hour, sum, count FROM segment_stat WHERE segment_id = ?", arguments: [seg.id]) {
            stored[Cell(key: r[0], hour: r[1])] = UsageAggregate(sum: r[2], count: r[3], min: 0, max: 0)
        }
        let recomputed = d.stats.mapValues { UsageAggregate(sum: $0.sum, count: $0.count, min: 0, max: 0) }
        if stored != recomputed { reasons.append("its recorded per-key sums differ from its events") }
        return (d, reasons)
    }

    func verify(_ db: Database, _ req: VerifyRequest) throws -> (VerifyReport, RehashOutcome) {
        let h = Timestamp.microsPerHour
        // Rollups are hourly, so the check covers the whole hours that the period touches.
        let fromHour = req.range.from.hour
        let toHour = (req.range.to.microseconds + h - 1) / h
        var dir = try KeyDirectory(db)

        let segments = try SegmentRow.fetchAll(
            db,
            sql: """
                SELECT \(SegmentRow.columns) FROM segment
                WHERE account_id = ? AND first_ts < ? AND last_ts >= ? ORDER BY id
                """, arguments: [req.account, toHour * h, fromHour * h])

        var raw: [Cell: UsageAggregate] = [:]
        // Deep mode re-hashes every segment, so it knows each cell's smallest and largest quantity
        // (incremental trusts sealed segments' recorded sums and counts, which keep no extrema).
        var rawExtrema: [Cell: (min: Int64, max: Int64)] = [:]
        var corrupt: [VerifyReport.CorruptSegment] = []
        var outcome = RehashOutcome()
        func addRaw(_ cell: Cell, _ sum: Int64, _ count: Int64) throws {
            guard cell.hour >= fromHour, cell.hour < toHour else { return }
            var a = raw[cell] ?? UsageAggregate()
            a.sum = try a.sum.checkedAdding(sum, "a raw hourly sum")
            a.count += count
            raw[cell] = a
        }

        // The request's deadline, checked in the loops here (SQLite checks it between their reads).
        var polled = 0
        for seg in segments {
            try WorkDeadline.poll(&polled)
            // Incremental trusts a sealed segment's statistics only once its stored events were
            // re-hashed clean (verify or the scrub) and nothing since found it corrupt.
            if req.mode == .incremental, seg.sealed, seg.verified, seg.corrupt == nil {
                let rows = try Row.fetchCursor(
                    db.cachedStatement(
                        sql: """
                            SELECT key_id, hour, sum, count FROM segment_stat WHERE segment_id = ? AND hour >= ? AND hour < ?
                            """), arguments: [seg.id, fromHour, toHour])
                while let r = try rows.next() { try addRaw(Cell(key: r[0], hour: r[1]), r[2], r[3]) }
                continue
            }
            let (d, reasons) = try rehash(db, seg) { try dir.id(for: $0, db) }
            for (cell, agg) in d.stats {
                try addRaw(cell, agg.sum, agg.count)
                guard req.mode == .deep, cell.hour >= fromHour, cell.hour < toHour else { continue }
                let e = rawExtrema[cell] ?? (.max, .min)
                rawExtrema[cell] = (Swift.min(e.min, agg.min), Swift.max(e.max, agg.max))
            }
            if reasons.isEmpty {
                // Every clean re-hash is recorded, as the scrub's are: `oldest_verification` says
                // when segments were last looked at, not when they were first.
                if seg.sealed { outcome.clean.append(seg.id) }
            } else {
                corrupt.append(.init(segmentID: Self.segmentName(seg.id), reason: reasons.joined(separator: "; ")))
                outcome.corrupt.append((seg.id, reasons.joined(separator: "; ")))
            }
        }

        var rollup: [Cell: UsageAggregate] = [:]
        let accountKeys = "SELECT id FROM rollup_key WHERE account_id = ?"
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT key_id, hour, sum, count, min, max FROM rollup_hour
                WHERE key_id IN (\(accountKeys)) AND hour >= ? AND hour < ?
                """, arguments: [req.account, fromHour, toHour])
        while let r = try rows.next() {
            rollup[Cell(key: r[0], hour: r[1])] = UsageAggregate(sum: r[2], count: r[3], min: r[4], max: r[5])
        }
        /// Where both sides hold events of a cell, their extrema when they differ (deep mode only).
        func extrema(_ cell: Cell, raw: (min: Int64, max: Int64)?, _ u: UsageAggregate) -> VerifyReport.Mismatch.Extrema? {
            guard let raw, u.count > 0 else { return nil }
            return .differing(rollup: (u.min, u.max), raw: raw)
        }
        var extremaMismatch = false

        // The daily rollups must equal the raw events of their day, for every day wholly inside the
        // checked hours (against the raw events, not the hourly rollups: an hourly error was then
        // reported twice, and the day's line showed the hours' sum as its raw sum).
        var dayDrift: Int64 = 0
        var dayMismatches: [VerifyReport.Mismatch] = []
        var dayCellDrift: [Int64: Int64] = [:]  // day → its daily rollup cells' drift
        let firstDay = (fromHour + 23) / 24, lastDay = toHour / 24
        if firstDay < lastDay {
            var rawDays: [Cell: UsageAggregate] = [:]
            for (cell, agg) in raw where cell.hour >= firstDay * 24 && cell.hour < lastDay * 24 {
                var d = rawDays[Cell(key: cell.key, hour: cell.hour / 24)] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
                d.sum = try d.sum.checkedAdding(agg.sum, "a day's raw sum")
                d.count += agg.count
                rawDays[Cell(key: cell.key, hour: cell.hour / 24)] = d
            }
            var stored: [Cell: UsageAggregate] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT key_id, day, sum, count, min, max FROM rollup_day
                    WHERE key_id IN (\(accountKeys)) AND day >= ? AND day < ?
                    """, arguments: [req.account, firstDay, lastDay])
            while let r = try rows.next() { stored[Cell(key: r[0], hour: r[1])] = UsageAggregate(sum: r[2], count: r[3], min: r[4], max: r[5]) }
            var rawDayExtrema: [Cell: (min: Int64, max: Int64)] = [:]
            for (cell, e) in rawExtrema where cell.hour >= firstDay * 24 && cell.hour < lastDay * 24 {
                let day = Cell(key: cell.key, hour: cell.hour / 24)
                let d = rawDayExtrema[day] ?? (.max, .min)
                rawDayExtrema[day] = (Swift.min(d.min, e.min), Swift.max(d.max, e.max))
            }
            for cell in Set(stored.keys).union(rawDays.keys) {
                try WorkDeadline.poll(&polled)
                let a = rawDays[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
                let b = stored[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
                let differing = extrema(cell, raw: rawDayExtrema[cell], b)
                guard a.sum != b.sum || a.count != b.count || differing != nil else { continue }
                if differing != nil { extremaMismatch = true }
                let cellDrift = Self.distance(a.sum, b.sum)
                dayDrift = VerifyTotals.saturating(dayDrift, cellDrift)
                dayCellDrift[cell.hour] = VerifyTotals.saturating(dayCellDrift[cell.hour, default: 0], cellDrift)
                if dayMismatches.count < 100, let key = try dir.key(cell.key, db) {
                    var m = VerifyReport.Mismatch(
                        meterID: key.meter, modelID: key.modelID, kind: EventKind(rawValue: key.kind) ?? .usage,
                        dimensions: key.dimensions, hour: .ofHour(cell.hour * 24), rollupSum: b.sum, rawSum: a.sum,
                        rollupCount: b.count, rawCount: a.count, rollup: .day)
                    m.extrema = differing
                    dayMismatches.append(m)
                }
            }
        }

        var totals = VerifyTotals()
        var drift: Int64 = dayDrift
        var mismatches: [VerifyReport.Mismatch] = []
        var days: [Int64: (rollup: Int64, raw: Int64, drift: Int64)] = [:]
        let cells = Set(raw.keys).union(rollup.keys).sorted { ($0.hour, $0.key) < ($1.hour, $1.key) }
        for cell in cells {
            try WorkDeadline.poll(&polled)
            let r = raw[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
            let u = rollup[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
            totals.add(rollup: u.sum, raw: r.sum)
            let diff = Self.distance(r.sum, u.sum)
            drift = VerifyTotals.saturating(drift, diff)
            let day = Timestamp.ofHour(cell.hour).day
            var dd = days[day] ?? (0, 0, 0)
            // A day's sums as the report shows them: saturated, as its drift is (`VerifyTotals`).
            dd.rollup = VerifyTotals.saturating(dd.rollup, u.sum)
            dd.raw = VerifyTotals.saturating(dd.raw, r.sum)
            dd.drift = VerifyTotals.saturating(dd.drift, diff)
            days[day] = dd
            let differing = extrema(cell, raw: rawExtrema[cell], u)
            if differing != nil { extremaMismatch = true }
            if r.sum != u.sum || r.count != u.count || differing != nil, mismatches.count < 100, let key = try dir.key(cell.key, db) {
                var m = VerifyReport.Mismatch(
                    meterID: key.meter, modelID: key.modelID, kind: EventKind(rawValue: key.kind) ?? .usage,
                    dimensions: key.dimensions, hour: .ofHour(cell.hour), rollupSum: u.sum, rawSum: r.sum,
                    rollupCount: u.count, rawCount: r.count)
                m.extrema = differing
                mismatches.append(m)
            }
        }
        // Hourly cells first, then daily ones, as the ClickHouse store lists them.
        mismatches += dayMismatches.prefix(max(0, 100 - mismatches.count))
        // A day's drift is its hourly and its daily cells', so the days add up to `drift`.
        for (day, d) in dayCellDrift {
            var dd = days[day] ?? (0, 0, 0)
            dd.drift = VerifyTotals.saturating(dd.drift, d)
            days[day] = dd
        }
        let countMismatch = cells.contains { (raw[$0]?.count ?? 0) != (rollup[$0]?.count ?? 0) }
        var dayList: [VerifyReport.Day]?
        if req.byDay {
            // Every day of the period appears, quiet days included, so a gap in collection shows as zeros.
            var list: [VerifyReport.Day] = []
            var day = req.range.from.day
            let lastDay = Timestamp(microseconds: req.range.to.microseconds - 1).day
            while day <= lastDay {
                let dd = days[day] ?? (0, 0, 0)
                list.append(.init(day: Timestamp(seconds: day * 86_400).dayString, rollupSum: dd.rollup, rawSum: dd.raw, drift: dd.drift))
                day += 1
            }
            dayList = list
        }
        let (rollupSum, rawSum) = totals.reported()
        var report = VerifyReport(
            ok: drift == 0 && corrupt.isEmpty && !countMismatch && !extremaMismatch && dayMismatches.isEmpty, mode: req.mode, rollupSum: rollupSum,
            rawSum: rawSum, drift: drift,
            segmentsChecked: segments.count, segmentsCorrupt: corrupt.count, mismatches: mismatches, days: dayList)
        report.corruptSegments = corrupt
        return (report, outcome)
    }

    /// |a − b|, saturating: a difference past 64 bits is reported as the largest drift (as the
    /// ClickHouse store reports it), never wrapped into a small one nor refused — one hour's
    /// rollup cannot be read in a shorter range.
    static func distance(_ a: Int64, _ b: Int64) -> Int64 {
        let (d, overflow) = a.subtractingReportingOverflow(b)
        return overflow || d == .min ? .max : Swift.abs(d)
    }
}
