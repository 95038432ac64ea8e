import GRDB
import Metering
import SegmentChain

/// Hashing and statistics of a segment's events, read in ingest order.
///
/// The segment hash is `SHA-256( prev + "\n" + e₁ + e₂ + … )` where `prev` is the lowercase hex
/// hash of the account's previous sealed segment (empty for the first) and `eᵢ` is each event's
/// `UsageEvent.canonicalEncoding` (one JSON line each), in ingest order, a post-close event's
/// followed by `post_close\n` under hash rule 2.
struct SegmentDigest: @unchecked Sendable {
    // SHA256 from swift-crypto is a value type without a Sendable annotation; it is only ever copied.
    var segmentID: Int64 = 0
    /// Set once the segment sealed, so the cache drops it.
    var sealed = false
    var hasher: SegmentHash
    var count: Int64 = 0
    var sum: Int64 = 0
    var firstTs: Int64?
    var lastTs: Int64?
    var stats: [Cell: UsageAggregate] = [:]
    /// The same events as a multiset hash, to compare with the running hash kept while the segment was open.
    var multiset = MultisetHash()

    /// The chain link this digest started from.
    var previous: String?
    /// The segment's hash rule (`SegmentHash.currentRule` for new segments; 1 for those sealed
    /// before post-close events were marked, re-hashed as they were sealed).
    var rule = SegmentHash.currentRule
    /// Its post-close events.
    var postClose: Int64 = 0

    init(previous: String?) {
        self.previous = previous
        hasher = SegmentHash(previous: previous)
    }

    /// Reused between events, so hashing allocates nothing per event.
    private var buffer: [UInt8] = []

    mutating func add(_ e: UsageEvent, key: Int64, postClose: Bool) {
        buffer.removeAll(keepingCapacity: true)
        e.appendCanonical(to: &buffer)
        buffer.withUnsafeBytes {
            add(canonical: $0, hash: ContentHash(canonical: $0), quantity: e.quantity, microseconds: e.timestamp.microseconds, postClose: postClose)
        }
        // Re-hashing reads events one by one: their extrema too, which deep verify compares with the rollups'.
        stats[Cell(key: key, hour: e.timestamp.hour), default: UsageAggregate()].addEvent(e.quantity)
    }

    /// Adds an event given its canonical encoding and that encoding's hash (both worked out off the
    /// writer by `IngestBatch`). Its statistics come separately, a run of events at a time (`addStats`).
    mutating func add(canonical bytes: UnsafeRawBufferPointer, hash: ContentHash, quantity: Int64, microseconds ts: Int64, postClose: Bool) {
        hasher.add(canonical: bytes)
        if postClose { self.postClose += 1 }
        // The running multiset stays the events' alone, as every version keeps it (an older
        // usagebox writing the same segment must agree with it).
        if postClose, rule >= 2 { hasher.markPostClose() }
        multiset.add(hash)
        count += 1
        sum &+= quantity
        firstTs = min(firstTs ?? .max, ts)
        lastTs = max(lastTs ?? .min, ts)
    }

    /// Adds a run of events of one rollup cell to the statistics.
    mutating func addStats(_ cell: Cell, _ run: UsageAggregate) {
        stats[cell, default: UsageAggregate()].addCount(sum: run.sum, count: run.count)
    }

    func finalize() -> String { hasher.finalize() }
}

extension UsageAggregate {
    /// One event's quantity into a segment's per-cell sum and count (wrapping: the sealed totals are
    /// checked against the stored events, never trusted).
    fileprivate mutating func addEvent(_ quantity: Int64) {
        addCount(sum: quantity, count: 1)
        (min, max) = (Swift.min(min, quantity), Swift.max(max, quantity))
    }

    fileprivate mutating func addCount(sum more: Int64, count n: Int64) {
        sum &+= more
        count += n
    }
}

