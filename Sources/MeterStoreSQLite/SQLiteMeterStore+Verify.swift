import GRDB
import Metering

extension SQLiteMeterStore {
    public func verify(_ request: VerifyRequest) async throws -> VerifyReport {
        try await wrap {
            let (report, verifiedOK) = try await writer.read { db in try self.verify(db, request) }
            if !verifiedOK.isEmpty {
                // Remember which sealed segments hashed clean, so incremental checks can trust their statistics.
                try await writer.write { db in
                    let now = self.clock().microseconds
                    for id in verifiedOK {
                        try db.execute(sql: "UPDATE segment SET verified_at = ? WHERE id = ? AND verified_at IS NULL", arguments: [now, id])
                    }
                }
            }
            return report
        }
    }

    private struct SegmentRow {
        var id: Int64
        var sealed: Bool
        var sha256: String?
        var prev: String?
        var count: Int64
        var sum: Int64
        var verified: Bool
    }

    func verify(_ db: Database, _ req: VerifyRequest) throws -> (VerifyReport, [Int64]) {
        let h = Timestamp.microsPerHour
        // Rollups are hourly, so the check covers the whole hours that the period touches.
        let fromHour = req.range.from.hour
        let toHour = (req.range.to.microseconds + h - 1) / h
        var dir = try KeyDirectory(db, scope: .accounts([req.account]))

        let segments = try Row.fetchAll(db, sql: """
            SELECT id, sealed_at IS NOT NULL, sha256, prev_sha256, event_count, sum, verified_at IS NOT NULL FROM segment
            WHERE account_id = ? AND first_ts < ? AND last_ts >= ? ORDER BY id
            """, arguments: [req.account, toHour * h, fromHour * h]).map {
            SegmentRow(id: $0[0], sealed: $0[1], sha256: $0[2], prev: $0[3], count: $0[4], sum: $0[5], verified: $0[6])
        }

        var raw: [Cell: UsageAggregate] = [:]
        var corrupt: [VerifyReport.CorruptSegment] = []
        var verifiedOK: [Int64] = []
        func addRaw(_ cell: Cell, _ sum: Int64, _ count: Int64) throws {
            guard cell.hour >= fromHour, cell.hour < toHour else { return }
            var a = raw[cell] ?? UsageAggregate()
            a.sum = try a.sum.checkedAdding(sum, "a raw hourly sum")
            a.count += count
            raw[cell] = a
        }

        for seg in segments {
            if req.mode == .incremental, seg.sealed, seg.verified {
                let rows = try Row.fetchCursor(db.cachedStatement(sql: """
                    SELECT key_id, hour, sum, count FROM segment_stat WHERE segment_id = ? AND hour >= ? AND hour < ?
                    """), arguments: [seg.id, fromHour, toHour])
                while let r = try rows.next() { try addRaw(Cell(key: r[0], hour: r[1]), r[2], r[3]) }
                continue
            }
            let d = try digest(db, segmentID: seg.id, previous: seg.prev) { dir.id(for: $0) }
            for (cell, agg) in d.stats { try addRaw(cell, agg.sum, agg.count) }
            guard seg.sealed else { continue }
            var reasons: [String] = []
            if d.finalize() != seg.sha256 { reasons.append("its events no longer hash to the sealed SHA-256") }
            if try previousSealedHash(db, account: req.account, before: seg.id) != seg.prev {
                reasons.append("the chain is broken: its previous hash differs from the previous sealed segment's")
            }
            if d.count != seg.count || d.sum != seg.sum {
                reasons.append("it holds \(d.count) events summing \(d.sum), sealed as \(seg.count) summing \(seg.sum)")
            }
            var stored: [Cell: UsageAggregate] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT key_id, hour, sum, count FROM segment_stat WHERE segment_id = ?", arguments: [seg.id]) {
                stored[Cell(key: r[0], hour: r[1])] = UsageAggregate(sum: r[2], count: r[3], min: 0, max: 0)
            }
            let recomputed = d.stats.mapValues { UsageAggregate(sum: $0.sum, count: $0.count, min: 0, max: 0) }
            if stored != recomputed { reasons.append("its recorded per-key sums differ from its events") }
            if reasons.isEmpty {
                if !seg.verified { verifiedOK.append(seg.id) }
            } else {
                corrupt.append(.init(segmentID: Self.segmentName(seg.id), reason: reasons.joined(separator: "; ")))
            }
        }

        var rollup: [Cell: UsageAggregate] = [:]
        let accountKeys = dir.byID.keys.filter { $0 > 0 }
        if !accountKeys.isEmpty {
            let rows = try Row.fetchCursor(db, sql: """
                SELECT key_id, hour, sum, count FROM rollup_hour
                WHERE key_id IN (\(accountKeys.sorted().map(String.init).joined(separator: ","))) AND hour >= ? AND hour < ?
                """, arguments: [fromHour, toHour])
            while let r = try rows.next() {
                rollup[Cell(key: r[0], hour: r[1])] = UsageAggregate(sum: r[2], count: r[3], min: 0, max: 0)
            }
        }

