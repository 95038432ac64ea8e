import Metering

/// The ClickHouse schema, as numbered migrations. **A migration is never edited once landed; a
/// change is a new migration.** Statements name tables and engines through `ClickHouseSchema.Names`,
/// so the same migration builds a single server's tables, a cluster's local tables on every shard
/// with Distributed tables over them, or either with replicated engines (and renders, for a store
/// that is not replicated, the very text it landed with: `ClickHouseSchemaTests`).
enum ClickHouseSchema {
    /// Where each table lives in this store.
    struct Names {
        let db: String
        let cluster: String?
        var replicated = false

        /// A table every query names: the Distributed table over the shards in a cluster.
        func table(_ name: String) -> String { "\(db).\(name)" }
        /// The table on each shard (the same table without a cluster).
        func local(_ name: String) -> String { cluster == nil ? "\(db).\(name)" : "\(db).\(name)_local" }

        /// A table's engine: `base` as it is (`MergeTree`, `ReplacingMergeTree(version)`), or on a
        /// replicated store its `Replicated…` form, kept in ZooKeeper under the database and table,
        /// each server under its `{replica}` macro. In a cluster a sharded table's path has the
        /// `{shard}`, and a small table (every host a replica of it) names its replicas
        /// `{shard}-{replica}`, since replica names repeat from shard to shard.
        func engine(_ base: String, _ table: String, sharded: Bool = false) -> String {
            guard replicated else { return base }
            let path = "/clickhouse/usagebox/\(db)/\(sharded && cluster != nil ? "{shard}/" : "")\(table)"
            let replica = !sharded && cluster != nil ? "{shard}-{replica}" : "{replica}"
            let open = base.firstIndex(of: "(")
            let name = open.map { String(base[..<$0]) } ?? base
            let args = open.map { String(base[base.index(after: $0)..<base.index(before: base.endIndex)]) } ?? ""
            return "Replicated\(name)('\(path)', '\(replica)'\(args.isEmpty ? "" : ", \(args)"))"
        }
    }

    /// Statements of one migration: on every shard, then on the first host only.
    struct Step {
        var everyShard: [String] = []
        var firstHost: [String] = []
    }

    struct Migration: Sendable {
        var version: Int
        var name: String
        var build: @Sendable (Names) -> Step
    }

    /// 2^32, as a signed constant: quantities are summed as high and low halves so that a sum past
    /// 64 bits is detected when read, never wrapped.
    static let half = "toInt64(4294967296)"

