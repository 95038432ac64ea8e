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
            throw UsageBoxError.invalidArgument("meter_id must be 1–200 characters of [A-Za-z0-9_.:-]", field: "meter_id")
        }
        if let unit, unit.isEmpty || unit.utf8.count > 64 {
            throw UsageBoxError.invalidArgument("unit must be 1–64 characters", field: "unit")
        }
        if let dims = rollupDimensions, dims.contains(where: { $0.isEmpty || $0.utf8.count > EventDecoder.maxDimensionKeyLength }) {
            throw UsageBoxError.invalidArgument("rollup dimension names must be 1–64 characters", field: "rollup_dimensions")
        }
        return try await write { db, ctx in
            let now = self.clock().microseconds
            let existing = try ctx.meter(db, meterID)
            if let existing, let old = existing.unit, let unit, old != unit,
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM event WHERE meter_id = ? AND unit IS NOT NULL)", arguments: [meterID]) ?? false
            {
                throw UsageBoxError(.conflict, "meter \(meterID) already counts '\(old)' in stored events; its unit cannot change", field: "unit")
            }
            let dimsText = rollupDimensions.map { JSONWriter.write(.array(Array(Set($0)).sorted().map(JSONValue.string))) }
            if existing == nil {
                try db.execute(
                    sql: "INSERT INTO meter (meter_id, unit, rollup_dimensions, created_at) VALUES (?, ?, ?, ?)",
                    arguments: [meterID, unit, dimsText, now])
            } else {
                if let unit { try db.execute(sql: "UPDATE meter SET unit = ? WHERE meter_id = ?", arguments: [unit, meterID]) }
                if rollupDimensions != nil {
                    try db.execute(sql: "UPDATE meter SET rollup_dimensions = ? WHERE meter_id = ?", arguments: [dimsText, meterID])
                }
            }
            let newKeep = rollupDimensions.map(Set.init)
            if rollupDimensions != nil, existing?.rollupDimensions != newKeep {
                ctx.meters[meterID] = MeterConfig(unit: unit ?? existing?.unit, rollupDimensions: newKeep)
                try self.rebuildRollups(db, meterID: meterID, ctx: &ctx)
            }
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
        let sealed = try Row.fetchAll(
            db,
            sql: """
                SELECT id, sha256, prev_sha256 FROM segment WHERE sealed_at IS NOT NULL
                AND id IN (SELECT DISTINCT segment_id FROM event WHERE meter_id = ?)
                """, arguments: [meterID])
        for r in sealed {
            let id: Int64 = r[0]
            let d = try digest(db, segmentID: id, previous: r[2]) { try ctx.keyID(db, ctx.rollupKey(db, $0)) }
            guard d.finalize() == r[1] else {
                throw UsageBoxError(.conflict, "segment \(Self.segmentName(id)) no longer matches its hash; run verify before changing rollups")
            }
            try db.execute(sql: "DELETE FROM segment_stat WHERE segment_id = ?", arguments: [id])
            for (cell, agg) in d.stats {
                try db.execute(
                    sql: "INSERT INTO segment_stat (segment_id, key_id, hour, sum, count) VALUES (?, ?, ?, ?, ?)",
                    arguments: [id, cell.key, cell.hour, agg.sum, agg.count])
            }
        }
        // An open segment's running digest files its statistics under the old key ids: forget it,
        // so sealing re-reads the segment's events under the new ones.
        for id in try Int64.fetchAll(
            db,
            sql: """
                SELECT id FROM segment WHERE sealed_at IS NULL AND id IN (SELECT DISTINCT segment_id FROM event WHERE meter_id = ?)
                """, arguments: [meterID])
        {
            _ = digestCache.take(id)
            ctx.digests.removeValue(forKey: id)
            ctx.unknownDigests.insert(id)
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
        var days: [Cell: UsageAggregate] = [:]
        for (cell, agg) in cells {
            try db.execute(
                sql: "INSERT INTO rollup_hour (key_id, hour, sum, count, min, max) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [cell.key, cell.hour, agg.sum, agg.count, agg.min, agg.max])
            var d = days[Cell(key: cell.key, hour: cell.hour / 24)] ?? UsageAggregate()
            try d.add(agg)
            days[Cell(key: cell.key, hour: cell.hour / 24)] = d
        }
        try Self.upsertDays(db, days)
    }
}