extension SQLiteMeterStore {
    /// The events of the segments `segmentFilter` selects (it names the segment `s`; `columns` name
    /// the event `e`), each segment read as its own seq range. The segment table is the time index
    /// (`v7.time-by-segment`): a filter on `s.first_ts`/`s.last_ts` keeps only the segments whose span
    /// overlaps a range, and the caller still filters each event's `ts`. The filter appears twice
    /// (segments with their own seq range, and those from before v5), so its arguments are given twice.
    static func eventsBySegment(_ columns: String, schema: String = "", where segmentFilter: String) -> String {
        let p = schema.isEmpty ? "" : schema + "."
        return """
            SELECT \(columns) FROM \(p)segment s CROSS JOIN \(p)event e ON e.seq >= s.seq_base AND e.seq < s.seq_base + \(legacySeqLimit)
            WHERE s.seq_base IS NOT NULL AND \(segmentFilter)
            UNION ALL
            SELECT \(columns) FROM \(p)segment s CROSS JOIN \(p)event e ON e.segment_id = s.id AND e.seq < \(legacySeqLimit)
            WHERE s.seq_base IS NULL AND \(segmentFilter)
            """
    }

    /// `eventsBySegment` for the segments of `scope` whose span overlaps [from, to), with its arguments.
    static func eventsBySegment(_ columns: String, scope: AccountScope, from: Int64, to: Int64) -> (String, StatementArguments) {
        let (clause, accountArgs) = accountClause(scope, column: "s.account_id")
        let args = accountArgs + [to, from]
        return (eventsBySegment(columns, where: "\(clause) AND s.first_ts < ? AND s.last_ts >= ?"), args + args)
    }

