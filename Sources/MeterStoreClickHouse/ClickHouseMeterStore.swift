import ExactJSON
import Foundation
public import Metering
import SegmentChain

/// The meter store for resellers who outgrow one machine: ClickHouse over its HTTP interface, any
/// number of stateless `usagebox serve` processes in front of it (docs/clickhouse.md).
///
/// Every promise of the SQLite store holds, on ClickHouse's terms:
/// - **Exactly once.** Each account has one writer at a time (the serve process that owns it; the
///   others forward its events), which decides duplicate and conflict against the stored events
///   before it inserts, and inserts a batch as one statement (one part: all or nothing).
/// - **Rollups equal raw without waiting for merges**: a materialized view adds each insert's
///   events to hourly and daily aggregate states inside the insert; reads merge states.
/// - **Segments** are hash-chained per account by the account's writer, with the same hash as
///   SQLite (`SegmentChain`), so verify re-hashes them the same way.
///
/// ```swift
/// let store = try ClickHouseMeterStore(location: ClickHouseLocation(url: "clickhouse://127.0.0.1:8123/usagebox"))
/// try await store.migrate()
/// ```
public final class ClickHouseMeterStore: MeterStore, @unchecked Sendable {
    // Mutable state lives in the `writer` actor; the rest is immutable.
    public let location: ClickHouseLocation
    let client: ClickHouseClient
    let shards: [ClickHouseClient]
    let names: ClickHouseSchema.Names
    let clock: @Sendable () -> Timestamp
    let segmentMaxEvents: Int64
    let segmentMaxAge: Int64
    /// At most this much JSON in one page of rows read back whole (a segment's events, an
    /// account's ids), so no answer nears the client's answer bound, whatever the rows hold.
    let readPageBytes: Int
    /// At most this much in one answer of verify's rollup check (256 MiB, the reads' bound;
    /// smaller in tests).
    let verifyAnswerBytes: Int
    /// At most this many event ids (their 64-bit hashes, ≈ 16 bytes each in a set) are kept for
    /// the accounts not being written; past it they are read again at an account's next write.
    let heldEventIDs: Int
    /// How often the writer lease is renewed while writing, and how long after a renewal a
    /// statement may still store (`renewEvery`, `writeWithin`; shorter in tests).
    let leaseRenewal: (every: Duration, within: Duration)
    /// Whether this process writes an account (the serve process that owns it); every account when alone.
    let owns: @Sendable (String) -> Bool
    /// The accounts `owns` covers, as the writer lease compares them with other processes'.
    let slot: WriterSlot
    /// This process's row in the `writers` table.
    let writerInstance = "usagebox-" + UUID().uuidString.lowercased()
    let writer = ClickHouseWriter()
    let ingestQueue = IngestQueue()
    let replicas: ReplicaChoice
    /// The query id of this writer's inserts of events: ClickHouse refuses a second query with the
    /// id of one still running, so an insert whose answer was lost can never run beside the next.
    /// It names the database, so a writer starting waits only on inserts into its own store (a
    /// server's other stores' inserts held every first write of a store up).
    let insertQueryID: String
    /// `LIKE` patterns of writers' query ids of this store: every writer's, those of this
    /// process's split (`--peers` of the same size), and those of its place in it.
    var insertQueryIDPatterns: (store: String, split: String, slot: String) {
        let db = names.db.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
        return ("usagebox-writer-\(db)-%", "usagebox-writer-\(db)-\(slot.of).%", "usagebox-writer-\(db)-\(slot.of).\(slot.node)-%")
    }
    /// When this store was opened: an insert running since before then is not this process's.
    let openedAt = ContinuousClock.now

    public init(
        location: ClickHouseLocation, clock: @escaping @Sendable () -> Timestamp = Timestamp.now,
        segmentMaxEvents: Int64 = 100_000, segmentMaxAgeSeconds: Int64 = 3600, readPageBytes: Int = 32 << 20,
        verifyAnswerBytes: Int = 256 << 20, heldEventIDs: Int = 16_000_000,
        leaseRenewal: (every: Duration, within: Duration) = (ClickHouseMeterStore.renewEvery, ClickHouseMeterStore.writeWithin),
        owns: @escaping @Sendable (String) -> Bool = { _ in true },
        slot: WriterSlot = .alone
    ) throws {
        self.location = location
        // A cluster of replicated shards: a Distributed table writes to one replica of a shard and
        // reads from any, so both pick the first healthy one in the configuration's order — a
        // read sees the writes before it, as long as that replica is up.
        // A host's own shard would otherwise be read and written on that host itself
        // (`prefer_localhost_replica`), whatever the order: the checks assume the order. The
        // order yields to each replica's recent connection errors, so a replica that has just
        // come back is passed over for minutes; then a replica that has not fetched, for a
        // second, what its replication queue holds is not read at all (an error, not a short answer).
        let defaults =
            location.cluster != nil && location.replicated
            ? [
                "load_balancing": "in_order", "prefer_localhost_replica": "0",
                "max_replica_delay_for_distributed_queries": "1", "fallback_to_stale_replicas_for_distributed_queries": "0",
            ] : [:]
        shards = location.hosts.map { ClickHouseClient(host: $0, user: location.user, password: location.password, defaults: defaults) }
        client = shards[0]
        replicas = ReplicaChoice(count: shards.count)
        names = ClickHouseSchema.Names(db: location.database, cluster: location.cluster, replicated: location.replicated)
        insertQueryID = "usagebox-writer-\(location.database)-\(slot.of).\(slot.node)-" + UUID().uuidString.lowercased()
        self.clock = clock
        self.segmentMaxEvents = max(segmentMaxEvents, 1)
        self.segmentMaxAge = segmentMaxAgeSeconds * 1_000_000
        self.readPageBytes = max(readPageBytes, 1)
        self.verifyAnswerBytes = max(verifyAnswerBytes, 1)
        self.heldEventIDs = max(heldEventIDs, 0)
        self.leaseRenewal = leaseRenewal
        self.owns = owns
        self.slot = slot
    }

