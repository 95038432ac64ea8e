import GRDB
import Metering

extension SQLiteMeterStore {
    /// Works out, on a reader, the running digest of each open segment this process has none for
    /// (a previous process left it open: a crash or a restart), and hands it to the writer in a
    /// short transaction that adds only the events stored since. Without it the write that seals a
    /// full segment re-reads all of its events inside the writer's transaction (1.7–2.0 s for
    /// 100,000 events), and every account's writes wait. A digest that does not match what is
    /// stored (the segment's kept multiset hash and counts) is not installed: sealing then re-reads
    /// the segment and records what is wrong with it, as it always has.
    public func prepareOpenSegments() async throws -> Int {
        try await wrap {
            let open = try await writer.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, account_id FROM segment
                        WHERE sealed_at IS NULL AND seq_base IS NOT NULL AND event_count > 0 AND running_hash IS NOT NULL ORDER BY id
                        """
                ).map { ($0[0] as Int64, $0[1] as String) }
            }
            var prepared = 0
            for (id, account) in open where !digestCache.has(id) {
                digestCache.setPreparing(id, true)
                defer { digestCache.setPreparing(id, false) }
                if try await prepareDigest(segment: id, account: account) { prepared += 1 }
            }
            return prepared
        }
    }

    private func prepareDigest(segment id: Int64, account: String) async throws -> Bool {
        guard let (d, epoch) = try await snapshotDigest(segment: id, account: account) else { return false }
        return try await installDigest(d, account: account, epoch: epoch)
    }

    /// The segment's digest as a reader sees it now, if it matches what the writer kept.
    func snapshotDigest(segment id: Int64, account: String) async throws -> (SegmentDigest, epoch: Int)? {
        let epoch = digestCache.epoch
        let snapshot = try await writer.read { db -> SegmentDigest? in
            let previous = try self.previousSealedHash(db, account: account, before: id)
            var keys = try KeyDirectory(db)
            var unknownKey = false
            var d = try self.digest(db, segmentID: id, previous: previous) {
                let key = try keys.id(for: $0, db)
                if key < 0 { unknownKey = true }
                return key
            }
            d.segmentID = id
            return try unknownKey || !Self.matchesStored(db, d) ? nil : d
        }
        return snapshot.map { ($0, epoch) }
    }

    /// Hands a snapshot's digest to the writer, with the events stored since added.
    func installDigest(_ snapshot: SegmentDigest, account: String, epoch: Int) async throws -> Bool {
        let id = snapshot.segmentID
        return try await write { db, ctx in
            // Anything that made digests stale since the snapshot (a rollup rebuild, another
            // process's commit) leaves this one out too.
            guard self.digestCache.epoch == epoch, !self.digestCache.has(id), ctx.digests[id] == nil,
                try self.previousSealedHash(db, account: account, before: id) == snapshot.previous,
                let base = try Int64.fetchOne(db, sql: "SELECT seq_base FROM segment WHERE id = ? AND sealed_at IS NULL", arguments: [id])
            else { return false }
            var d = snapshot
            let since = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT \(Self.eventColumns), post_close FROM event WHERE seq >= ? AND seq < ? AND segment_id = ? ORDER BY seq
                        """), arguments: [base + d.count, base + Self.legacySeqLimit, id])
            while let row = try since.next() {
                let e = Self.event(from: row)
                d.add(e, key: try ctx.keyID(db, ctx.rollupKey(db, e)), postClose: row[10])
            }
            guard try Self.matchesStored(db, d) else { return false }
            ctx.digests[id] = d
            return true
        }
    }

    /// Whether a digest read from a segment's events agrees with the counts and multiset hash the
    /// writer kept with each batch.
    private static func matchesStored(_ db: Database, _ d: SegmentDigest) throws -> Bool {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT event_count, running_hash, post_close_count FROM segment WHERE id = ? AND sealed_at IS NULL",
                arguments: [d.segmentID])
        else { return false }
        return (row[0] as Int64?) == d.count && (row[1] as String?) == d.multiset.hex && (row[2] as Int64?) == d.postClose
    }
}