    /// Reads a segment's events in ingest order into a digest.
    /// Under the hash rule the segment was sealed with; an open one under the current rule, which
    /// its seal records.
    func digest(_ db: Database, segmentID: Int64, previous: String?, key: (UsageEvent) throws -> Int64) throws -> SegmentDigest {
        var d = SegmentDigest(previous: previous)
        let segment = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT seq_base, hash_rule, sealed_at FROM segment WHERE id = ?"), arguments: [segmentID])
        let base: Int64? = segment?[0]
        let sealed = (segment?[2] as Int64?) != nil
        d.rule = sealed ? segment?[1] ?? SegmentHash.currentRule : SegmentHash.currentRule
        // A segment's events are its seq range (segment_id is checked too, so an event moved to
        // another segment breaks the hash); older segments use the partial legacy index.
        let rows =
            try base.map {
                try Row.fetchCursor(
                    db.cachedStatement(
                        sql: """
                            SELECT \(Self.eventColumns), post_close FROM event WHERE seq >= ? AND seq < ? AND segment_id = ? ORDER BY seq
                            """), arguments: [$0, $0 + Self.legacySeqLimit, segmentID])
            }
            ?? Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT \(Self.eventColumns), post_close FROM event WHERE segment_id = ? AND seq < \(Self.legacySeqLimit) ORDER BY seq
                        """), arguments: [segmentID])
        while let row = try rows.next() {
            let e = Self.event(from: row)
            d.add(e, key: try key(e), postClose: row[10])
        }
        return d
    }

    func previousSealedHash(_ db: Database, account: String, before id: Int64) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT sha256 FROM segment WHERE account_id = ? AND id < ? AND sealed_at IS NOT NULL ORDER BY id DESC LIMIT 1
                    """), arguments: [account, id])
    }

    /// Seals a segment: hashes its events chained to the previous one and records its statistics.
    func seal(_ db: Database, segmentID: Int64, now: Int64, ctx: inout WriteContext) throws {
        guard
            let account = try String.fetchOne(
                db, sql: "SELECT account_id FROM segment WHERE id = ? AND sealed_at IS NULL",
                arguments: [segmentID])
        else { return }
        let stored = try Int64.fetchOne(db, sql: "SELECT event_count FROM segment WHERE id = ?", arguments: [segmentID]) ?? -1
        // A segment that took no events (a batch of duplicates only) stays open for the next: sealed,
        // it was a link of the chain that no verify reads (it spans no time) and stayed pending.
        if stored == 0, try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM event WHERE segment_id = ?)", arguments: [segmentID])! {
            return
        }
        let previous = try previousSealedHash(db, account: account, before: segmentID)
        var running = ctx.digests[segmentID]
        if running == nil, !ctx.unknownDigests.contains(segmentID) { running = digestCache.take(segmentID) }
        let d: SegmentDigest
        // A digest kept while this process inserted every one of the segment's events hashes what
        // the writer meant to store; a segment another process touched is re-read. Either way the
        // segment is not verified until its stored events are re-hashed independently (verify or
        // the scrub): the writer's own hash proves nothing about what is on disk now.
        var corrupt: String?
        if let running, running.count == stored, running.previous == previous {
            d = running
        } else {
            digestCache.countReread()
            d = try digest(db, segmentID: segmentID, previous: previous) { try ctx.keyID(db, ctx.rollupKey(db, $0)) }
            let kept = try Row.fetchOne(db, sql: "SELECT running_hash, post_close_count FROM segment WHERE id = ?", arguments: [segmentID])
            if let hash: String = kept?[0], hash != d.multiset.hex {
                corrupt = "its events changed while it was open: they no longer match the running hash kept with each batch"
            } else if let flagged: Int64 = kept?[1], d.postClose < flagged {
                corrupt = Self.clearedFlags(flagged, now: d.postClose)
            }
        }
        var done = d
        done.sealed = true
        ctx.digests[segmentID] = done
        try Self.insertSegmentStats(db, segmentID: segmentID, d.stats)
        try db.execute(
            sql: """
                UPDATE segment SET sealed_at = ?, sha256 = ?, prev_sha256 = ?, event_count = ?, sum = ?, first_ts = ?, last_ts = ?,
                    verified_at = NULL, corrupt_reason = COALESCE(corrupt_reason, ?), hash_rule = ?
                WHERE id = ?
                """, arguments: [now, d.finalize(), previous, d.count, d.sum, d.firstTs, d.lastTs, corrupt, d.rule, segmentID])
    }

    /// How many post-close events a segment holds, read through its seq range (older segments
    /// through the partial legacy index), never a scan of every event.
    static func postCloseCount(_ db: Database, segment: Int64, seqBase: Int64?) throws -> Int64 {
        if let seqBase {
            return try Int64.fetchOne(
                db, sql: "SELECT count(*) FROM event WHERE seq >= ? AND seq < ? AND segment_id = ? AND post_close = 1",
                arguments: [seqBase, seqBase + legacySeqLimit, segment]) ?? 0
        }
        return try Int64.fetchOne(
            db, sql: "SELECT count(*) FROM event WHERE segment_id = ? AND seq < \(legacySeqLimit) AND post_close = 1", arguments: [segment]) ?? 0
    }

    static func clearedFlags(_ then: Int64, now: Int64) -> String {
        "a post-close flag was cleared while it was open: it held \(then) post-close event(s) and holds \(now)"
    }

    /// Records a sealed segment's per-key statistics (its sum and count per rollup key and hour).
    static func insertSegmentStats(_ db: Database, segmentID: Int64, _ stats: [Cell: UsageAggregate]) throws {
        let insert = try db.cachedStatement(sql: "INSERT INTO segment_stat (segment_id, key_id, hour, sum, count) VALUES (?, ?, ?, ?, ?)")
        for (cell, agg) in stats {
            try StatementBinder.run(insert, db, segmentID, cell.key, cell.hour, agg.sum, agg.count)
        }
    }

    public func sealOpenSegments() async throws {
        try await write { db, ctx in
            let now = self.clock().microseconds
            for id in try Int64.fetchAll(db, sql: "SELECT id FROM segment WHERE sealed_at IS NULL ORDER BY id") {
                try self.seal(db, segmentID: id, now: now, ctx: &ctx)
            }
        }
    }

    /// Seals the open segments this process wrote: a CLI command beside a running server sealed
    /// every account's, re-reading each inside the writer while the server's writes waited (one
    /// event's ingest: 5.66 s; tester K2).
    public func sealSegmentsWrittenHere() async throws {
        try await write { db, ctx in
            let now = self.clock().microseconds
            for id in try Int64.fetchAll(db, sql: "SELECT id FROM segment WHERE sealed_at IS NULL ORDER BY id") where self.digestCache.wasWritten(id) {
                try self.seal(db, segmentID: id, now: now, ctx: &ctx)
            }
        }
    }

    /// Seals open segments that are older than the age limit (the server calls this periodically).
    public func sealExpiredSegments() async throws {
        try await write { db, ctx in
            let now = self.clock().microseconds
            for id in try Int64.fetchAll(
                db, sql: "SELECT id FROM segment WHERE sealed_at IS NULL AND opened_at <= ? ORDER BY id",
                arguments: [now - self.segmentMaxAge])
            {
                try self.seal(db, segmentID: id, now: now, ctx: &ctx)
            }
        }
    }
}