    static let migrations: [Migration] = [
        Migration(version: 1, name: "events, rollups, segments, keys, meters, periods, reconciliations") { n in
            var step = Step()
            step.everyShard = [
                """
                CREATE TABLE IF NOT EXISTS \(n.local("events")) (
                    account_id String, event_id String, meter_id String, model_id Nullable(String), kind String,
                    correction_ref Nullable(String), quantity Int64, unit Nullable(String), ts Int64,
                    dim_keys Array(String), dim_values Array(String), dimensions String, content String,
                    segment_id UInt64, ordinal UInt64, post_close UInt8, ingested_at Int64
                ) ENGINE = \(n.engine("MergeTree", "events", sharded: true)) PARTITION BY toYYYYMM(toDateTime(intDiv(ts, 1000000), 'UTC')) ORDER BY (account_id, event_id)
                """,
                rollupTable(n, "rollup_hour", bucket: "hour"), rollupTable(n, "rollup_day", bucket: "day"),
                rollupView(n, "rollup_hour", bucket: "hour", micros: "3600000000"),
                rollupView(n, "rollup_day", bucket: "day", micros: "86400000000"),
            ]
            if let cluster = n.cluster {
                step.everyShard += [
                    "CREATE TABLE IF NOT EXISTS \(n.table("events")) AS \(n.local("events")) "
                        + "ENGINE = Distributed(\(cluster), \(n.db), events_local, cityHash64(account_id))",
                    "CREATE TABLE IF NOT EXISTS \(n.table("rollup_hour")) AS \(n.local("rollup_hour")) "
                        + "ENGINE = Distributed(\(cluster), \(n.db), rollup_hour_local, cityHash64(account_id))",
                    "CREATE TABLE IF NOT EXISTS \(n.table("rollup_day")) AS \(n.local("rollup_day")) "
                        + "ENGINE = Distributed(\(cluster), \(n.db), rollup_day_local, cityHash64(account_id))",
                ]
            }
            step.firstHost = [
                """
                CREATE TABLE IF NOT EXISTS \(n.table("segments")) (
                    account_id String, segment_id UInt64, opened_at Int64, sealed_at Nullable(Int64), event_count UInt64, sum Int64,
                    first_ts Nullable(Int64), last_ts Nullable(Int64), sha256 Nullable(String), prev_sha256 Nullable(String),
                    running_hash String, version UInt64
                ) ENGINE = \(n.engine("ReplacingMergeTree(version)", "segments")) ORDER BY (account_id, segment_id)
                """,
                """
                CREATE TABLE IF NOT EXISTS \(n.table("segment_checks")) (
                    account_id String, segment_id UInt64, checked_at Int64, corrupt_reason Nullable(String)
                ) ENGINE = \(n.engine("MergeTree", "segment_checks")) ORDER BY (account_id, segment_id, checked_at)
                """,
                """
                CREATE TABLE IF NOT EXISTS \(n.table("periods")) (account_id String, period String, closed_at Int64)
                ENGINE = \(n.engine("MergeTree", "periods")) ORDER BY (account_id, period)
                """,
                """
                CREATE TABLE IF NOT EXISTS \(n.table("meters")) (
                    meter_id String, unit Nullable(String), rollup_dimensions Nullable(String), version UInt64
                ) ENGINE = \(n.engine("ReplacingMergeTree(version)", "meters")) ORDER BY meter_id
                """,
                """
                CREATE TABLE IF NOT EXISTS \(n.table("api_keys")) (
                    key_id String, secret_sha256 String, account_id Nullable(String), role String, created_at Int64,
                    revoked_at Nullable(Int64), version UInt64
                ) ENGINE = \(n.engine("ReplacingMergeTree(version)", "api_keys")) ORDER BY key_id
                """,
                """
                CREATE TABLE IF NOT EXISTS \(n.table("reconciliations")) (
                    id String, vendor String, created_at Int64, run_by String, report String, applied_at Nullable(Int64), version UInt64
                ) ENGINE = \(n.engine("ReplacingMergeTree(version)", "reconciliations")) ORDER BY id
                """,
                // The read-only SQL endpoint's one table, as on every backend (docs/api.md).
                """
                CREATE VIEW IF NOT EXISTS \(n.table("usage_events")) AS SELECT event_id, account_id, meter_id, model_id, kind, correction_ref,
                    quantity, unit,
                    concat(formatDateTime(toDateTime(intDiv(ts, 1000000), 'UTC'), '%Y-%m-%dT%H:%M:%S', 'UTC'),
                           if(ts % 1000000 = 0, '', concat('.', substring(toString(1000000 + ts % 1000000), 2))), 'Z') AS timestamp,
                    dimensions
                FROM \(n.table("events"))
                """,
            ]
            return step
        },
        // The writer lease (ClickHouseMeterStore+WriterLease.swift): two processes writing one
        // account stored ids twice, each deciding from what it had read.
        Migration(version: 2, name: "writers: the lease of each account's one writer") { n in
            var step = Step()
            step.firstHost = [
                """
                CREATE TABLE IF NOT EXISTS \(n.table("writers")) (
                    instance String, of UInt32, node UInt32, host String, pid UInt32, heartbeat_at DateTime, released UInt8, version UInt64
                ) ENGINE = \(n.engine("ReplacingMergeTree(version)", "writers")) ORDER BY instance
                """
            ]
            return step
        },
        // A new meter's unit, claimed by every writer that records one: a plain MergeTree, so no
        // merge drops a claim (the meters table's ReplacingMergeTree may merge two owners' rows
        // into the newest before either has read them back).
        Migration(version: 3, name: "meter unit claims") { n in
            var step = Step()
            step.firstHost = [
                """
                CREATE TABLE IF NOT EXISTS \(n.table("meter_unit_claims")) (meter_id String, unit String, claimed_at Int64)
                ENGINE = \(n.engine("MergeTree", "meter_unit_claims")) ORDER BY meter_id
                """
            ]
            return step
        },
        // Segments sealed from now on mark post-close events in their hash (rule 2): clearing an
        // event's post_close no longer passes verify. Rows written before, or by an older writer
        // still running, read as rule 1 and are re-hashed as they were sealed.
        Migration(version: 4, name: "segments' hash rule") { n in
            var step = Step()
            step.firstHost = ["ALTER TABLE \(n.table("segments")) ADD COLUMN hash_rule UInt8 DEFAULT 1"]
            return step
        },
        // What a list of runs shows of each, written beside its report: the `/ui/` index read 200
        // reports whole (tester S2). Empty for runs recorded before (or by an older writer still
        // running): read from the report.
        Migration(version: 5, name: "reconciliations' summaries") { n in
            var step = Step()
            step.firstHost = ["ALTER TABLE \(n.table("reconciliations")) ADD COLUMN summary String DEFAULT ''"]
            return step
        },
    ]

