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
            // Another process's meter change since this one's last write makes every running
            // digest stale; the writer learnt it only at its next write, which then re-read each
            // segment it sealed (tester K2). Learnt here, off any write.
            try await writer.writeWithoutTransaction { db in try self.observeOtherCommits(db) }
            let (all, candidates) = try await writer.read { db in
                (
                    Set(try Int64.fetchAll(db, sql: "SELECT id FROM segment WHERE sealed_at IS NULL")),
                    try Row.fetchAll(
                        db,
                        sql: """
                            SELECT id, account_id FROM segment
                            WHERE sealed_at IS NULL AND seq_base IS NOT NULL AND event_count > 0 AND running_hash IS NOT NULL
                              AND post_close_count IS NOT NULL
                            ORDER BY id
                            """
                    ).map { ($0[0] as Int64, $0[1] as String) }
                )
            }
            digestCache.retainOpen(all)
            let open = candidates.filter { !digestCache.has($0.0) && !digestCache.wasRefused($0.0) }
            // Every one at once: a full segment waiting its turn keeps taking events too, rather
            // than being re-read in the writer by its account's next batch.
            for (id, _) in open { digestCache.setPreparing(id, true) }
            defer { for (id, _) in open { digestCache.setPreparing(id, false) } }
            var prepared = 0
            for (id, account) in open {
                defer { digestCache.setPreparing(id, false) }
                do {
                    digestCache.countSnapshot()
                    guard let snapshot = try await snapshotDigest(segment: id, account: account) else {
                        digestCache.refuse(id)
                        continue
                    }
                    // Refused at the hand-over only when something moved since (a rollup change,
                    // a write): tried again on the next tick.
                    if try await installDigest(snapshot) { prepared += 1 }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    // That segment is sealed from a re-read, as before; the others are still prepared.
                    continue
                }
            }
            return prepared
        }
    }

    /// A segment's digest as a reader saw it, with what its statistics' keys were read under.
    struct DigestSnapshot {
        var digest: SegmentDigest
        var account: String
        var epoch: Int
        /// Every meter's unit and kept dimensions, which decide the rollup key of each event.
        var meters: [String: MeterConfig]
    }

    /// The segment's digest as a reader sees it now, if it matches what the writer kept.
    func snapshotDigest(segment id: Int64, account: String) async throws -> DigestSnapshot? {
        let epoch = digestCache.epoch
        return try await writer.read { db -> DigestSnapshot? in
            let previous = try self.previousSealedHash(db, account: account, before: id)
            var keys = try KeyDirectory(db)
            var unknownKey = false
            var d = try self.digest(db, segmentID: id, previous: previous) {
                let key = try keys.id(for: $0, db)
                if key < 0 { unknownKey = true }
                return key
            }
            d.segmentID = id
            guard !unknownKey, try Self.matchesStored(db, d) else { return nil }
            return DigestSnapshot(digest: d, account: account, epoch: epoch, meters: keys.meters)
        }
    }

    /// Hands a snapshot's digest to the writer, with the events stored since. Published from
    /// inside the writer's transaction (it writes nothing, so nothing can roll back under it):
    /// published after, a batch queued behind it found no digest, and the segment was sealed from
    /// a re-read after all; a rollup change queued behind it found nothing to forget (review 9).
    func installDigest(_ snapshot: DigestSnapshot) async throws -> Bool {
        let id = snapshot.digest.segmentID
        return try await write { db, ctx in
            // Anything that made digests stale since the snapshot leaves this one out: a rollup
            // change (in this process or another, committed or not when the snapshot was read)
            // files statistics under other keys, so the meters must read as they did.
            guard self.digestCache.epoch == snapshot.epoch, !self.digestCache.has(id), ctx.digests[id] == nil,
                try KeyDirectory.meters(db) == snapshot.meters,
                try self.previousSealedHash(db, account: snapshot.account, before: id) == snapshot.digest.previous,
                let base = try Int64.fetchOne(db, sql: "SELECT seq_base FROM segment WHERE id = ? AND sealed_at IS NULL", arguments: [id])
            else { return false }
            var d = snapshot.digest
            let since = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT \(Self.eventColumns), post_close FROM event WHERE seq >= ? AND seq < ? AND segment_id = ? ORDER BY seq
                        """), arguments: [base + d.count, base + Self.legacySeqLimit, id])
            var keys = try KeyDirectory(db)
            while let row = try since.next() {
                let e = Self.event(from: row)
                let key = try keys.id(for: e, db)
                guard key >= 0 else { return false }
                d.add(e, key: key, postClose: row[10])
            }
            guard try Self.matchesStored(db, d) else { return false }
            self.digestCache.put([id: d])
            self.digestCache.noteWritten([id])
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
