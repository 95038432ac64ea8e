import Crypto
import ExactJSON
public import Metering
import SegmentChain

extension ClickHouseMeterStore {
    /// Batches that wait behind an insert go into the next one together (`IngestQueue`): one part
    /// per table for all of them, which is what ClickHouse's inserts cost most per.
    public func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        for account in batch.accounts where !owns(account) {
            throw UsageBoxError(.conflict, "this server does not write account \(account); its owner does (the peers' configuration differs?)")
        }
        return try await ingestQueue.submit(
            batch,
            group: { batches in try await self.writer.exclusive { try await self.write(batches) } },
            alone: { batch in try await self.writer.exclusive { try await self.write([batch]) }[0] },
            retryAlone: { !ClickHouseClient.isUnreachable($0) })
    }

    /// How long ingest trusts what it read of meters' units and accounts' closed periods. Both change
    /// rarely and through this process for the accounts it writes (closes go to the owner), so a
    /// batch does not read them again; a change made through another process is seen within this.
    static let catalogMaxAge = Duration.seconds(1)

    /// Meters' units, as ingest checks them: reused while fresh, reread when stale or when the batch
    /// names a meter the cache does not know (another process may have just recorded it).
    func meterUnits(for batches: [IngestBatch]) async throws -> [String: String?] {
        if let cached = await writer.meterUnits(maxAge: Self.catalogMaxAge),
            !batches.contains(where: { $0.items.contains { if case let .event(e) = $0 { cached[e.meterID] == nil } else { false } } })
        {
            return cached
        }
        var out: [String: String?] = [:]
        for r in try await rows("SELECT meter_id, argMax(unit, version) FROM \(t("meters")) GROUP BY meter_id") {
            if let id = r[0].chString { out[id] = r[1].chString }
        }
        for (id, unit) in try await unitsOfClashedMeters() { out[id] = unit }
        await writer.setMeterUnits(out)
        return out
    }

    /// Meters two writers gave two units at once: the unit their stored events carry. The writer
    /// that read its claim back alone went on and stored its events; the other answered 503, and
    /// its retry must not take the newest `meters` row's unit (its own, perhaps) for the meter's.
    func unitsOfClashedMeters() async throws -> [String: String] {
        var out: [String: String] = [:]
        let clashed = try await rows("SELECT meter_id FROM \(t("meter_unit_claims")) GROUP BY meter_id HAVING uniqExact(unit) > 1")
        for r in clashed {
            guard let id = r[0].chString else { continue }
            let stored = try await rows(
                "SELECT unit FROM \(t("events")) WHERE meter_id = \(ClickHouseClient.quote(id)) AND isNotNull(unit) LIMIT 1")
            if let unit = stored.first?.first?.chString { out[id] = unit }
        }
        return out
    }

    /// Rereads the closed periods of the accounts whose copy is older than `catalogMaxAge`, in one query.
    func refreshClosedPeriods(_ states: inout [String: ClickHouseAccountState]) async throws {
        let now = ContinuousClock.now
        let stale = states.filter { now - $0.value.closedReadAt >= Self.catalogMaxAge }.keys.sorted()
        guard !stale.isEmpty else { return }
        var closed: [String: Set<String>] = [:]
        for r in try await rows(
            "SELECT account_id, period FROM \(t("periods")) WHERE account_id IN (\(ClickHouseClient.list(stale))) GROUP BY account_id, period")
        {
            if let a = r[0].chString, let p = r[1].chString { closed[a, default: []].insert(p) }
        }
        for account in stale {
            states[account]?.closed = closed[account] ?? []
            states[account]?.closedReadAt = now
        }
    }

    /// An event of this batch already decided, by account and id.
    struct BatchEventKey: Hashable {
        var account: String
        var eventID: String
    }

    /// Writes a group of batches, in order, as one: decides every event against what is stored and
    /// what earlier batches of the group accepted (this process is the only writer of these
    /// accounts), then inserts the accepted ones in one statement. One answer per batch.
    func write(_ batches: [IngestBatch]) async throws -> [IngestResponse] {
        try await holdWriterLease()
        try await settleRollupsBeforeWriting()
        // Every read of the write decides (units, closed months, ids, segments): none from a first
        // host that set a part aside after a crash and is fetching it back — a close's part missing
        // would let usage into a closed month, a unit's another unit into the meter. Answered from a
        // pass under a second old without a scan; nothing to check unreplicated. Before anything is
        // sent, so a 503 here leaves what the writer knows of its accounts as it was.
        try await checkFirstHostWhole()
        var sent: [(batch: Int, item: Int)] = []  // the events of the insert under way, as indices
        do {
            return try await writeGroup(batches, sent: &sent)
        } catch {
            // Some of the group's events may be stored (a flush before a seal, an insert that
            // landed but was not acknowledged): what the writer knows of these accounts is reread
            // from the store before their next batch, so ordinals and running hashes follow it.
            for batch in batches { for account in batch.accounts { await writer.set(account, nil) } }
            await writer.setMeterUnits(nil)
            await writer.forgetFirstHostCheck()
            await writer.addUnsettled(
                sent.compactMap {
                    if case let .event(e) = batches[$0.batch].items[$0.item] { BatchEventKey(account: e.accountID, eventID: e.eventID) } else { nil }
                })
            try? await settleRollupsBeforeWriting()  // at once if it can; else every second meanwhile, and before the next write
            if await writer.anythingToSettle { settleSoon() }
            throw error
        }
    }

    /// Brings the rollups up to the events of failed inserts. One INSERT writes the events' parts
    /// and then, through the materialized views, the rollups' parts, each committed on its own: a
    /// ClickHouse server killed in between keeps the events and loses their rollups, and a client's
    /// retry is then answered `duplicate`. So the writer keeps the ids of every event it sent in a
    /// write that failed and, before its next write, settles the stored ones (`settleRollups(where:)`);
    /// a writer that stopped before its next write leaves it to its successor's start
    /// (`recoverOpenSegments`).
    func settleRollups() async throws {
        let sent = await writer.unsettledEvents()
        guard !sent.isEmpty else { return }
        var start = 0
        while start < sent.count {  // a few thousand ids per statement
            let chunk = sent[start..<min(start + 4_000, sent.count)]
            let condition = Dictionary(grouping: chunk, by: \.account).sorted { $0.key < $1.key }.map { account, keys in
                "(account_id = \(ClickHouseClient.quote(account)) AND event_id IN (\(ClickHouseClient.list(keys.map(\.eventID)))))"
            }.joined(separator: " OR ")
            try await settleRollups(where: condition)
            start += chunk.count
        }
        await writer.settled(sent.count)
    }

    /// Retries settling until nothing is left to settle (or the store is gone), so a ClickHouse
    /// server back from a crash has whole rollups within a second, not at the next write or the
    /// sealer's tick: after `interval`, then twice as long each time up to a minute. These tries do
    /// not count towards the five after which writes give up on settling. One such task at a time.
    func settleSoon(every interval: Duration = .seconds(1)) {
        Task { [weak self] in
            guard await self?.writer.claimRetry() == true else { return }
            var wait = interval
            while true {
                try? await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(60))
                guard let store = self else { return }
                // Only while this process holds the writer lease: another holder settles the
                // same last writes when it takes it, and both adding a shortfall counts it twice.
                _ = try? await store.writer.exclusive {
                    guard (try? await store.holdWriterLease()) == true else { return }
                    try await store.settleRollupsBeforeWriting(counted: false)
                }
                if await store.writer.endRetryIfSettled() { return }
            }
        }
    }

    /// Settles before a write, and never lets settling stand in the way of writing for long.
    /// While an insert of this writer whose answer was lost still runs on ClickHouse (a timeout
    /// rather than a crash), nothing is settled and nothing written: its events and its views'
    /// parts may yet land, and a write reading the stored ids before they do could store its ids
    /// again (503: retry). Any other failure to settle is tried again at the next write, and
    /// after five tries dropped and left for `verify` to report, so writes go on.
    ///
    /// The last writes of a writer that stopped before this process started are settled the same
    /// way, first of all (`recoverOpenSegments`): while an insert that began before this process
    /// opened the store still runs — the stopped writer's, perhaps — nothing is settled or written.
    func settleRollupsBeforeWriting(counted: Bool = true) async throws {
        let lastWrites = await writer.lastWritesPending
        guard await writer.anythingToSettle else { return }
        if try await insertStillRunning() {
            throw UsageBoxError.unavailable("an earlier insert of this server is still running on ClickHouse; retry once it has ended")
        }
        if lastWrites, let running = try await insertFromBeforeRunning() {
            throw UsageBoxError.unavailable(
                "an insert begun before this server started (a stopped server's?) is still running on ClickHouse (query id \(running)); "
                    + "retry once it has ended")
        }
        // Settling reads the stored events and rollups: not from a first host still fetching a part back.
        try await checkFirstHostWhole()
        if lastWrites {
            // Until it is done nothing is written: after this process's first write the latest
            // write would be its own. A failure is 503 (retry); after five at writes, or when
            // ClickHouse has been unreachable, no better: left for `verify` to report.
            do {
                try await settleLastWrites()
            } catch {
                if Self.notNow(error) { throw error }
                guard counted, await writer.settleFailed() >= 5 else {
                    throw UsageBoxError.unavailable("settling the last writes of a stopped server failed (\(error)); retry")
                }
            }
            // What this process read of its accounts before may miss what the stopped writer's
            // late insert stored: read again at each account's next write.
            await writer.lastWritesSettled()
        }
        do {
            try await settleRollups()
        } catch {
            if Self.notNow(error) { throw error }
            if counted, await writer.settleFailed() >= 5 { await writer.giveUpSettling() }
        }
    }

    /// A failure to settle that says "try later" (ClickHouse unreachable, replicas stale or
    /// lacking parts) rather than "this cannot be settled": never counted towards giving up.
    static func notNow(_ error: any Error) -> Bool {
        ClickHouseClient.isUnreachable(error) || (error as? UsageBoxError)?.code == .unavailable
    }

    /// Whether a statement carrying this writer's query id still runs: on the first host, and in a
    /// cluster on the other shards too, where a Distributed statement's part runs under a query
    /// id of its own with the writer's as its initial one.
    func insertStillRunning() async throws -> Bool {
        try await runningQuery(where: "initial_query_id = \(ClickHouseClient.quote(insertQueryID))") != nil
    }

    /// The same, on the shards other than the first only.
    func runningOnOtherShards() async throws -> Bool {
        try await runningQuery(where: "initial_query_id = \(ClickHouseClient.quote(insertQueryID))", firstHost: false) != nil
    }

    /// The initial query id of a statement running on ClickHouse that matches `condition` (a
    /// `system.processes` filter), on the first host and, in a cluster, every other shard; or nil.
    /// A shard other than the first that cannot be reached is taken to run nothing
    /// (docs/clickhouse.md says what that assumes).
    func runningQuery(where condition: String, firstHost: Bool = true) async throws -> String? {
        let sql = "SELECT initial_query_id FROM system.processes WHERE \(condition) LIMIT 1"
        let hosts = names.cluster == nil ? [client] : shards
        for (index, shard) in hosts.enumerated() where firstHost || index > 0 {
            do {
                if let id = try await shard.rows(sql).rows.first?.first?.chString { return id }
            } catch  where index > 0 && ClickHouseClient.isUnreachable(error) {
                continue
            } catch let e as ClickHouseError {
                throw Self.storeError(e) ?? UsageBoxError(.internal, "ClickHouse \(shard.host): \(e.message)")
            }
        }
        return nil
    }

    /// Adds to each rollup cell the events of `condition` (events of one write, stored) that the
    /// cell lacks — only where the cell's shortfall against the raw events is exactly those events,
    /// so settling twice adds nothing; any other difference is left for `verify` to report. Only
    /// the account's writer adds to its cells, so nothing moves while this runs.
    func settleRollups(where condition: String) async throws {
        struct Cell: Hashable {
            var account, meter, model, kind, unit, dimensions: String
            var bucket: Int64
            var tuple: String {
                "(" + [account, meter, model, kind, unit, dimensions].map(ClickHouseClient.quote).joined(separator: ", ") + ", \(bucket))"
            }
        }
        for rollup in ClickHouseSchema.rollups {
            let cell = "meter_id, ifNull(model_id, ''), kind, ifNull(unit, ''), dimensions, intDiv(ts, \(rollup.micros))"
            let totals = "count(), sum(intDiv(quantity, \(ClickHouseSchema.half))), sum(quantity % \(ClickHouseSchema.half))"
            func cells(_ sql: String) async throws -> [Cell: (count: Int64, sum: Int64)] {
                var out: [Cell: (count: Int64, sum: Int64)] = [:]
                for r in try await rows(sql, settings: Self.longLists) where r.count == 10 {
                    let text = r.prefix(6).map { $0.chString ?? "" }
                    let key = Cell(
                        account: text[0], meter: text[1], model: text[2], kind: text[3], unit: text[4], dimensions: text[5],
                        bucket: r[6].chInt ?? 0)
                    out[key] = (r[7].chInt ?? 0, try Self.combine(hi: r[8].chInt ?? 0, lo: r[9].chInt ?? 0, "a rollup cell"))
                }
                return out
            }
            let mine = try await cells(
                "SELECT account_id, \(cell), \(totals) FROM \(t("events")) WHERE \(condition) GROUP BY account_id, \(cell)")
            guard !mine.isEmpty else { continue }
            let scope =
                "account_id IN (\(ClickHouseClient.list(Array(Set(mine.keys.map(\.account))).sorted()))) "
                + "AND \(rollup.bucket) IN (\(Set(mine.keys.map(\.bucket)).sorted().map(String.init).joined(separator: ", ")))"
            let raw = try await cells(
                "SELECT account_id, \(cell) AS \(rollup.bucket), \(totals) FROM \(t("events")) WHERE \(scope) GROUP BY account_id, \(cell)")
            let rolled = try await cells(
                """
                SELECT account_id, meter_id, model_id, kind, unit, dimensions, \(rollup.bucket), countMerge(count), sumMerge(sum_hi), sumMerge(sum_lo)
                FROM \(t(rollup.table)) WHERE \(scope) GROUP BY account_id, meter_id, model_id, kind, unit, dimensions, \(rollup.bucket)
                """)
            let missing = mine.filter { key, m in
                let r = raw[key] ?? (0, 0)
                let have = rolled[key] ?? (0, 0)
                return r.count - have.count == m.count && r.sum &- have.sum == m.sum
            }.keys.map(\.tuple)
            guard !missing.isEmpty else { continue }
            let filter = "(\(condition)) AND (account_id, \(cell)) IN (\(missing.sorted().joined(separator: ", ")))"
            // Still this process's to settle: reading took long, and a writer that took the lease
            // meanwhile settles the same shortfall (added twice, it counts twice).
            try await confirmWriterLease()
            try await command(
                "INSERT INTO \(t(rollup.table)) "
                    + ClickHouseSchema.rollupSelect(bucket: rollup.bucket, micros: String(rollup.micros), from: t("events"), filter: filter),
                // A replicated table drops a block identical to a recent one: this one must land. It
                // carries the writer's query id, as inserts of events do (`insertStillRunning`).
                settings: insertSettings.merging(Self.longLists) { $1 }.merging(["insert_deduplicate": "0", "query_id": insertQueryID]) { $1 })
        }
    }

    /// ClickHouse's limits on a statement's syntax tree, raised for statements that list ids or
    /// cells by the thousand (18.16 parses each value of an `IN` list as a node).
    static let longLists = ["max_ast_elements": "10000000", "max_expanded_ast_elements": "10000000"]

    /// The query id of an insert of events, or of a writer's settling insert, that began before
    /// this process took the writer lease and still runs (on any shard), or nil: the writer that
    /// held it before may have left it, with its parts or its views' parts to come. Inserts of a
    /// writer of other accounts (another place of the same `--peers` split) never count, nor do
    /// another store's; those begun after the lease was taken cannot be a writer of these
    /// accounts' — but for a second's margin, which errs towards waiting.
    func insertFromBeforeRunning() async throws -> String? {
        let open = ContinuousClock.now - (await writer.leaseTakenAt ?? openedAt)
        let seconds = Double(open.components.seconds) + Double(open.components.attoseconds) / 1e18
        let p = insertQueryIDPatterns
        let (store, split, slot) = (ClickHouseClient.quote(p.store), ClickHouseClient.quote(p.split), ClickHouseClient.quote(p.slot))
        let stranger = "query LIKE \(ClickHouseClient.quote("INSERT INTO \(t("events"))%")) AND initial_query_id NOT LIKE \(store)"
        let overlapping = "initial_query_id LIKE \(slot) OR (initial_query_id LIKE \(store) AND initial_query_id NOT LIKE \(split))"
        return try await runningQuery(
            where: "(\(stranger) OR \(overlapping)) AND initial_query_id != \(ClickHouseClient.quote(insertQueryID)) AND elapsed > \(max(seconds - 1, 0))")
    }

    /// Settles each account's last write (the events of its latest `ingested_at`): a writer that
    /// stopped after a failed insert, before its next write, left its rollups unsettled. Runs
    /// before this process writes anything, so the latest write is the stopped writer's.
    func settleLastWrites() async throws {
        var last: [String] = []
        for r in try await rows("SELECT account_id, max(ingested_at) FROM \(t("events")) GROUP BY account_id ORDER BY account_id") {
            guard let account = r[0].chString, owns(account), let at = r[1].chInt else { continue }
            last.append("(\(ClickHouseClient.quote(account)), \(at))")
        }
        var start = 0
        while start < last.count {  // a few thousand accounts per statement
            let chunk = last[start..<min(start + 2_000, last.count)]
            try await settleRollups(where: "(account_id, ingested_at) IN (\(chunk.joined(separator: ", ")))")
            start += chunk.count
        }
    }

    private func writeGroup(_ batches: [IngestBatch], sent: inout [(batch: Int, item: Int)]) async throws -> [IngestResponse] {
        let now = clock().microseconds
        var accounts: [String] = []
        var seen = Set<String>()
        for batch in batches { for account in batch.accounts where seen.insert(account).inserted { accounts.append(account) } }
        var meters = try await meterUnits(for: batches)
        var newMeters: [String: String?] = [:]
        var existing: [String: [String: String]] = [:]
        var states: [String: ClickHouseAccountState] = [:]
        for account in accounts {
            // Held, renewed as reading goes on: reading many accounts' ids (after a restart) took
            // past the lease's margin, and every retry of the write was refused.
            try await confirmWriterLease()
            var state = try await accountState(account)
            if state.ids == nil { state.ids = try await storedEventIDs(account) }
            states[account] = state
        }
        try await refreshClosedPeriods(&states)
        // Only ids this writer has seen (their hash is in the account's set) are looked up in the store:
        // new ids, nearly all of them, cost no query at all.
        var candidates: [String: [String]] = [:]
        for batch in batches {
            // An account whose ids are not held (none is, here) is looked up whole: never taken as new.
            for case let .event(e) in batch.items where states[e.accountID]?.ids.map({ $0.contains(EventIDSet.hash(e.eventID)) }) ?? true {
                candidates[e.accountID, default: []].append(e.eventID)
            }
        }
        for (account, ids) in candidates.sorted(by: { $0.key < $1.key }) {
            try await confirmWriterLease()
            for r in try await rows(
                "SELECT event_id, any(content) FROM \(t("events")) WHERE account_id = \(ClickHouseClient.quote(account)) AND event_id IN (\(ClickHouseClient.list(ids))) GROUP BY event_id"
            ) {
                if let id = r[0].chString, let c = r[1].chString { existing[account, default: [:]][id] = c }
            }
        }
        // An id this writer stored that the store does not return: on a replicated store, the first
        // host may have set its part aside after a restart that failed none of this writer's
        // writes. Checked now, whatever the last check said (rare otherwise: a 64-bit collision).
        if names.replicated, candidates.contains(where: { account, ids in ids.contains { existing[account]?[$0] == nil } }) {
            await writer.forgetFirstHostCheck()
            try await checkFirstHostWhole()
        }

        var body: [UInt8] = []  // the accepted events as JSONEachRow, built directly
        body.reserveCapacity(batches.reduce(0) { $0 + $1.items.count } * 520)
        var accepted: [(batch: Int, item: Int)] = []  // the events in `body`
        var pending: [BatchEventKey: ContentHash] = [:]  // the group's accepted events
        var careful = CarefulSums()
        var responses: [IngestResponse] = []
        func acceptedEvents() -> [UsageEvent] {
            accepted.compactMap { if case let .event(e) = batches[$0.batch].items[$0.item] { e } else { nil } }
        }

        for (b, batch) in batches.enumerated() {
            var response = IngestResponse()
            func problem(_ i: Int, _ id: String?, _ status: IngestResponse.Problem.Status, _ code: String, _ message: String, _ field: String? = nil) {
                if status == .rejected { response.rejected += 1 } else { response.conflicts += 1 }
                response.errors.append(.init(index: i, eventID: id, status: status, code: code, message: message, field: field))
            }
            for i in batch.items.indices {
                guard let p = batch.prepared[i], case let .event(e) = batch.items[i] else {
                    if case let .invalid(r) = batch.items[i] { problem(i, r.eventID, .rejected, r.code, r.message, r.field) }
                    continue
                }
                let key = BatchEventKey(account: e.accountID, eventID: e.eventID)
                let same: Bool? =
                    if let earlier = pending[key] { earlier == p.contentHash } else { existing[e.accountID]?[e.eventID].map { $0 == p.contentHash.hex } }
                if let same {
                    if same {
                        response.duplicates += 1
                    } else {
                        problem(
                            i, e.eventID, .conflict, "conflict",
                            "event \(e.eventID) of \(e.accountID) was already stored with different content; the original stays")
                    }
                    continue
                }
                if let unit = e.unit, let known = (newMeters[e.meterID] ?? meters[e.meterID]) ?? nil, known != unit {
                    problem(i, e.eventID, .rejected, "unit_mismatch", EventRejection.unitMismatch(meterID: e.meterID, unit: unit), "unit")
                    continue
                }
                guard var state = states[e.accountID] else { continue }
                let inClosed = !state.closed.isEmpty && state.closed.contains(e.timestamp.monthString)  // most accounts close none
                if inClosed, e.kind == .usage {
                    problem(
                        i, e.eventID, .rejected, "period_closed",
                        "period \(e.timestamp.monthString) of \(e.accountID) is closed; record a Correction instead", "timestamp")
                    continue
                }
                // Sums past 64 bits: cheap when the account's magnitude is far from it, exact otherwise.
                if state.magnitude + Double(e.quantity.magnitude) >= 4.0e18 {
                    if let what = try await careful.overflow(self, e, accepted: acceptedEvents(), segmentSum: state.open?.sum ?? 0) {
                        problem(
                            i, e.eventID, .rejected, "quantity_overflow",
                            "adding \(e.quantity) would push \(what) past a 64-bit integer; nothing was stored for this event", "quantity")
                        continue
                    }
                }
                // The account's open segment, sealed first when full or old (its events are stored first).
                if let open = state.open, open.count >= UInt64(segmentMaxEvents) || now - open.openedAt >= segmentMaxAge {
                    sent = accepted  // indices only: events are looked up if the insert fails
                    try await insertEvents(body, count: accepted.count)
                    body.removeAll(keepingCapacity: true)
                    accepted.removeAll()
                    try await persist(states)
                    state = try await seal(e.accountID, state, now: now)
                }
                if state.open == nil {
                    state.lastSegmentID += 1
                    state.open = OpenSegmentState(id: state.lastSegmentID, openedAt: now, count: 0, sum: 0, running: MultisetHash())
                }
                guard var open = state.open else { continue }
                Self.appendRow(e, content: p.contentHash, segment: open.id, ordinal: open.count, postClose: inClosed, now: now, to: &body)
                accepted.append((b, i))
                open.count += 1
                open.sum = open.sum &+ e.quantity
                open.firstTs = min(open.firstTs ?? .max, e.timestamp.microseconds)
                open.lastTs = max(open.lastTs ?? .min, e.timestamp.microseconds)
                open.running.add(p.contentHash)
                state.open = open
                state.magnitude += Double(e.quantity.magnitude)
                state.ids?.insert(EventIDSet.hash(e.eventID))
                states[e.accountID] = state
                pending[key] = p.contentHash
                // A meter first seen now is recorded; one without a unit takes the event's.
                let known: String?? = newMeters[e.meterID] ?? meters[e.meterID]
                if known == nil || (known == .some(nil) && e.unit != nil) { newMeters[e.meterID] = e.unit }
                response.accepted += 1
                if inClosed { response.postClose += 1 }
            }
            responses.append(response)
        }
        if !newMeters.isEmpty {
            // A new meter's unit is recorded before its events, then read back: two owners of
            // other accounts that both saw the meter new (two `--peers` places at once) each
            // accepted their own unit, and the meter summed both. Of two that both recorded
            // one, at least one sees the other's and writes nothing: its batch is 503, and on the
            // retry the meter's unit is the one its stored events carry (`unitsOfClashedMeters`).
            try await confirmWriterLease()
            var meterRows: [JSONValue] = []
            for (id, unit) in newMeters.sorted(by: { $0.key < $1.key }) {
                meterRows.append(
                    .object([
                        ("meter_id", .string(id)), ("unit", unit.map(JSONValue.string) ?? .null),
                        ("rollup_dimensions", .null), ("version", .int(Int64(await nextVersion()))),
                    ]))
            }
            try await insert("meters", meterRows)
            let withUnits = newMeters.compactMap { id, unit in unit.map { (id, $0) } }.sorted { $0.0 < $1.0 }
            if !withUnits.isEmpty {
                try await insert(
                    "meter_unit_claims",
                    withUnits.map { .object([("meter_id", .string($0.0)), ("unit", .string($0.1)), ("claimed_at", .int(now))]) })
                let clashes = try await rows(
                    """
                    SELECT meter_id FROM \(t("meter_unit_claims")) WHERE meter_id IN (\(ClickHouseClient.list(withUnits.map(\.0))))
                    GROUP BY meter_id HAVING uniqExact(unit) > 1
                    """)
                if let clash = clashes.first?.first?.chString {
                    await writer.setMeterUnits(nil)
                    throw UsageBoxError.unavailable("meter \(clash) was given two units at once by two writers; retry: it now counts one of them")
                }
            }
            for (id, unit) in newMeters { meters[id] = unit }
            await writer.addMeterUnits(newMeters)
        }
        sent = accepted
        try await insertEvents(body, count: accepted.count)
        try await persist(states)
        await writer.dropEventIDs(over: heldEventIDs, keeping: Set(accounts))
        return responses
    }

    /// An event as a line of `events` in JSONEachRow, appended to `out` as UTF-8.
    static func appendRow(
        _ e: UsageEvent, content: ContentHash, segment: UInt64, ordinal: UInt64, postClose: Bool, now: Int64, to out: inout [UInt8]
    ) {
        @inline(__always) func raw(_ s: StaticString) { s.withUTF8Buffer { out.append(contentsOf: $0) } }
        @inline(__always) func number(_ n: Int64) { JSONWriter.appendInteger(n, to: &out) }
        @inline(__always) func number(_ n: UInt64) { JSONWriter.appendInteger(unsigned: n, to: &out) }
        func field(_ name: StaticString, _ value: String?) {
            raw(name)
            if let value { JSONWriter.appendString(value, to: &out) } else { raw("null") }
        }
        raw("{\"account_id\":")
        JSONWriter.appendString(e.accountID, to: &out)
        field(",\"event_id\":", e.eventID)
        field(",\"meter_id\":", e.meterID)
        field(",\"model_id\":", e.modelID)
        raw(",\"kind\":")
        e.kind == .usage ? raw("\"Usage\"") : raw("\"Correction\"")
        field(",\"correction_ref\":", e.correctionRef)
        raw(",\"quantity\":")
        number(e.quantity)
        field(",\"unit\":", e.unit)
        raw(",\"ts\":")
        number(e.timestamp.microseconds)
        raw(",\"dim_keys\":[")
        for (i, d) in e.dimensions.enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONWriter.appendString(d.key, to: &out)
        }
        raw("],\"dim_values\":[")
        for (i, d) in e.dimensions.enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONWriter.appendString(d.value, to: &out)
        }
        raw("],\"dimensions\":")
        var dimensions: [UInt8] = []  // the canonical dimensions object, itself a JSON string value
        UsageEvent.appendDimensions(e.dimensions, to: &dimensions)
        dimensions.withUnsafeBufferPointer { JSONWriter.appendString(utf8: $0, to: &out) }
        raw(",\"content\":\"")
        LowercaseHex.append(words: content.words, to: &out)
        raw("\",\"segment_id\":")
        number(segment)
        raw(",\"ordinal\":")
        number(ordinal)
        raw(postClose ? ",\"post_close\":1,\"ingested_at\":" : ",\"post_close\":0,\"ingested_at\":")
        number(now)
        raw("}\n")
    }

    /// Inserts the accepted events of a batch in one statement (one part: all or nothing).
    func insertEvents(_ body: [UInt8], count: Int) async throws {
        guard count > 0 else { return }
        try await confirmWriterLease()
        do {
            _ = try await client.execute(
                "INSERT INTO \(t("events")) FORMAT JSONEachRow", settings: insertSettings.merging(["query_id": insertQueryID]) { $1 },
                body: body)
        } catch let e as ClickHouseError {
            throw Self.storeError(e) ?? UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }

    /// Writes the accounts' open segments (count, sum, time range, running hash) and remembers them.
    func persist(_ states: [String: ClickHouseAccountState]) async throws {
        try await confirmWriterLease()
        var segmentRows: [JSONValue] = []
        for (account, state) in states.sorted(by: { $0.key < $1.key }) {
            if let open = state.open {
                segmentRows.append(await segmentRow(account, open, sealedAt: nil, sha: nil, prev: nil))
            }
        }
        try await insert("segments", segmentRows)
        for (account, state) in states { await writer.set(account, state) }
    }

    func segmentRow(_ account: String, _ s: OpenSegmentState, sealedAt: Int64?, sha: String?, prev: String?) async -> JSONValue {
        .object([
            ("account_id", .string(account)), ("segment_id", .number(String(s.id))), ("opened_at", .int(s.openedAt)),
            ("sealed_at", sealedAt.map { .int($0) } ?? .null), ("event_count", .number(String(s.count))), ("sum", .int(s.sum)),
            ("first_ts", s.firstTs.map { .int($0) } ?? .null), ("last_ts", s.lastTs.map { .int($0) } ?? .null),
            ("sha256", sha.map(JSONValue.string) ?? .null), ("prev_sha256", prev.map(JSONValue.string) ?? .null),
            ("running_hash", .string(s.running.hex)), ("hash_rule", .number(String(SegmentHash.currentRule))),
            ("version", .number(String(await nextVersion()))),
        ])
    }

    /// What this process knows of an account it writes; read from the store on first use. An open
    /// segment's state is rebuilt from its stored events, so a writer that stopped between writing
    /// events and writing the segment's row picks up exactly where the events are.
    func accountState(_ account: String) async throws -> ClickHouseAccountState {
        if let known = await writer.state(account) { return known }
        try await checkFirstHostWhole()
        let segs = try await rows(
            """
            SELECT segment_id, argMax(opened_at, version), argMax(sealed_at, version), argMax(sha256, version), max(version)
            FROM \(t("segments")) WHERE account_id = \(ClickHouseClient.quote(account)) GROUP BY segment_id ORDER BY segment_id
            """)
        // Rows are versioned by the writer's clock: one a killed writer wrote on a clock ahead of
        // this one's would outrank this writer's rows of the same segment (its stale count beside
        // this writer's hash, a seal read as corrupt for good). This writer's go above them.
        await writer.versions(above: segs.compactMap { $0.count > 4 ? $0[4].chInt.map { UInt64(max($0, 0)) } : nil }.max() ?? 0)
        var state = ClickHouseAccountState(
            chainHead: nil, lastSegmentID: 0, open: nil, magnitude: 0, ids: nil, closed: [], closedReadAt: .now - Self.catalogMaxAge)
        for r in segs {
            let id = UInt64(r[0].chInt ?? 0)
            state.lastSegmentID = max(state.lastSegmentID, id)
            if r[2] != .null {
                state.chainHead = r[3].chString
            } else {
                state.open = OpenSegmentState(id: id, openedAt: r[1].chInt ?? 0, count: 0, sum: 0, running: MultisetHash())
            }
        }
        // Events of a segment whose row was never written (a writer stopped in between) still count.
        let maxEventSegment = try await rows(
            "SELECT max(segment_id), sum(toFloat64(abs(quantity))) FROM \(t("events")) WHERE account_id = \(ClickHouseClient.quote(account))")
        if let top = maxEventSegment.first?[0].chInt, top > 0 {
            if UInt64(top) > state.lastSegmentID {
                state.lastSegmentID = UInt64(top)
                state.open = OpenSegmentState(id: UInt64(top), openedAt: clock().microseconds, count: 0, sum: 0, running: MultisetHash())
            }
        }
        if case let .number(m)? = maxEventSegment.first?[1] { state.magnitude = Double(m) ?? 0 }
        if var open = state.open {
            let digest = try await digest(account, segment: open.id, previous: state.chainHead)
            open.count = digest.count
            open.sum = digest.sum
            open.firstTs = digest.firstTs
            open.lastTs = digest.lastTs
            open.running = digest.multiset
            state.open = open
        }
        return state
    }

    /// Every id the account holds, as hashes, a page at a time in the table's own order: in one
    /// answer, an account of ten million events (ids of ~25 characters) passed the answer bound,
    /// and the account could not be written again once its owner restarted. Read at an account's
    /// first write, not when it is only sealed.
    func storedEventIDs(_ account: String) async throws -> EventIDSet {
        let ids = EventIDSet()
        let scope = "account_id = \(ClickHouseClient.quote(account))"
        let longestID = try await rows("SELECT max(length(event_id)) FROM \(t("events")) WHERE \(scope)").first?[0].chInt ?? 0
        let perPage = max(1, readPageBytes / (Int(clamping: longestID) * 6 + 16))
        var lastID: String?
        while true {
            let after = lastID.map { " AND event_id > \(ClickHouseClient.quote($0))" } ?? ""
            try await confirmWriterLease()  // renewed between pages: an account's ids may take seconds
            let page = try await rows("SELECT event_id FROM \(t("events")) WHERE \(scope)\(after) ORDER BY event_id LIMIT \(perPage)")
            for r in page {
                if let id = r[0].chString { ids.insert(EventIDSet.hash(id)) }
            }
            guard page.count == perPage, let last = page.last?[0].chString else { break }
            lastID = last
        }
        return ids
    }

    /// Seals an account's open segment: its events re-read in ingest order, hashed and chained.
    func seal(_ account: String, _ state: ClickHouseAccountState, now: Int64) async throws -> ClickHouseAccountState {
        guard let open = state.open else { return state }
        try await confirmWriterLease()
        var next = state
        try await checkFirstHostWhole()  // the seal hashes the stored events: all of them
        let d = try await digest(account, segment: open.id, previous: state.chainHead)
        guard d.count > 0 else { return state }
        let sha = d.hash.finalize()
        var sealed = open
        sealed.count = d.count
        sealed.sum = d.sum
        sealed.firstTs = d.firstTs
        sealed.lastTs = d.lastTs
        try await confirmWriterLease()  // again: the digest read the segment's events, perhaps for long
        try await insert("segments", [await segmentRow(account, sealed, sealedAt: now, sha: sha, prev: state.chainHead)])
        if d.multiset != open.running {
            // Sealing does not launder an edit made to the open segment: the re-hash says so.
            try await insert(
                "segment_checks",
                [
                    .object([
                        ("account_id", .string(account)), ("segment_id", .number(String(open.id))), ("checked_at", .int(now)),
                        ("corrupt_reason", .string("its stored events do not match the running hash kept while it was open")),
                    ])
                ])
        }
        next.chainHead = sha
        next.open = nil
        return next
    }

    /// Seals the open segments of the accounts this process writes (at shutdown).
    public func sealOpenSegments() async throws {
        try await writer.exclusive {
            // An insert whose answer was lost may still land: a seal now would leave its events
            // out of the hash. The segments stay open for the next server to seal. So do they
            // when this process does not hold the writer lease (it wrote nothing, or another
            // process writes these accounts now); it gives the lease up once sealed.
            // A process that wrote and let its lease lapse (a last batch that took long) takes it
            // again to seal, if no other holds it: `ingest` always leaves its segments sealed.
            let wrote = await self.writer.leaseTakenAt != nil
            guard await !self.writer.anythingToSettle, (try? await self.holdWriterLease(acquire: wrote)) == true else { return }
            let now = self.clock().microseconds
            for account in try await self.openSegmentAccounts() where self.owns(account) {
                let state = try await self.accountState(account)
                await self.writer.set(account, try await self.seal(account, state, now: now))
            }
            await self.giveUpWriterLease()
        }
    }

    /// Seals open segments older than the age limit, and settles the rollups of failed writes
    /// (the server's timer).
    public func sealExpiredSegments() async throws {
        try await writer.exclusive {
            // Only with the writer lease, taken if something is due and no other process holds it.
            let now = self.clock().microseconds
            let due = try await self.openSegmentAccounts(openedBefore: now - self.segmentMaxAge).filter(self.owns)
            let unsettled = await self.writer.anythingToSettle
            guard !due.isEmpty || unsettled, (try? await self.holdWriterLease()) == true else { return }
            try await self.settleRollupsBeforeWriting()
            for account in try await self.openSegmentAccounts(openedBefore: now - self.segmentMaxAge) where self.owns(account) {
                let state = try await self.accountState(account)
                await self.writer.set(account, try await self.seal(account, state, now: now))
            }
        }
    }

    /// Brings every open segment row of the accounts this process writes up to its stored events
    /// (a writer stopped between the two writes), and the rollups up to each account's last write
    /// (a writer stopped after a failed insert); a server runs it when it starts.
    public func recoverOpenSegments() async throws {
        // Taking the writer lease recovers (`recoverOwnedAccounts`); never in the way of starting:
        // while another process holds it (one killed, for its last seconds), the lease is taken
        // and the accounts recovered at the first write.
        _ = try? await writer.exclusive { try await self.holdWriterLease() }
        if await writer.anythingToSettle { settleSoon() }
    }

    /// What `recoverOpenSegments` does, under the writer, as the lease is taken.
    func recoverOwnedAccounts() async throws {
        // What cannot be settled now is retried (`settleSoon`), and the accounts are then read at
        // their first write, once it is done.
        await writer.setLastWritesPending(true)
        try? await settleRollupsBeforeWriting()
        guard await !writer.lastWritesPending else { return }
        var states: [String: ClickHouseAccountState] = [:]
        for account in try await openSegmentAccounts() where owns(account) {
            try await confirmWriterLease()  // renewed as accounts are read: recovering many took past its margin
            await writer.set(account, nil)
            do {
                states[account] = try await accountState(account)
            } catch let e as UsageBoxError where e.code == .unavailable {
                continue  // a first host still fetching parts back: loaded, checked, at the account's first write
            }
        }
        try await persist(states)
    }

    func openSegmentAccounts(openedBefore: Int64 = .max) async throws -> [String] {
        let fromSegments = try await rows(
            """
            SELECT account_id FROM (
                SELECT account_id, segment_id, argMax(sealed_at, version) AS sealed, argMax(opened_at, version) AS opened
                FROM \(t("segments")) GROUP BY account_id, segment_id)
            WHERE isNull(sealed) AND opened < \(openedBefore) GROUP BY account_id ORDER BY account_id
            """)
        return fromSegments.compactMap { $0[0].chString }
    }

    /// An event row read back, for hashing.
    static let eventColumns = "event_id, meter_id, model_id, kind, correction_ref, quantity, unit, ts, dimensions"

    static func event(_ r: [JSONValue], account: String) -> UsageEvent? {
        guard let id = r[0].chString, let meter = r[1].chString, let kind = r[3].chString.flatMap(EventKind.init(rawValue:)),
            let quantity = r[5].chInt, let ts = r[7].chInt, let dims = r[8].chString
        else { return nil }
        return UsageEvent(
            eventID: id, accountID: account, meterID: meter, modelID: r[2].chString, kind: kind, correctionRef: r[4].chString,
            quantity: quantity, unit: r[6].chString, timestamp: Timestamp(microseconds: ts),
            sortedDimensions: UsageEvent.decodeDimensions(dims))
    }

    struct Digest {
        var hash: SegmentHash
        var multiset = MultisetHash()
        var count: UInt64 = 0
        var sum: Int64 = 0
        var firstTs: Int64?
        var lastTs: Int64?
        /// Event rows that could not be read back as events.
        var unreadable = 0
    }

    /// A segment's stored events, re-read in ingest order and hashed, a page at a time: read in
    /// one answer, 5,000 events of 32 dimensions of control characters passed the 256 MiB answer
    /// bound, so that account's segment could never seal nor verify. A page holds as many rows
    /// as fit `readPageBytes` at the segment's longest row, JSON-escaped at worst (six bytes a
    /// character); pages follow (ordinal, event_id), and rows equal to the last one read (a row
    /// stored twice, which verify must count twice) are skipped only as often as already read.
    func digest(
        _ account: String, segment: UInt64, previous: String?, rule: Int = SegmentHash.currentRule, pageBytes: Int? = nil
    ) async throws -> Digest {
        var d = Digest(hash: SegmentHash(previous: previous))
        let scope = "account_id = \(ClickHouseClient.quote(account)) AND segment_id = \(segment)"
        let longest =
            try await rows(
                """
                SELECT max(length(event_id) + length(meter_id) + length(ifNull(model_id, '')) + length(ifNull(correction_ref, ''))
                           + length(ifNull(unit, '')) + length(dimensions)) FROM \(t("events")) WHERE \(scope)
                """
            ).first?[0].chInt ?? 0
        let perPage = max(1, (pageBytes ?? readPageBytes) / (Int(clamping: longest) * 6 + 512))
        var after: (ordinal: Int64, id: String, seen: Int)?
        var buffer: [UInt8] = []
        while true {
            let limit = perPage + (after?.seen ?? 0)
            let next = after.map { " AND (ordinal > \($0.ordinal) OR (ordinal = \($0.ordinal) AND event_id >= \(ClickHouseClient.quote($0.id))))" }
            let page = try await rows(
                "SELECT \(Self.eventColumns), ordinal, post_close FROM \(t("events")) WHERE \(scope)\(next ?? "") ORDER BY ordinal, event_id LIMIT \(limit)")
            for r in page.dropFirst(after?.seen ?? 0) {
                guard let e = Self.event(r, account: account) else {
                    d.unreadable += 1
                    continue
                }
                buffer.removeAll(keepingCapacity: true)
                e.appendCanonical(to: &buffer)
                buffer.withUnsafeBytes {
                    d.hash.add(canonical: $0)
                    d.multiset.add(canonical: $0)
                }
                if rule >= 2, r[10].chInt == 1 { d.hash.markPostClose() }
                d.count += 1
                d.sum = d.sum &+ e.quantity
                d.firstTs = min(d.firstTs ?? .max, e.timestamp.microseconds)
                d.lastTs = max(d.lastTs ?? .min, e.timestamp.microseconds)
            }
            guard page.count == limit, let last = page.last, let ordinal = last[9].chInt, let id = last[0].chString else { break }
            after = (ordinal, id, page.reversed().prefix { $0[9].chInt == ordinal && $0[0].chString == id }.count)
        }
        return d
    }
}