    static var latest: Int { migrations.map(\.version).max() ?? 0 }

    static func rollupTable(_ n: Names, _ name: String, bucket: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS \(n.local(name)) (
            account_id String, meter_id String, model_id String, kind String, unit String, dimensions String,
            dim_keys Array(String), dim_values Array(String), \(bucket) Int64,
            sum_hi AggregateFunction(sum, Int64), sum_lo AggregateFunction(sum, Int64), count AggregateFunction(count),
            min AggregateFunction(min, Int64), max AggregateFunction(max, Int64)
        ) ENGINE = \(n.engine("AggregatingMergeTree", name, sharded: true)) PARTITION BY intDiv(\(bucket), \(bucket == "hour" ? 744 : 31))
        ORDER BY (account_id, \(bucket), meter_id, model_id, kind, unit, dimensions)
        """
    }

    /// Rollups are computed by ClickHouse inside each insert of events (a materialized view), so an
    /// acknowledged insert is in the rollups too; reads merge the states and never wait for merges.
    static func rollupView(_ n: Names, _ name: String, bucket: String, micros: String) -> String {
        "CREATE MATERIALIZED VIEW IF NOT EXISTS \(n.db).\(name)_mv TO \(n.local(name)) AS\n"
            + rollupSelect(bucket: bucket, micros: micros, from: n.local("events"))
    }

    /// The rows of a rollup table for the events of `from` (and `filter`): what the materialized
    /// view adds for each insert, and what ingest adds when a view's part was lost (`settleRollups`).
    static func rollupSelect(bucket: String, micros: String, from: String, filter: String = "") -> String {
        """
        SELECT account_id, meter_id, ifNull(model_id, '') AS model_id, kind, ifNull(unit, '') AS unit, dimensions,
               any(dim_keys) AS dim_keys, any(dim_values) AS dim_values, intDiv(ts, \(micros)) AS \(bucket),
               sumState(intDiv(quantity, \(half))) AS sum_hi, sumState(quantity % \(half)) AS sum_lo, countState() AS count,
               minState(quantity) AS min, maxState(quantity) AS max
        FROM \(from)\(filter.isEmpty ? "" : " WHERE \(filter)") GROUP BY account_id, meter_id, model_id, kind, unit, dimensions, \(bucket)
        """
    }

    /// A rollup table, with its bucket column and the bucket's width.
    struct Rollup: Sendable {
        var table: String
        var bucket: String
        var hours: Int64
        var micros: Int64 { hours * Timestamp.microsPerHour }

        /// The table a span of a grouped read is answered from (a rollup level, not `.raw`).
        static func of(_ level: UsagePlan.Level) -> Rollup {
            precondition(level != .raw, "raw spans are read from events")
            return rollups.first { $0.hours == (level == .dayRollup ? 24 : 1) }!
        }
    }

    /// The coarsest rollup: the fewest rows holding every rollup key seen (the meters and
    /// dimensions a store has rolled up).
    static var everyKey: Rollup { rollups.max { $0.hours < $1.hours }! }

    /// The rollup tables, finest first: every reader, verify and settling go through this list
    /// (migration 1 spells them out, as it landed).
    static let rollups = [Rollup(table: "rollup_hour", bucket: "hour", hours: 1), Rollup(table: "rollup_day", bucket: "day", hours: 24)]
}