    func t(_ name: String) -> String { names.table(name) }

    /// A new monotone version for a ReplacingMergeTree row written by this process.
    func nextVersion() async -> UInt64 { await writer.version(after: UInt64(max(clock().microseconds, 0))) }

    /// A version for a row that replaces one read with `max(version)` = `stored`: versions come
    /// from each writer's clock, and a row written on a clock ahead would otherwise outrank its
    /// replacement (a meter's change, a report applied were read as never made).
    func nextVersion(above stored: JSONValue?) async -> UInt64 {
        if let stored = stored?.chInt { await writer.versions(above: UInt64(max(stored, 0))) }
        return await nextVersion()
    }

    // MARK: schema

    /// The schema version the store is at (0 for an empty server).
    public func schemaVersion() async throws -> Int {
        let exists = try await read(
            "SELECT count() FROM system.tables WHERE database = \(ClickHouseClient.quote(names.db)) AND name = 'schema_version'", shardsRead: false)
        guard exists.rows.first?.first?.chInt == 1 else { return 0 }
        return Int(try await read("SELECT max(version) FROM \(t("schema_version"))", shardsRead: false).rows.first?.first?.chInt ?? 0)
    }

    /// Creates or upgrades the schema; a store at a newer schema than this binary is refused.
    @discardableResult
    public func migrate() async throws -> (from: Int, to: Int) {
        let current = try await schemaVersion()
        guard current <= ClickHouseSchema.latest else {
            throw UsageBoxError(
                .conflict,
                "the ClickHouse store \(names.db) is at schema \(current), newer than this usagebox knows "
                    + "(\(ClickHouseSchema.latest)); use a newer usagebox")
        }
        try await checkLayout()  // also a migrate that stopped part-way, before recording its version
        // A replicated store has every table on every host (each a replica of it); a cluster has
        // the sharded tables on every host and the small ones on the first.
        let everyShard = names.cluster == nil && !names.replicated ? [client] : shards
        let smallTables = names.replicated ? shards : [client]
        for shard in shards { try await shard.command("CREATE DATABASE IF NOT EXISTS \(names.db)") }
        for host in smallTables {
            try await host.command(
                "CREATE TABLE IF NOT EXISTS \(t("schema_version")) (version UInt32, applied_at Int64) "
                    + "ENGINE = \(names.engine("MergeTree", "schema_version")) ORDER BY version")
        }
        for migration in ClickHouseSchema.migrations where migration.version > current {
            let step = migration.build(names)
            for shard in everyShard {
                for sql in step.everyShard { try await run(shard, sql, migration) }
            }
            for host in smallTables {
                for sql in step.firstHost { try await run(host, sql, migration) }
            }
            try await client.command("INSERT INTO \(t("schema_version")) VALUES (\(migration.version), \(clock().microseconds))")
        }
        return (current, ClickHouseSchema.latest)
    }

    private func run(_ shard: ClickHouseClient, _ sql: String, _ m: ClickHouseSchema.Migration) async throws {
        do {
            try await shard.command(sql)
        } catch let e as ClickHouseError where e.code == 44 && sql.hasPrefix("ALTER TABLE") && sql.contains(" ADD COLUMN ") {
            return  // added by a migrate that stopped before recording its version (18.16 has no ADD COLUMN IF NOT EXISTS)
        } catch let e as ClickHouseError {
            throw UsageBoxError(.internal, "migration \(m.version) (\(m.name)) failed on \(shard.host): \(e.message)")
        }
    }

    /// Refuses to work on a store whose schema this binary does not know, or has not been created.
    public func checkSchema() async throws {
        let version = try await schemaVersion()
        guard version == ClickHouseSchema.latest else {
            if version > ClickHouseSchema.latest {
                throw UsageBoxError(
                    .conflict,
                    "the ClickHouse store \(names.db) is at schema \(version), newer than this usagebox knows "
                        + "(\(ClickHouseSchema.latest)); use a newer usagebox")
            }
            throw UsageBoxError(
                .conflict,
                "the ClickHouse store \(names.db) is at schema \(version), this usagebox needs "
                    + "\(ClickHouseSchema.latest): run usagebox migrate --store \(location.hosts[0])…")
        }
        try await checkLayout()
    }

