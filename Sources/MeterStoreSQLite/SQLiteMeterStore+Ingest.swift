import ExactJSON
import GRDB
import Metering
import SegmentChain

/// A meter's settings as read inside one transaction.
struct MeterConfig: Sendable, Equatable {
    var unit: String?
    /// nil keeps every dimension.
    var rollupDimensions: Set<String>?

    func projected(_ dims: [UsageEvent.Dimension]) -> [UsageEvent.Dimension] {
        guard let keep = rollupDimensions else { return dims }
        return dims.filter { keep.contains($0.key) }
    }

    func keeps(_ dimension: String) -> Bool { rollupDimensions?.contains(dimension) ?? true }
}

/// Per-transaction state: caches that are only published once the transaction commits.
struct WriteContext {
    let store: SQLiteMeterStore
    var meters: [String: MeterConfig] = [:]
    var newKeys: [RollupKey: Int64] = [:]
    /// Running digests of open segments touched in this transaction (published on commit).
    var digests: [Int64: SegmentDigest] = [:]
    /// Segments whose running digest is unknown here (another process wrote them): sealing re-reads them.
    var unknownDigests: Set<Int64> = []

    init(store: SQLiteMeterStore) { self.store = store }

    mutating func startDigest(segment: Int64, previous: String?) {
        var d = SegmentDigest(previous: previous)
        d.segmentID = segment
        digests[segment] = d
    }

    /// Takes a segment's running digest out for a batch, when this process has hashed exactly the
    /// segment's `count` stored events; otherwise sealing will re-read the segment.
    mutating func takeDigest(segment: Int64, count: Int64) -> SegmentDigest? {
        var d = digests.removeValue(forKey: segment)
        if d == nil, !unknownDigests.contains(segment) { d = store.digestCache.take(segment) }
        guard let d, d.count == count else {
            unknownDigests.insert(segment)
            return nil
        }
        return d
    }

    /// Hands a digest taken with `takeDigest` back (published when the transaction commits).
    mutating func putDigest(_ d: SegmentDigest?) {
        if let d { digests[d.segmentID] = d }
    }

    mutating func meter(_ db: Database, _ id: String) throws -> MeterConfig? {
        if let m = meters[id] { return m }
        guard let row = try Row.fetchOne(db, sql: "SELECT unit, rollup_dimensions FROM meter WHERE meter_id = ?", arguments: [id]) else {
            return nil
        }
        let m = MeterConfig(unit: row[0], rollupDimensions: SQLiteMeterStore.decodeNameList(row[1]))
        meters[id] = m
        return m
    }