/// The exact check for an account whose magnitude comes near 2^63: the stored sums of the event's
/// hour and day, read as high and low halves so that nothing wraps, plus this batch's.
struct CarefulSums {
    var cells: [String: (Int64, Int64)] = [:]  // "hour:…" / "day:…" of a rollup key → (stored hi, stored lo)

    mutating func overflow(_ store: ClickHouseMeterStore, _ e: UsageEvent, accepted: [UsageEvent], segmentSum: Int64) async throws -> String? {
        if segmentSum.addingReportingOverflow(e.quantity).overflow { return "its segment's total" }
        let key = """
            account_id = \(ClickHouseClient.quote(e.accountID)) AND meter_id = \(ClickHouseClient.quote(e.meterID)) \
            AND ifNull(model_id, '') = \(ClickHouseClient.quote(e.modelID ?? "")) AND kind = \(ClickHouseClient.quote(e.kind.rawValue)) \
            AND ifNull(unit, '') = \(ClickHouseClient.quote(e.unit ?? "")) AND dimensions = \(ClickHouseClient.quote(UsageEvent.canonicalDimensions(e.dimensions)))
            """
        for rollup in ClickHouseSchema.rollups {
            let (what, micros) = ("its \(rollup.bucket)'s rollup", rollup.micros)
            let bucket = e.timestamp.microseconds / micros
            let r = try await store.rows(
                """
                SELECT sum(intDiv(quantity, \(ClickHouseSchema.half))), sum(quantity % \(ClickHouseSchema.half)) FROM \(store.t("events"))
                WHERE \(key) AND intDiv(ts, \(micros)) = \(bucket)
                """)
            var total = try ClickHouseMeterStore.combine(hi: r.first?[0].chInt ?? 0, lo: r.first?[1].chInt ?? 0, what)
            // This batch's accepted events of the same cell.
            for other in accepted {
                guard other.accountID == e.accountID, other.meterID == e.meterID, other.modelID == e.modelID, other.kind == e.kind,
                    other.unit == e.unit, other.dimensions == e.dimensions, other.timestamp.microseconds / micros == bucket
                else { continue }
                let (s, o) = total.addingReportingOverflow(other.quantity)
                if o { return what }
                total = s
            }
            if total.addingReportingOverflow(e.quantity).overflow { return what }
        }
        return nil
    }
}

extension ClickHouseMeterStore {
    /// A sum read as high and low halves (`hi × 2^32 + lo`), or an error naming what passes 64 bits.
    static func combine(hi: Int64, lo: Int64, _ what: String) throws -> Int64 {
        let (shifted, o1) = hi.multipliedReportingOverflow(by: 4_294_967_296)
        let (total, o2) = shifted.addingReportingOverflow(lo)
        guard !o1, !o2 else { throw UsageBoxError.invalidArgument("\(what) overflows a 64-bit integer; read a shorter range", field: "from") }
        return total
    }
}