    /// Refuses a store URL that does not say how the store was created: a cluster's store opened
    /// as one server's (or the reverse) would read one shard as the whole, and a replicated store
    /// opened as plain (or the reverse) would write where no replica checks were made. The engines
    /// the store should have come from the same `Names.engine` the migrations build them with.
    func checkLayout() async throws {
        var found: [String: (engine: String, full: String)] = [:]
        for r in try await rows(
            "SELECT name, engine, engine_full FROM system.tables WHERE database = \(ClickHouseClient.quote(names.db)) "
                + "AND name IN ('events', 'events_local', 'segments')", shardsRead: false)
        {
            found[r[0].chString ?? ""] = (r[1].chString ?? "", r[2].chString ?? "")
        }
        func base(_ engine: String) -> String { String(engine.prefix { $0 != "(" }) }
        let events = base(names.engine("MergeTree", "events", sharded: true))
        let store = "the ClickHouse store \(names.db)"
        switch (names.cluster, found["events"]) {
        case (nil, let table?) where table.engine == "Distributed":
            throw UsageBoxError(
                .conflict, "\(store) was created on a cluster (its events table is Distributed): open it with the ?cluster=NAME it was created with")
        case (.some, let table?) where table.engine != "Distributed":
            throw UsageBoxError(.conflict, "\(store) was created on one server (its events table is \(table.engine)): open it without ?cluster=")
        case (let cluster?, let table?):
            // Distributed(cluster, database, table, key): another cluster's name would shard anew.
            let named = table.full.dropFirst("Distributed(".count).prefix { $0 != "," }.trimmingCharacters(in: .whitespaces)
            if !table.full.isEmpty, named.trimmingCharacters(in: CharacterSet(charactersIn: "'")) != cluster {
                throw UsageBoxError(.conflict, "\(store) was created on cluster \(named), not \(cluster): open it with ?cluster=\(named)")
            }
        default: break
        }
        let stored = [found[names.cluster == nil ? "events" : "events_local"]?.engine, found["segments"]?.engine]
        let expected = [events, base(names.engine("ReplacingMergeTree(version)", "segments"))]
        for (engine, want) in zip(stored, expected) {
            guard let engine, engine != want else { continue }
            throw UsageBoxError(
                .conflict,
                engine.hasPrefix("Replicated")
                    ? "\(store) was created replicated (\(engine)): open it with ?replicated=true"
                    : "\(store) was created without replicas (\(engine)): open it without ?replicated=true "
                        + "(a store cannot become replicated in place: docs/clickhouse.md)")
        }
    }

    /// What the store's own reads assume whatever the user's profile says: verify and the scrub
    /// read a LEFT JOIN's missing side as 0 (with `join_use_nulls=1` as NULL, a segment never
    /// checked counted as neither clean, corrupt nor pending). The SQL endpoint sends none of these.
    static let readSettings = ["max_query_size": "67108864", "join_use_nulls": "0"]