    mutating func keyID(_ db: Database, _ key: RollupKey) throws -> Int64 {
        if let id = newKeys[key] ?? store.keyCache.get(key) { return id }
        let args: StatementArguments = [key.account, key.meter, key.model, key.kind, key.unit, key.dimensions]
        try db.cachedStatement(
            sql: """
                INSERT INTO rollup_key (account_id, meter_id, model_id, kind, unit, dimensions) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT DO NOTHING
                """
        ).execute(arguments: args)
        guard
            let id = try Int64.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT id FROM rollup_key WHERE account_id = ? AND meter_id = ? AND model_id = ? AND kind = ? AND unit = ? AND dimensions = ?
                        """), arguments: args)
        else { throw UsageBoxError(.internal, "rollup key \(key) was neither inserted nor found") }
        newKeys[key] = id
        return id
    }

    /// The rollup key a batch group counts under, with the meter's kept dimensions.
    mutating func rollupKey(_ db: Database, _ g: IngestBatch.Group) throws -> RollupKey {
        let config = try meter(db, g.meter) ?? MeterConfig(unit: nil, rollupDimensions: nil)
        let dimensions = config.rollupDimensions == nil ? g.dimensionsText : UsageEvent.canonicalDimensions(config.projected(g.dimensions))
        return RollupKey(
            account: g.account, meter: g.meter, model: g.model ?? "", kind: g.kind.rawValue, unit: g.unit ?? "",
            dimensions: dimensions)
    }

    /// The rollup key an event counts under, with the meter's kept dimensions.
    mutating func rollupKey(_ db: Database, _ e: UsageEvent) throws -> RollupKey {
        let config = try meter(db, e.meterID) ?? MeterConfig(unit: nil, rollupDimensions: nil)
        return RollupKey(
            account: e.accountID, meter: e.meterID, model: e.modelID ?? "", kind: e.kind.rawValue, unit: e.unit ?? "",
            dimensions: UsageEvent.canonicalDimensions(config.projected(e.dimensions)))
    }
}

/// One rollup cell: a key in one hour.
struct Cell: Hashable {
    var key: Int64
    var hour: Int64

    static func == (a: Cell, b: Cell) -> Bool { a.key == b.key && a.hour == b.hour }

    // One word into the hasher instead of two: ingest and verify look up thousands of cells per
    // call, and the key and hour fold into one 64-bit value without collisions for any real store
    // (hours below 2^24, about 1,900 years; keys below 2^40).
    func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(bitPattern: key) << 24 ^ UInt64(bitPattern: hour))
    }
}

/// An account's open segment while a batch is written.
struct OpenSegment {
    var id: Int64
    /// nil for a segment opened before `v5.segment-clustered-events` (it is sealed before more are added).
    var seqBase: Int64?
    var openedAt: Int64
    var count: Int64
    var sum: Int64
    var firstTs: Int64?
    var lastTs: Int64?
    var dirty = false
    /// The multiset hash of its events, kept with each committed batch.
    var running = MultisetHash()
    /// How many of them are post-close, kept likewise.
    var postClose: Int64 = 0

    mutating func add(quantity: Int64, microseconds ts: Int64) throws {
        count += 1
        let (total, overflow) = sum.addingReportingOverflow(quantity)
        guard !overflow else { throw SumOverflow() }
        sum = total
        firstTs = min(firstTs ?? .max, ts)
        lastTs = max(lastTs ?? .min, ts)
        dirty = true
    }
}

/// An account's state while one batch is written: read once, then changed in place by each event.
final class AccountWrite {
    let closedMonths: Set<String>
    /// The account's open segment, once an event needs it.
    var segment: OpenSegment?
    /// The open segment's running digest, moved out of the context for the batch; nil when unknown.
    var digest: SegmentDigest?

    init(closedMonths: Set<String>) { self.closedMonths = closedMonths }

    /// Where the next accepted event goes: its segment and its sequence number (the segment's base
    /// plus its count, so a segment's events are one rowid range).
    func nextPlace() throws -> (segmentID: Int64, seq: Int64) {
        guard let segment, let base = segment.seqBase else { throw UsageBoxError(.internal, "no writable segment for the next event") }
        return (segment.id, base + segment.count)
    }
}

/// A rollup group's running total for the hour its latest events fell in: events mostly arrive
/// in time order, so most of them add to this instead of a dictionary.
struct HourRun {
    var hour: Int64 = .min
    var aggregate = UsageAggregate()
}

/// A rollup cell or segment total would pass 64 bits: the batch is written again with each event
/// checked, so only the events that overflow are rejected.
struct SumOverflow: Error {}

extension SQLiteMeterStore {
    /// Gives the account an open segment that can take another event: opens it on the batch's first
    /// event for the account, and seals it first when it is full, old, or from before v5, after
    /// `beforeSealing` (which hands the segment the statistics the batch still holds for it).
    func prepareSegment(
        _ db: Database, for account: AccountWrite, accountID: String, now: Int64, ctx: inout WriteContext, beforeSealing: () throws -> Void
    ) throws {
        if account.segment == nil {
            let opened = try openSegment(db, account: accountID, now: now, ctx: &ctx)
            account.segment = opened
            account.digest = ctx.takeDigest(segment: opened.id, count: opened.count)
        }
        guard var current = account.segment,
            current.count >= segmentMaxEvents || now - current.openedAt >= segmentMaxAge || current.seqBase == nil
        else { return }
        // A full (or old) segment whose digest this process lost (it restarted) keeps taking events
        // while `prepareOpenSegments` hashes it on a reader, up to twice its size, however old (a
        // server down for hours finds every open segment past its age): sealed now, it would be
        // re-read inside this transaction, and every account's writes would wait.
        if account.digest == nil, current.seqBase != nil, digestCache.isPreparing(current.id),
            current.count < min(2 * segmentMaxEvents, Self.legacySeqLimit)
        {
            return
        }
        if current.count == 0, current.seqBase != nil {
            // Empty (a batch of duplicates opened it): not sealed, so it takes these events,
            // reopened now. Sealing skipped it and a second open segment broke the one-open index.
            try db.execute(sql: "UPDATE segment SET opened_at = ? WHERE id = ?", arguments: [now, current.id])
            current.openedAt = now
            account.segment = current
            return
        }
        try beforeSealing()
        try flush(db, &current)
        ctx.putDigest(account.digest)
        try seal(db, segmentID: current.id, now: now, ctx: &ctx)
        let next = try createSegment(db, account: accountID, now: now, ctx: &ctx)
        account.segment = next
        account.digest = ctx.takeDigest(segment: next.id, count: next.count)
    }

    func ingest(_ db: Database, _ batch: IngestBatch, _ ctx: inout WriteContext, careful: Bool) throws -> IngestResponse {
        let now = clock().microseconds
        var response = IngestResponse()
        var accounts = [AccountWrite?](repeating: nil, count: batch.accounts.count)
        /// The account's state, read on its first event of the batch.
        func account(_ slot: Int, _ accountID: String) throws -> AccountWrite {
            if let known = accounts[slot] { return known }
            let closed = try String.fetchAll(db, sql: "SELECT period FROM period WHERE account_id = ?", arguments: [accountID])
            let fresh = AccountWrite(closedMonths: Set(closed))
            accounts[slot] = fresh
            return fresh
        }
        var groupKeys = [Int64](repeating: 0, count: batch.groups.count)  // 0: not resolved yet
        var runs = [HourRun](repeating: HourRun(), count: batch.groups.count)
        var groupAccount = [Int](repeating: -1, count: batch.groups.count)  // account slot of a group's events
        var cells: [Cell: UsageAggregate] = [:]

        let arena = BindArena()
        let insert = try db.cachedStatement(
            sql: """
                INSERT INTO event (seq, account_id, event_id, meter_id, model_id, kind, correction_ref, quantity, unit, ts,
                                   dimensions, segment_id, post_close, ingested_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (account_id, event_id) DO NOTHING
                """)
        defer { StatementBinder.clearBindings(insert) }

        func problem(
            _ i: Int, _ id: String?, _ status: IngestResponse.Problem.Status, _ code: String, _ message: String,
            _ field: String? = nil
        ) {
            if status == .rejected { response.rejected += 1 } else { response.conflicts += 1 }
            response.errors.append(.init(index: i, eventID: id, status: status, code: code, message: message, field: field))
        }

        /// Decides duplicate vs conflict against the stored event; false when no event has that id.
        func resolveExisting(_ i: Int, _ e: UsageEvent, _ p: IngestBatch.Prepared) throws -> Bool {
            guard let stored = try fetchEvent(db, account: e.accountID, eventID: e.eventID) else { return false }
            if stored.canonicalEncoding.utf8.elementsEqual(batch.canonical[p.canonical]) {
                response.duplicates += 1
            } else {
                problem(
                    i, e.eventID, .conflict, "conflict",
                    "event \(e.eventID) of \(e.accountID) was already stored with different content; the original stays")
            }
            return true
        }

        /// Adds a group's finished hour to the batch's cells and to its account's open segment's
        /// statistics (a run never spans two segments: an account's runs are closed before it seals).
        func close(_ g: Int) throws {
            guard runs[g].aggregate.count > 0 else { return }
            let cell = Cell(key: groupKeys[g], hour: runs[g].hour)
            try overflowing { try cells[cell, default: UsageAggregate()].add(runs[g].aggregate) }
            accounts[groupAccount[g]]?.digest?.addStats(cell, runs[g].aggregate)
            runs[g] = HourRun()
        }

        /// Adds the cells gathered so far to the hourly and daily rollups.
        func writeCells() throws {
            try overflowing { try Self.addToRollups(db, cells) }
            cells.removeAll(keepingCapacity: true)
        }

        // Careful mode: each cell's total so far (stored plus this batch), read once per cell.
        var hourTotals: [Cell: Int64] = [:], dayTotals: [Cell: Int64] = [:]
        func total(_ cell: Cell, day: Bool) throws -> Int64 {
            if let t = day ? dayTotals[cell] : hourTotals[cell] { return t }
            let stored =
                try Int64.fetchOne(
                    db,
                    sql: day
                        ? "SELECT sum FROM rollup_day WHERE key_id = ? AND day = ?"
                        : "SELECT sum FROM rollup_hour WHERE key_id = ? AND hour = ?",
                    arguments: [cell.key, cell.hour]) ?? 0
            if day { dayTotals[cell] = stored } else { hourTotals[cell] = stored }
            return stored
        }

        try batch.canonical.withUnsafeBytes { canonical in
            for i in batch.items.indices {
                guard let p = batch.prepared[i], case let .event(e) = batch.items[i] else {
                    if case let .invalid(r) = batch.items[i] { problem(i, r.eventID, .rejected, r.code, r.message, r.field) }
                    continue
                }

                // Store-level checks: unit and closed period. A retried event reports duplicate first.
                var meter = try ctx.meter(db, e.meterID)
                if let unit = e.unit, let known = meter?.unit, known != unit {
                    if try resolveExisting(i, e, p) { continue }
                    problem(i, e.eventID, .rejected, "unit_mismatch", EventRejection.unitMismatch(meterID: e.meterID, unit: unit), "unit")
                    continue
                }
                let account = try account(p.account, e.accountID)
                let inClosedPeriod = !account.closedMonths.isEmpty && account.closedMonths.contains(e.timestamp.monthString)
                if inClosedPeriod, e.kind == .usage {
                    if try resolveExisting(i, e, p) { continue }
                    problem(
                        i, e.eventID, .rejected, "period_closed",
                        "period \(e.timestamp.monthString) of \(e.accountID) is closed; record a Correction instead", "timestamp")
                    continue
                }

                try prepareSegment(db, for: account, accountID: e.accountID, now: now, ctx: &ctx) {
                    for g in runs.indices where groupAccount[g] == p.account { try close(g) }
                }
                let (segmentID, seq) = try account.nextPlace()

                if careful {
                    if try resolveExisting(i, e, p) { continue }
                    if groupKeys[p.group] == 0 { groupKeys[p.group] = try ctx.keyID(db, ctx.rollupKey(db, batch.groups[p.group])) }
                    let hourCell = Cell(key: groupKeys[p.group], hour: e.timestamp.hour)
                    let dayCell = Cell(key: groupKeys[p.group], hour: e.timestamp.hour / 24)
                    let checks: [(String, Int64)] = [
                        ("its hour's rollup", try total(hourCell, day: false)),
                        ("its day's rollup", try total(dayCell, day: true)),
                        ("its segment's total", account.segment?.sum ?? 0),
                    ]
                    if let (what, _) = checks.first(where: { $0.1.addingReportingOverflow(e.quantity).overflow }) {
                        problem(
                            i, e.eventID, .rejected, "quantity_overflow",
                            "adding \(e.quantity) would push \(what) past a 64-bit integer; nothing was stored for this event", "quantity")
                        continue
                    }
                    hourTotals[hourCell, default: 0] += e.quantity
                    dayTotals[dayCell, default: 0] += e.quantity
                }

                var bind = StatementBinder(insert, arena: arena)
                bind.bind(seq)
                bind.bind(e.accountID)
                bind.bind(e.eventID)
                bind.bind(e.meterID)
                bind.bind(e.modelID)
                bind.bind(e.kind.rawValue)
                bind.bind(e.correctionRef)
                bind.bind(e.quantity)
                bind.bind(e.unit)
                bind.bind(e.timestamp.microseconds)
                bind.bind(batch.groups[p.group].dimensionsText)
                bind.bind(segmentID)
                bind.bind(inClosedPeriod)
                bind.bind(now)
                if try bind.run(db) == 0 {
                    if try !resolveExisting(i, e, p) {
                        throw UsageBoxError(.internal, "event \(e.eventID) was neither inserted nor found")
                    }
                    continue
                }

                // Accepted: bookkeeping for the meter, the segment, the rollups and the digest.
                if meter == nil {
                    try db.execute(sql: "INSERT INTO meter (meter_id, unit, created_at) VALUES (?, ?, ?)", arguments: [e.meterID, e.unit, now])
                    meter = MeterConfig(unit: e.unit, rollupDimensions: nil)
                    ctx.meters[e.meterID] = meter
                } else if meter?.unit == nil, let unit = e.unit {
                    try db.execute(sql: "UPDATE meter SET unit = ? WHERE meter_id = ?", arguments: [unit, e.meterID])
                    ctx.meters[e.meterID]?.unit = unit
                }
                response.accepted += 1
                if inClosedPeriod { response.postClose += 1 }
                let ts = e.timestamp.microseconds
                try account.segment?.add(quantity: e.quantity, microseconds: ts)

                if groupKeys[p.group] == 0 { groupKeys[p.group] = try ctx.keyID(db, ctx.rollupKey(db, batch.groups[p.group])) }
                let encoded = UnsafeRawBufferPointer(rebasing: canonical[p.canonical])
                account.digest?.add(canonical: encoded, hash: p.contentHash, quantity: e.quantity, microseconds: ts, postClose: inClosedPeriod)
                groupAccount[p.group] = p.account
                account.segment?.running.add(p.contentHash)
                if inClosedPeriod { account.segment?.postClose += 1 }
                let hour = e.timestamp.hour
                if runs[p.group].hour != hour { try close(p.group); runs[p.group].hour = hour }
                try overflowing { try runs[p.group].aggregate.add(UsageAggregate(sum: e.quantity, count: 1, min: e.quantity, max: e.quantity)) }
                // Careful mode checked this event against the stored totals, not against the batch's
                // own runs and cells, which can pass 64 bits where stored plus batch does not (a large
                // negative stored sum): each event goes to the rollups on its own.
                if careful {
                    try close(p.group)
                    try writeCells()
                }
            }
        }

        for g in runs.indices { try close(g) }
        for a in accounts.indices {
            guard var seg = accounts[a]?.segment else { continue }
            try flush(db, &seg)
            ctx.putDigest(accounts[a]?.digest)
        }
        try writeCells()
        // Dimension names seen on accepted events, per account.
        let dimInsert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO account_dimension (account_id, name) VALUES (?, ?)")
        var named = Set<String>()
        for (g, group) in batch.groups.enumerated() where groupKeys[g] != 0 {
            for d in group.dimensions where named.insert(group.account + "\u{0}" + d.key).inserted {
                try dimInsert.execute(arguments: [group.account, d.key])
            }
        }
        return response
    }

    /// Runs a step whose sums may pass 64 bits (a batch total, SQLite's CHECK that a rollup sum stays
    /// an integer), turning that into `SumOverflow` so the batch is retried event by event.
    func overflowing(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as UsageBoxError where e.message.contains("overflows") {
            throw SumOverflow()
        } catch let e as DatabaseError where (e.message ?? "").contains("CHECK constraint failed") || (e.message ?? "").contains("integer overflow") {
            throw SumOverflow()
        }
    }

    /// Adds hourly aggregates to the hourly rollups and, summed by day, to the daily ones.
    static func addToRollups(_ db: Database, _ cells: [Cell: UsageAggregate]) throws {
        var days: [Cell: UsageAggregate] = [:]
        for (cell, agg) in cells {
            let day = Cell(key: cell.key, hour: cell.hour / 24)  // hours are never negative: events before 1970 are refused
            try days[day, default: UsageAggregate()].add(agg)
        }
        try upsert(db, "rollup_hour", bucket: "hour", cells)
        try upsert(db, "rollup_day", bucket: "day", days)
    }

    /// Adds aggregates to a rollup table's rows (`Cell.hour` holds the table's bucket: hour or day).
    private static func upsert(_ db: Database, _ table: String, bucket: String, _ cells: [Cell: UsageAggregate]) throws {
        let upsert = try db.cachedStatement(
            sql: """
                INSERT INTO \(table) (key_id, \(bucket), sum, count, min, max) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (key_id, \(bucket)) DO UPDATE SET sum = sum + excluded.sum, count = count + excluded.count,
                    min = MIN(min, excluded.min), max = MAX(max, excluded.max)
                """)
        for (cell, agg) in cells { try StatementBinder.run(upsert, db, cell.key, cell.hour, agg.sum, agg.count, agg.min, agg.max) }
    }

    func openSegment(_ db: Database, account: String, now: Int64, ctx: inout WriteContext) throws -> OpenSegment {
        if let row = try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT id, opened_at, event_count, sum, first_ts, last_ts, seq_base, running_hash, post_close_count FROM segment
                    WHERE account_id = ? AND sealed_at IS NULL
                    """), arguments: [account])
        {
            var seg = OpenSegment(id: row[0], seqBase: row[6], openedAt: row[1], count: row[2], sum: row[3], firstTs: row[4], lastTs: row[5])
            // Not known (opened before it was kept): counted from what is stored now.
            seg.postClose = try row[8] ?? Self.postCloseCount(db, segment: seg.id, seqBase: seg.seqBase)
            if row[8] == nil { seg.dirty = true }
            if let kept: String = row[7], let hash = MultisetHash(hex: kept) {
                seg.running = hash
            } else if seg.count > 0 {
                // Opened before running hashes were kept: start from what is stored now.
                seg.running = try digest(db, segmentID: seg.id, previous: nil) { _ in 0 }.multiset
                seg.dirty = true
            }
            return seg
        }
        return try createSegment(db, account: account, now: now, ctx: &ctx)
    }

    func createSegment(_ db: Database, account: String, now: Int64, ctx: inout WriteContext) throws -> OpenSegment {
        try db.execute(sql: "INSERT INTO segment (account_id, opened_at, post_close_count) VALUES (?, ?, 0)", arguments: [account, now])
        let id = db.lastInsertedRowID
        let base = Self.seqBase(segment: id)
        try db.execute(sql: "UPDATE segment SET seq_base = ? WHERE id = ?", arguments: [base, id])
        // One open segment per account, so every earlier one is sealed: the chain link is known now.
        ctx.startDigest(segment: id, previous: try previousSealedHash(db, account: account, before: id))
        return OpenSegment(id: id, seqBase: base, openedAt: now, count: 0, sum: 0)
    }

    func flush(_ db: Database, _ seg: inout OpenSegment) throws {
        guard seg.dirty else { return }
        try db.cachedStatement(
            sql: "UPDATE segment SET event_count = ?, sum = ?, first_ts = ?, last_ts = ?, running_hash = ?, post_close_count = ? WHERE id = ?"
        )
        .execute(arguments: [seg.count, seg.sum, seg.firstTs, seg.lastTs, seg.running.hex, seg.postClose, seg.id])
        seg.dirty = false
    }

    func fetchEvent(_ db: Database, account: String, eventID: String) throws -> UsageEvent? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(Self.eventColumns) FROM event WHERE account_id = ? AND event_id = ?"),
            arguments: [account, eventID]
        ).map(Self.event(from:))
    }

    static let eventColumns = "event_id, account_id, meter_id, model_id, kind, correction_ref, quantity, unit, ts, dimensions"
    /// `eventColumns` of the event `e` in `eventsBySegment`.
    static let segmentEventColumns = eventColumns.split(separator: ", ").map { "e." + $0 }.joined(separator: ", ")

    /// Builds an event from a row selected with `eventColumns` (first ten columns).
    static func event(from row: Row) -> UsageEvent {
        UsageEvent(
            eventID: row[0], accountID: row[1], meterID: row[2], modelID: row[3],
            kind: EventKind(rawValue: row[4]) ?? .usage, correctionRef: row[5], quantity: row[6], unit: row[7],
            timestamp: Timestamp(microseconds: row[8]), sortedDimensions: UsageEvent.decodeDimensions(row[9]))
    }

    static func decodeNameList(_ text: String?) -> Set<String>? {
        guard let text, case let .array(items)? = try? JSONParser.parse(text) else { return nil }
        return Set(items.compactMap(\.stringValue))
    }
}