        // The daily rollups must equal their hours, for every day wholly inside the checked hours.
        var dayDrift: Int64 = 0
        var dayMismatches: [VerifyReport.Mismatch] = []
        let firstDay = (fromHour + 23) / 24, lastDay = toHour / 24
        if firstDay < lastDay, !accountKeys.isEmpty {
            var fromHours: [Cell: UsageAggregate] = [:]
            for (cell, agg) in rollup where cell.hour >= firstDay * 24 && cell.hour < lastDay * 24 {
                var d = fromHours[Cell(key: cell.key, hour: cell.hour / 24)] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
                d.sum = try d.sum.checkedAdding(agg.sum, "a day's sum of hourly rollups")
                d.count += agg.count
                fromHours[Cell(key: cell.key, hour: cell.hour / 24)] = d
            }
            var stored: [Cell: UsageAggregate] = [:]
            let rows = try Row.fetchCursor(db, sql: """
                SELECT key_id, day, sum, count FROM rollup_day
                WHERE key_id IN (\(accountKeys.sorted().map(String.init).joined(separator: ","))) AND day >= ? AND day < ?
                """, arguments: [firstDay, lastDay])
            while let r = try rows.next() { stored[Cell(key: r[0], hour: r[1])] = UsageAggregate(sum: r[2], count: r[3], min: 0, max: 0) }
            for cell in Set(stored.keys).union(fromHours.keys) {
                let a = fromHours[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
                let b = stored[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
                guard a.sum != b.sum || a.count != b.count else { continue }
                dayDrift = try dayDrift.checkedAdding(try Self.distance(a.sum, b.sum), "the drift")
                if let key = dir.byID[cell.key], dayMismatches.count < 100 {
                    dayMismatches.append(.init(meterID: key.meter, modelID: key.modelID, kind: EventKind(rawValue: key.kind) ?? .usage,
                                               dimensions: key.dimensions, hour: .ofHour(cell.hour * 24), rollupSum: b.sum, rawSum: a.sum,
                                               rollupCount: b.count, rawCount: a.count))
                }
            }
        }

        var rawSum: Int64 = 0, rollupSum: Int64 = 0, drift: Int64 = dayDrift
        var mismatches: [VerifyReport.Mismatch] = dayMismatches
        var days: [Int64: (rollup: Int64, raw: Int64, drift: Int64)] = [:]
        let cells = Set(raw.keys).union(rollup.keys).sorted { ($0.hour, $0.key) < ($1.hour, $1.key) }
        for cell in cells {
            let r = raw[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
            let u = rollup[cell] ?? UsageAggregate(sum: 0, count: 0, min: 0, max: 0)
            rawSum = try rawSum.checkedAdding(r.sum, "the raw sum")
            rollupSum = try rollupSum.checkedAdding(u.sum, "the rollup sum")
            let diff = try Self.distance(r.sum, u.sum)
            drift = try drift.checkedAdding(diff, "the drift")
            let day = Timestamp.ofHour(cell.hour).day
            var dd = days[day] ?? (0, 0, 0)
            dd.rollup = try dd.rollup.checkedAdding(u.sum, "a day's rollup sum")
            dd.raw = try dd.raw.checkedAdding(r.sum, "a day's raw sum")
            dd.drift = try dd.drift.checkedAdding(diff, "a day's drift")
            days[day] = dd
            if (r.sum != u.sum || r.count != u.count), mismatches.count < 100, let key = dir.byID[cell.key] {
                mismatches.append(.init(meterID: key.meter, modelID: key.modelID, kind: EventKind(rawValue: key.kind) ?? .usage,
                                        dimensions: key.dimensions, hour: .ofHour(cell.hour), rollupSum: u.sum, rawSum: r.sum,
                                        rollupCount: u.count, rawCount: r.count))
            }
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
        var report = VerifyReport(
            ok: drift == 0 && corrupt.isEmpty && !countMismatch && dayMismatches.isEmpty, mode: req.mode, rollupSum: rollupSum, rawSum: rawSum, drift: drift,
            segmentsChecked: segments.count, segmentsCorrupt: corrupt.count, mismatches: mismatches, days: dayList)
        report.corruptSegments = corrupt
        return (report, verifiedOK)
    }

    /// |a − b|, checked: a difference past 64 bits is reported, never wrapped into a small drift.
    static func distance(_ a: Int64, _ b: Int64) throws -> Int64 {
        let (d, overflow) = a.subtractingReportingOverflow(b)
        guard !overflow, d != .min else { throw UsageBoxError.invalidArgument("a drift overflows a 64-bit integer; read a shorter range") }
        return Swift.abs(d)
    }
}