    /// Runs a query, turning ClickHouse's own errors into the store's.
    func rows(
        _ sql: String, settings: [String: String] = [:], limit: Int = 256 << 20, shardsRead: Bool = true, wholeFirstHost: Bool = false
    ) async throws -> [[JSONValue]] {
        do {
            return try await read(
                sql, settings: Self.readSettings.merging(settings) { $1 }, limit: limit, shardsRead: shardsRead,
                wholeFirstHost: wholeFirstHost
            ).rows
        } catch let e as ClickHouseError {
            throw Self.storeError(e) ?? UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }

    /// A ClickHouse error that means "not now" rather than "wrong", as the store says it (nil
    /// for any other): every statement's caller maps it the same way.
    static func storeError(_ e: ClickHouseError) -> UsageBoxError? {
        guard e.code == 369 else { return nil }  // ALL_REPLICAS_ARE_STALE
        return .unavailable(
            "no replica of a shard has fetched everything its replication queue holds (one just restarted, or lagging): "
                + "retry in a few seconds")
    }

    /// Runs a query on the first host, or on a replicated store on the first host that answers.
    /// The writer's own reads never move: what it decides must be read where it writes, not from a
    /// replica that may lag behind. `shardsRead: false`: a read of ClickHouse's system tables or
    /// of the store's small tables (keys, meters, periods, reports), none sharded, so no shard's
    /// replicas need checking for it (`checkReadHosts`).
    func read(
        _ sql: String, settings: [String: String] = [:], limit: Int = 256 << 20, shardsRead: Bool = true, wholeFirstHost: Bool = false
    ) async throws -> (
        names: [String], types: [String], rows: [[JSONValue]]
    ) {
        try await onAnyReplica(!ClickHouseWriter.writing, checkingShards: shardsRead, wholeFirstHost: wholeFirstHost) {
            try await $0.rows(sql, settings: settings, limit: limit)
        }
    }

    /// `body` on the first host; with `allowed`, on a replicated store, on the next host when one
    /// cannot be reached (`replicas` remembers which, so the next call does not wait on it first).
    /// A host other than the first answers only when it is known to hold everything stored:
    /// replication is asynchronous, and a replica still fetching parts would give a partial
    /// answer (rollups ahead of raw events, a segment ahead of its events) as if it were whole.
    /// `wholeFirstHost`: the first host answers only while it holds every part its replicas
    /// recorded (the writer's check), as for a key check, where a revocation's part the first host
    /// set aside after a crash would let a revoked key back in.
    func onAnyReplica<T>(
        _ allowed: Bool, checkingShards: Bool = true, wholeFirstHost: Bool = false, _ body: (ClickHouseClient) async throws -> T
    ) async throws -> T {
        // In a cluster the hosts are shards as well as replicas: a host of another shard would
        // answer through Distributed tables whose replicas nobody checked. No failover there, but
        // the replicas the first host's Distributed reads go to must hold everything.
        if allowed, names.replicated, names.cluster != nil {
            if checkingShards || wholeFirstHost { try await checkReadHosts() }
            return try await body(client)
        }
        guard allowed, names.replicated, names.cluster == nil, shards.count > 1 else { return try await body(client) }
        var reasons: [String] = []
        for index in replicas.order() {
            do {
                if index != 0, let behind = try await replicaLag(shards[index]) {
                    reasons.append("\(shards[index].host) \(behind)")
                    continue
                }
                if index == 0, wholeFirstHost, let behind = try await hostsLacking() {
                    reasons.append(behind)
                    continue
                }
                let answer = try await body(shards[index])
                replicas.answered(index)
                return answer
            } catch  where ClickHouseClient.isUnreachable(error) {
                replicas.unreachable(index)
                reasons.append("cannot reach \(shards[index].host)")
            }
        }
        throw UsageBoxError.unavailable(
            "no ClickHouse replica can answer completely (" + reasons.joined(separator: "; ")
                + "): try again when \(client.host) is back or its replicas have caught up")
    }

    /// Why a replica may lack something stored, or nil when it holds every part that each other
    /// replica of each of the store's tables has recorded in ZooKeeper. An insert is acknowledged
    /// only once its part is recorded there, so this covers every acknowledged write, including
    /// one the replica has not even heard of yet. Parts are compared by the block numbers they
    /// cover, so merges on either side do not matter (a gap in block numbers makes it answer
    /// "lacks": it errs towards refusing).
    func replicaLag(_ host: ClickHouseClient, tables only: [String]? = nil) async throws -> String? {
        do {
            let db = ClickHouseClient.quote(names.db)
            let tables = try await host.rows(
                "SELECT table, zookeeper_path, replica_name, is_readonly FROM system.replicas WHERE database = \(db)"
                    + (only.map { " AND table IN (\(ClickHouseClient.list($0)))" } ?? "")
            ).rows
            guard !tables.isEmpty else { return "holds no replica of \(names.db)" }
            // What the other replicas recorded, read before what this one holds: a part this host
            // stores meanwhile (another serve process writing) and a replica fetches and records
            // would otherwise look lacking. Its parts only grow or merge, so what it held when it
            // was read covers all that was recorded before.
            var recorded: [(table: String, part: String)] = []
            for t in tables {
                guard let table = t[0].chString, let path = t[1].chString, let me = t[2].chString else { continue }
                if t[3].chInt != 0 { return "has lost ZooKeeper (read-only)" }
                let replicas = try await host.rows("SELECT name FROM system.zookeeper WHERE path = \(ClickHouseClient.quote(path + "/replicas"))").rows
                for other in replicas.compactMap({ $0[0].chString }) where other != me {
                    let parts = try await host.rows(
                        "SELECT name FROM system.zookeeper WHERE path = \(ClickHouseClient.quote(path + "/replicas/" + other + "/parts"))"
                    ).rows
                    recorded += parts.compactMap { $0[0].chString }.map { (table, $0) }
                }
            }
            var local: [String: [PartBlocks]] = [:]
            for r in try await host.rows("SELECT table, name FROM system.parts WHERE database = \(db) AND active").rows {
                if let table = r[0].chString, let part = r[1].chString.flatMap(PartBlocks.init) { local[table, default: []].append(part) }
            }
            // A name that does not parse counts as lacking: it errs towards refusing.
            let missing = recorded.filter { !(PartBlocks($0.part)?.covered(by: local[$0.table] ?? []) ?? false) }
            guard let first = missing.first else { return nil }
            let lacking = Set(missing.map(\.table)).sorted().joined(separator: ", ")
            return "lacks \(missing.count) part(s) another replica stored (of \(lacking); \(first.part) of \(first.table) among them)"
        } catch let e as ClickHouseError {
            return "cannot tell what it lacks (\(e.message.prefix(200)))"
        }
    }

    /// Before the writer reads what it decides from — an account's ids, segments and closed periods,
    /// and the rollups settling compares with them — on a replicated store: the hosts it reads from
    /// must hold every part their replicas recorded. A ClickHouse server restarted after a machine
    /// crash can find a part of its own broken, set it aside and fetch it back from a replica; until
    /// it has, ids read from it would miss that part's events and a retried event would be stored
    /// twice. Checked at most once a second while it holds everything, and again after any write
    /// that failed; a failure answers the next second's retries without another scan.
    func checkFirstHostWhole() async throws {
        if let behind = try await hostsLacking() {
            throw UsageBoxError.unavailable("\(behind) (restarted, fetching parts back?): writes wait until it holds them")
        }
    }

    /// Reads in a cluster of replicated shards: a shard's Distributed reads go on to its next
    /// replica when the first does not answer, and that replica may not have fetched the first's
    /// last parts yet (lost with it until it returns). Answered only while the replicas in use
    /// hold every part recorded — the writer's check, sharing its second-long memory of the answer.
    func checkReadHosts() async throws {
        if let behind = try await hostsLacking() {
            throw UsageBoxError.unavailable("\(behind): reads wait until it holds them, or until the replica that has them answers again")
        }
    }

    /// What a host the store reads from lacks, remembered as `ClickHouseWriter` says. A pass is
    /// kept only if nothing made the writer forget the check while it ran, and only while every
    /// shard reads from its first replica (one that returns would be read from at once).
    func hostsLacking() async throws -> String? {
        guard names.replicated, names.cluster != nil || shards.count > 1, let generation = await writer.firstHostCheckStarts() else {
            return nil
        }
        if let behind = await writer.firstHostLackedRecently() { return behind }
        // One scan at a time: the checks that start while one runs under the same generation or an
        // earlier one take its answer (each scan reads every part name each replica recorded).
        return try await writer.sharedFirstHostScan(generation) { try await self.firstHostLag() }.value
    }

    /// The tables the writer decides from: ids, segments, closed periods, meters' units, the
    /// rollups that settling compares with raw events (a rollup part set aside would be added a
    /// second time), and keys and the reconciliation log, whose revocations and applications are
    /// written over the newest row read (and a revocation's part set aside would let a key back
    /// in). Verify's `segment_checks`, written on any replica, is not one of them.
    static let decidingTables = (
        sharded: ["events"] + ClickHouseSchema.rollups.map(\.table), small: ["segments", "periods", "meters", "api_keys", "reconciliations"]
    )

    /// What a host the store reads from lacks (nil: nothing), and whether a pass may be kept.
    /// One server's replicas: the first host. A cluster of replicated shards: the first host for
    /// the small tables, and for each shard the replica its Distributed reads and writes go to
    /// (`load_balancing = in_order`, no preference for the local replica: the first in the
    /// cluster's order that the first host reaches; ClickHouse moves on from it when its queue has
    /// held an unfetched part for over a second, `max_replica_delay_for_distributed_queries`, and
    /// such a replica lacks a part, so it is refused here first).
    func firstHostLag() async throws -> (behind: String?, keep: Bool) {
        guard names.cluster != nil else {
            let tables = Self.decidingTables.sharded + Self.decidingTables.small
            return (try await replicaLag(client, tables: tables).map { "the first ClickHouse host \(client.host) \($0)" }, true)
        }
        if let behind = try await replicaLag(client, tables: Self.decidingTables.small) {
            return ("the first ClickHouse host \(client.host) \(behind)", false)
        }
        let sharded = Self.decidingTables.sharded.map { "\($0)_local" }
        var keep = true
        for (number, replicas) in try await shardReplicaOrder() {
            for (position, replica) in replicas.enumerated() {
                let unchecked =
                    "shard \(number)'s replica \(replica.address) answers the first host but cannot be checked from here"
                guard let index = replica.host else {
                    guard try await reachableFromFirstHost(replica.address) else { continue }  // Distributed skips it too
                    return ("\(unchecked) (no host of the store URL is it: list every replica of the cluster in the URL)", false)
                }
                do {
                    if let behind = try await replicaLag(shards[index], tables: sharded) {
                        return ("shard \(number)'s ClickHouse replica \(shards[index].host), the one its reads go to, \(behind)", false)
                    }
                    // Whole, but read only if the first host reaches it too (else Distributed goes on).
                    guard try await reachableFromFirstHost(replica.address) else {
                        keep = false
                        continue
                    }
                    keep = keep && position == 0
                    break
                } catch  where ClickHouseClient.isUnreachable(error) {
                    // Not over HTTP from here; Distributed reads go on only if the first host cannot reach it either.
                    guard try await reachableFromFirstHost(replica.address) else { continue }
                    return ("\(unchecked) (\(shards[index].host) does not answer HTTP)", false)
                }
            }
        }
        return (nil, keep)
    }

    /// A shard's replica in the cluster's configuration: its TCP address, and which of the URL's
    /// hosts it is (nil when none is, or it could not be told).
    struct ShardReplica: Sendable {
        var address: String
        var host: Int?
    }

    /// Each shard's replicas in the cluster's order, placed among the URL's hosts (which speak
    /// HTTP, while the cluster's configuration names TCP addresses): each replica, asked by the
    /// first host over TCP, and each URL host, asked over HTTP, name their replica of the events
    /// table (its ZooKeeper path and replica name); equal names are the same server. Kept once
    /// every replica is placed.
    func shardReplicaOrder() async throws -> [(shard: Int, replicas: [ShardReplica])] {
        if let known = await writer.shardOrder { return known }
        guard let cluster = names.cluster else { return [] }
        let mine =
            "SELECT zookeeper_path, replica_name FROM %@ WHERE database = \(ClickHouseClient.quote(names.db)) AND table = 'events_local'"
        func identity(_ rows: [[JSONValue]]) -> String? {
            guard let r = rows.first, let path = r[0].chString, let name = r[1].chString else { return nil }
            return path + "/replicas/" + name
        }
        var hostOf: [String: Int] = [:]
        for (index, host) in shards.enumerated() {
            do {
                if let id = identity(try await host.rows(mine.replacingOccurrences(of: "%@", with: "system.replicas")).rows) {
                    hostOf[id] = index
                }
            } catch  where ClickHouseClient.isUnreachable(error) {
                continue  // down: unplaced for now
            } catch let e as ClickHouseError {
                throw UsageBoxError.unavailable("ClickHouse \(host.host) cannot say which replica it is: \(e.message.prefix(200))")
            }
        }
        var order: [(shard: Int, replicas: [ShardReplica])] = []
        for r in try await rows(
            "SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = \(ClickHouseClient.quote(cluster)) "
                + "ORDER BY shard_num, replica_num", shardsRead: false)
        {
            guard let shard = r[0].chInt, let name = r[1].chString, let port = r[2].chInt else { continue }
            let address = "\(name):\(port)"
            var there: [[JSONValue]] = []
            do {
                there = try await client.rows(mine.replacingOccurrences(of: "%@", with: remoteTable(address, "replicas"))).rows
            } catch let e as ClickHouseError where Self.connectionFailed(e) {
                // Not reachable from the first host: unplaced for now (and skipped, as Distributed skips it).
            } catch let e as ClickHouseError {
                throw UsageBoxError.unavailable(
                    "the first ClickHouse host cannot ask \(address) which replica it is (the store's user must be able to "
                        + "log in there over TCP: docs/clickhouse.md): \(e.message.prefix(200))")
            }
            let replica = ShardReplica(address: address, host: identity(there).flatMap { hostOf[$0] })
            if order.last?.shard == Int(shard) { order[order.count - 1].replicas.append(replica) } else { order.append((Int(shard), [replica])) }
        }
        if order.allSatisfy({ $0.replicas.allSatisfy { $0.host != nil } }) { await writer.setShardOrder(order) }
        return order
    }

    /// A system table of another server of the cluster, read by the first host over TCP as the
    /// store's user (as the Distributed tables reach it).
    func remoteTable(_ address: String, _ table: String) -> String {
        "remote(\(ClickHouseClient.quote(address)), system, \(table)"
            + (location.user.map { ", \(ClickHouseClient.quote($0)), \(ClickHouseClient.quote(location.password ?? ""))" } ?? "") + ")"
    }

    /// Whether the first host reaches a server of the cluster over TCP (as a Distributed read
    /// would). Only a failure to connect is "no": any other error is an answer it cannot vouch for.
    func reachableFromFirstHost(_ address: String) async throws -> Bool {
        do {
            _ = try await client.rows("SELECT 1 FROM \(remoteTable(address, "one"))", settings: ["connect_timeout": "2"])
            return true
        } catch let e as ClickHouseError where Self.connectionFailed(e) {
            return false
        } catch let e as ClickHouseError {
            throw UsageBoxError.unavailable("the first ClickHouse host cannot tell whether it reaches \(address): \(e.message.prefix(200))")
        }
    }

    /// Whether a `remote()` call failed to connect (DNS_ERROR, SOCKET_TIMEOUT, NETWORK_ERROR,
    /// ALL_CONNECTION_TRIES_FAILED) rather than being refused once connected.
    static func connectionFailed(_ e: ClickHouseError) -> Bool { [198, 209, 210, 279].contains(e.code ?? 0) }

    /// Every insert's settings: through a cluster's Distributed tables, acknowledged only once the
    /// shard holds the rows.
    var insertSettings: [String: String] { names.cluster == nil ? [:] : ["insert_distributed_sync": "1"] }

    /// Inserts rows on the first host, where every write goes, or (`anyReplica`: rows of a log
    /// no decision depends on, such as verify's checks) on any replica that answers.
    func insert(_ table: String, _ rows: [JSONValue], anyReplica: Bool = false) async throws {
        do {
            try await onAnyReplica(anyReplica) {
                try await $0.insert(into: t(table), rows, settings: insertSettings)
            }
        } catch let e as ClickHouseError {
            throw Self.storeError(e) ?? UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }

    /// `account_id IN (…)`, or nothing for every account.
    static func accountClause(_ scope: AccountScope, column: String = "account_id") -> String {
        switch scope {
        case .all: return "1"
        case let .accounts(list): return list.isEmpty ? "0" : "\(column) IN (\(ClickHouseClient.list(Array(list).sorted())))"
        }
    }
}

/// The one writer of a process: ingest, sealing and period closes run one at a time, and what it
/// knows of each account it writes (its open segment, its chain head) lives here.
actor ClickHouseWriter {
    var accounts: [String: ClickHouseAccountState] = [:]
    private var lastVersion: UInt64 = 0
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func version(after clock: UInt64) -> UInt64 {
        lastVersion = max(lastVersion + 1, clock)
        return lastVersion
    }

    /// Versions from now on pass `stored` (a row another process wrote, on a clock ahead of ours).
    func versions(above stored: UInt64) { lastVersion = max(lastVersion, stored) }

    /// Whether the running task is the writer's (its reads stay on the host it writes to).
    @TaskLocal static var writing = false

    /// Runs `body` alone among this process's writes.
    func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        while busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
        defer {
            busy = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        return try await Self.$writing.withValue(true) { try await body() }
    }

    /// Meters' units as ingest last read them, and when.
    private var meterCache: (units: [String: String?], readAt: ContinuousClock.Instant)?

    func meterUnits(maxAge: Duration) -> [String: String?]? {
        guard let meterCache, ContinuousClock.now - meterCache.readAt < maxAge else { return nil }
        return meterCache.units
    }
    func setMeterUnits(_ units: [String: String?]?) { meterCache = units.map { ($0, .now) } }
    /// Meters this process just recorded, added to the copy without making it any fresher.
    func addMeterUnits(_ units: [String: String?]) { meterCache?.units.merge(units) { $1 } }

    /// Events sent in writes that failed, whose rollups may lack them (`settleRollups`).
    private var unsettled: [ClickHouseMeterStore.BatchEventKey] = []
    func addUnsettled(_ events: [ClickHouseMeterStore.BatchEventKey]) { unsettled += events }
    func unsettledEvents() -> [ClickHouseMeterStore.BatchEventKey] { unsettled }
    /// Whether an account of `scope` has events to settle: its rollups may be short until then.
    func hasUnsettled(in scope: AccountScope, owns: (String) -> Bool) -> Bool {
        let pending: Bool
        switch scope {
        case .all: pending = lastWritesPending
        case let .accounts(list): pending = lastWritesPending && list.contains(where: owns)
        }
        return pending || unsettled.contains { scope.allows($0.account) }
    }
    /// Whether the last writes of the accounts this process writes are still to settle: a writer
    /// that stopped after a failed insert left them (`recoverOpenSegments`). Until then the
    /// rollups of every account this process writes may be short.
    private(set) var lastWritesPending = false
    func setLastWritesPending(_ pending: Bool) { lastWritesPending = pending }
    /// The last writes are settled: what was read of every account is read again at its next write.
    func lastWritesSettled() {
        lastWritesPending = false
        accounts.removeAll()
    }
    /// Whether anything is left to settle.
    var anythingToSettle: Bool { lastWritesPending || !unsettled.isEmpty }
    /// When the first host was last found to hold every part its replicas recorded (`checkFirstHostWhole`).
    private var firstHostWholeAt: ContinuousClock.Instant?
    /// What the first host was last found to lack, and when.
    private var firstHostLacking: (reason: String, at: ContinuousClock.Instant)?
    /// Bumped by each `forgetFirstHostCheck` and each gap found: a check that began before either
    /// records no pass.
    private var checkGeneration = 0
    /// The generation a check begins under, or nil when one passed less than a second ago.
    func firstHostCheckStarts() -> Int? {
        firstHostWholeAt.map { ContinuousClock.now - $0 >= .seconds(1) } ?? true ? checkGeneration : nil
    }
    func firstHostChecked(_ generation: Int) {
        guard generation == checkGeneration else { return }
        firstHostWholeAt = .now
        firstHostLacking = nil
    }
    func forgetFirstHostCheck() {
        firstHostWholeAt = nil
        checkGeneration += 1
    }
    /// A gap found: no check that began before it may record a pass.
    func firstHostLacked(_ reason: String) {
        firstHostLacking = (reason, .now)
        checkGeneration += 1
    }
    /// The first-host scan running now, and the generation it began under (`sharedFirstHostScan`).
    private var firstHostScan: (serial: Int, generation: Int, task: Task<String?, any Error>)?
    /// How many first-host scans this process has started.
    private(set) var firstHostScans = 0
    /// The scan running under `generation` or a later one, or `scan` started now: what the host
    /// lacks, nil for nothing. A check that starts after a failed write or a gap (a new
    /// generation) never takes the answer of a scan begun before it. The answer is recorded
    /// before the scan stops being shared, so a check arriving in between reads the record.
    func sharedFirstHostScan(
        _ generation: Int, _ scan: @escaping @Sendable () async throws -> (behind: String?, keep: Bool)
    ) -> Task<String?, any Error> {
        if let running = firstHostScan, running.generation >= generation { return running.task }
        firstHostScans += 1
        let serial = firstHostScans
        let task = Task { () async throws -> String? in
            defer { self.firstHostScanEnded(serial) }
            let behind: String?, keep: Bool
            do {
                (behind, keep) = try await scan()
            } catch let e as UsageBoxError where e.code == .unavailable {
                (behind, keep) = (e.message, false)  // cannot tell: remembered for a second like a gap
            }
            if let behind {
                self.firstHostLacked(behind)
                return behind
            }
            if keep { self.firstHostChecked(generation) }
            return nil
        }
        firstHostScan = (serial, generation, task)
        return task
    }
    private func firstHostScanEnded(_ serial: Int) {
        if firstHostScan?.serial == serial { firstHostScan = nil }
    }
    /// Each shard's replicas in the cluster's order, once learned (`shardReplicaOrder`).
    private(set) var shardOrder: [(shard: Int, replicas: [ClickHouseMeterStore.ShardReplica])]?
    func setShardOrder(_ order: [(shard: Int, replicas: [ClickHouseMeterStore.ShardReplica])]) { shardOrder = order }
    func firstHostLackedRecently() -> String? {
        firstHostLacking.flatMap { ContinuousClock.now - $0.at < .seconds(1) ? $0.reason : nil }
    }

    /// Whether a task already retries settling (`settleSoon`); claims it if not.
    private var retrying = false
    func claimRetry() -> Bool {
        defer { retrying = true }
        return !retrying
    }
    /// Releases the claim if nothing is left to settle, in the same step as looking, so an event
    /// added in between is never left without a retry.
    func endRetryIfSettled() -> Bool {
        guard !anythingToSettle else { return false }
        retrying = false
        return true
    }
    /// The first `count` are settled (events added meanwhile stay).
    func settled(_ count: Int) {
        unsettled.removeFirst(min(count, unsettled.count))
        settleFailures = 0
    }
    /// Drops everything left to settle (for `verify` to report).
    func giveUpSettling() {
        settled(Int.max)
        lastWritesPending = false
    }
    private var settleFailures = 0
    /// Counts a failed attempt to settle; how many in a row.
    func settleFailed() -> Int {
        settleFailures += 1
        return settleFailures
    }

    func state(_ account: String) -> ClickHouseAccountState? { accounts[account] }
    func set(_ account: String, _ state: ClickHouseAccountState?) { accounts[account] = state }

    /// When the writer lease was last renewed (from before the renewal was sent); nil: not held.
    private(set) var leaseRenewedAt: ContinuousClock.Instant?
    func setLeaseRenewed(_ at: ContinuousClock.Instant?) { leaseRenewedAt = at }
    /// When the writer last took the lease: an insert running since before then is not its own.
    private(set) var leaseTakenAt: ContinuousClock.Instant?
    func setLeaseTaken(_ at: ContinuousClock.Instant) { leaseTakenAt = at }
    /// Forgets what the writer knew of every account and the meters' units (the lease was taken:
    /// another process may have written meanwhile).
    func forgetAccounts() {
        accounts = [:]
        setMeterUnits(nil)
    }

    /// When the ids held pass `limit`, the accounts outside `keeping` (the write just done) drop
    /// theirs, read again at their next write: memory stays bounded however many accounts and
    /// events one writer has written since it started.
    func dropEventIDs(over limit: Int, keeping: Set<String>) {
        guard heldEventIDs() > limit else { return }
        for (account, state) in accounts where state.ids != nil && !keeping.contains(account) { accounts[account]?.ids = nil }
    }

    /// How many event ids the writer holds (a sum over the accounts it knows: one pass per write).
    func heldEventIDs() -> Int { accounts.values.reduce(0) { $0 + ($1.ids?.count ?? 0) } }
    func knownAccounts() -> [String: ClickHouseAccountState] { accounts }
}

/// What an account's writer knows: its open segment and the hash of its last sealed one.
struct ClickHouseAccountState: Sendable {
    var chainHead: String?
    var lastSegmentID: UInt64
    var open: OpenSegmentState?
    /// Σ|quantity| of the account so far (as a Double: only to know when no sum can come near 2^63).
    var magnitude: Double
    /// The hashes of every event id stored for the account, so that a new id needs no lookup; nil
    /// until the account's next write reads them (`heldEventIDs` bounds how many the writer keeps).
    var ids: EventIDSet?
    /// The account's closed periods (`YYYY-MM`), and when they were read (`catalogMaxAge`).
    var closed: Set<String>
    var closedReadAt: ContinuousClock.Instant
}

/// A set of 64-bit hashes of event ids, shared by reference (it grows with every accepted event;
/// only the account's writer, one batch at a time, touches it).
final class EventIDSet: @unchecked Sendable {
    private var hashes = Set<UInt64>()

    static func hash(_ id: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    func contains(_ h: UInt64) -> Bool { hashes.contains(h) }
    func insert(_ h: UInt64) { hashes.insert(h) }
    var count: Int { hashes.count }
}

struct OpenSegmentState: Sendable {
    var id: UInt64
    var openedAt: Int64
    var count: UInt64
    var sum: Int64
    var firstTs: Int64?
    var lastTs: Int64?
    var running: MultisetHash
}

extension ClickHouseMeterStore {
    /// Drops the store's database on every host (tests; never called by the product).
    public func dropDatabase() async throws {
        for shard in shards { try await shard.command("DROP DATABASE IF EXISTS \(names.db)") }
    }

    /// Runs a statement as the store's user, on the first host (tests, tools, the writer).
    public func command(_ sql: String, settings: [String: String] = [:]) async throws {
        do {
            try await client.command(sql, settings: ["max_query_size": "67108864"].merging(settings) { $1 })
        } catch let e as ClickHouseError {
            throw Self.storeError(e) ?? UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }
}

/// Which replica a read tries first: the hosts in the order listed, except that one found
/// unreachable goes last for `retryAfter` after each time it is found so, so reads do not wait on
/// a dead server every time.
final class ReplicaChoice: @unchecked Sendable {
    private let lock = NSLock()
    private var downAt: [ContinuousClock.Instant?]
    let retryAfter: Duration

    init(count: Int, retryAfter: Duration = .seconds(10)) {
        downAt = Array(repeating: nil, count: count)
        self.retryAfter = retryAfter
    }

    func order() -> [Int] {
        lock.withLock {
            let now = ContinuousClock.now
            let down = downAt.map { $0.map { now - $0 < retryAfter } ?? false }
            return downAt.indices.filter { !down[$0] } + downAt.indices.filter { down[$0] }
        }
    }

    func unreachable(_ index: Int) { lock.withLock { downAt[index] = .now } }
    func answered(_ index: Int) { lock.withLock { downAt[index] = nil } }
}

/// The blocks a ClickHouse part holds, from its name (`partition_min_max_level[_mutation]`).
struct PartBlocks: Equatable {
    var partition: Substring
    var min: Int64
    var max: Int64

    init?(_ name: String) {
        let f = name.split(separator: "_")
        guard f.count == 4 || f.count == 5, let min = Int64(f[1]), let max = Int64(f[2]), min <= max else { return nil }
        (partition, self.min, self.max) = (f[0], min, max)
    }

    /// Whether `parts` hold every block of this one (merged or not).
    func covered(by parts: [PartBlocks]) -> Bool {
        var next = min
        for p in parts.filter({ $0.partition == partition }).sorted(by: { $0.min < $1.min }) where p.min <= next && p.max >= next {
            next = p.max + 1
            if next > max { return true }
        }
        return next > max
    }
}
