import ExactJSON
import GRDB
import Metering

extension SQLiteMeterStore {
    /// Sets a meter's unit and kept rollup dimensions. When the kept dimensions change on a meter
    /// that already has events, its rollups and the recorded statistics of the segments holding its
    /// events are rebuilt from the raw events in the same transaction (after checking each sealed
    /// segment's hash, so a tampered segment is never laundered into fresh statistics).
    public func setMeter(_ meterID: String, unit: String?, rollupDimensions: [String]?) async throws -> MeterInfo {
        guard EventDecoder.isValidIdentifier(meterID) else {
            throw UsageBoxError.invalidArgument("meter_id must be \(EventDecoder.identifierRule)", field: "meter_id")
        }
        let unit = unit.map(EventDecoder.nfc), change = try KeptDimensionsChange(rollupDimensions)
        if let problem = unit.flatMap(EventDecoder.unitProblem) { throw UsageBoxError.invalidArgument(problem, field: "unit") }
        do {
            return try await setMeter(meterID, unit: unit, change: change)
        } catch let e as SegmentNoLongerMatches {
            // Found, so recorded (the change itself rolled back): incremental verify trusted the
            // segment's recorded statistics until a deep verify re-hashed it (tester O).
            try await record(RehashOutcome(corrupt: [(e.id, "its events no longer hash to the sealed SHA-256 (found changing a meter's rollups)")]))
            throw UsageBoxError(.conflict, "segment \(Self.segmentName(e.id)) no longer matches its hash; run verify before changing rollups")
        }
    }

    /// A sealed segment of the meter's events re-hashed to something else while its rollups were rebuilt.
    struct SegmentNoLongerMatches: Error {
        var id: Int64
    }

    private func setMeter(_ meterID: String, unit: String?, change: KeptDimensionsChange) async throws -> MeterInfo {
        try await write { db, ctx in
            let now = self.clock().microseconds
            let existing = try ctx.meter(db, meterID)
            if let existing, let old = existing.unit, let unit, old != unit,
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM event WHERE meter_id = ? AND unit IS NOT NULL)", arguments: [meterID]) ?? false
            {
                throw UsageBoxError(.conflict, "meter \(meterID) already counts '\(old)' in stored events; its unit cannot change", field: "unit")
            }
            let newKeep = change.applied(to: existing?.rollupDimensions)
            let dimsText = newKeep.map { JSONWriter.write(.array($0.sorted().map(JSONValue.string))) }
            if existing == nil {
                try db.execute(
                    sql: "INSERT INTO meter (meter_id, unit, rollup_dimensions, created_at) VALUES (?, ?, ?, ?)",
                    arguments: [meterID, unit, dimsText, now])
            } else {
                if let unit { try db.execute(sql: "UPDATE meter SET unit = ? WHERE meter_id = ?", arguments: [unit, meterID]) }
                if change != .unchanged {
                    try db.execute(sql: "UPDATE meter SET rollup_dimensions = ? WHERE meter_id = ?", arguments: [dimsText, meterID])
                }
            }
            if change != .unchanged, existing?.rollupDimensions != newKeep {
                ctx.meters[meterID] = MeterConfig(unit: unit ?? existing?.unit, rollupDimensions: newKeep)
                do {
                    try self.rebuildRollups(db, meterID: meterID, ctx: &ctx)
                } catch {
                    // Cells merged by the dimensions dropped can add up past 64 bits: the range
                    // the read's error names is not this command's to narrow.
                    let said = (error as? DatabaseError).map(Self.translate) ?? (error as? UsageBoxError)
                    guard said?.message == UsageBoxError.sumOverflow.message else { throw error }
                    throw UsageBoxError.invalidArgument(
                        "keeping only these dimensions merges rollup cells of meter \(meterID) whose sum passes a 64-bit integer; "
                            + "keep more of them (nothing was changed)", field: "rollup_dimensions")
                }
            }
            // What another process's commits are compared with (`DigestCache.observe`).
            self.digestCache.noteMeters(try KeyDirectory.meters(db))
            guard let row = try Row.fetchOne(db, sql: "SELECT unit, rollup_dimensions FROM meter WHERE meter_id = ?", arguments: [meterID]) else {
                throw UsageBoxError(.internal, "meter \(meterID) was neither stored nor found")
            }
            return MeterInfo(meterID: meterID, unit: row["unit"], rollupDimensions: Self.decodeNameList(row["rollup_dimensions"]).map { $0.sorted() })
        }
    }

    private func rebuildRollups(_ db: Database, meterID: String, ctx: inout WriteContext) throws {
        let oldKeys = try Int64.fetchAll(db, sql: "SELECT id FROM rollup_key WHERE meter_id = ?", arguments: [meterID])
        guard !oldKeys.isEmpty else { return }
        try db.execute(sql: "DELETE FROM rollup_hour WHERE key_id IN (\(oldKeys.map(String.init).joined(separator: ",")))")
        try db.execute(sql: "DELETE FROM rollup_day WHERE key_id IN (\(oldKeys.map(String.init).joined(separator: ",")))")
        // The segments holding the meter's events: sealed ones get their statistics again under the
        // new keys; an open one's running digest files them under the old key ids, so it is
        // forgotten and sealing re-reads the segment's events.
        let segments = try Row.fetchAll(
            db,
            sql: """
                SELECT id, sealed_at IS NOT NULL, sha256, prev_sha256 FROM segment
                WHERE id IN (SELECT DISTINCT segment_id FROM event WHERE meter_id = ?)
                """, arguments: [meterID])
        for r in segments {
            let id: Int64 = r[0]
            guard r[1] as Bool else {
                digestCache.forget(id)
                ctx.digests.removeValue(forKey: id)
                ctx.unknownDigests.insert(id)
                continue
            }
            let d = try digest(db, segmentID: id, previous: r[3]) { try ctx.keyID(db, ctx.rollupKey(db, $0)) }
            guard d.finalize() == r[2] else { throw SegmentNoLongerMatches(id: id) }
            try db.execute(sql: "DELETE FROM segment_stat WHERE segment_id = ?", arguments: [id])
            try Self.insertSegmentStats(db, segmentID: id, d.stats)
        }
        var cells: [Cell: UsageAggregate] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT \(Self.eventColumns) FROM event WHERE meter_id = ?", arguments: [meterID])
        while let row = try rows.next() {
            let e = Self.event(from: row)
            let cell = Cell(key: try ctx.keyID(db, ctx.rollupKey(db, e)), hour: e.timestamp.hour)
            var agg = cells[cell] ?? UsageAggregate()
            try agg.add(UsageAggregate(sum: e.quantity, count: 1, min: e.quantity, max: e.quantity))
            cells[cell] = agg
        }
        try Self.addToRollups(db, cells)
    }
}
