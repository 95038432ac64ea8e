import Metering
import Testing

@testable import MeterStoreClickHouse

/// Migrations are never edited once landed. Migration 1 renders, for a plain store and for a
/// cluster, exactly the statements it rendered when it landed (a fingerprint of their text),
/// whatever the code that builds them becomes; replicated stores get the same tables with
/// replicated engines.
@Suite struct ClickHouseSchemaTests {
    static func statements(_ names: ClickHouseSchema.Names, version: Int = 1) -> ClickHouseSchema.Step {
        ClickHouseSchema.migrations.first { $0.version == version }!.build(names)
    }

    static func fingerprint(_ step: ClickHouseSchema.Step) -> UInt64 {
        EventIDSet.hash((step.everyShard + ["-- first host --"] + step.firstHost).joined(separator: "\n;\n"))
    }

    @Test func migrationOneRendersAsWhenItLanded() {
        #expect(Self.fingerprint(Self.statements(.init(db: "usagebox", cluster: nil))) == 14_263_336_935_308_997_248)
        #expect(Self.fingerprint(Self.statements(.init(db: "usagebox", cluster: "usagebox_test"))) == 218_017_081_443_085_729)
    }

    /// On a replicated store every table, the small ones too, has a replicated engine kept under
    /// the database and table in ZooKeeper (with `{shard}` for a cluster's sharded tables), and
    /// `migrate` creates the small tables on every host, each a replica.
    @Test func aReplicatedStoreReplicatesEveryTable() {
        for cluster in [nil, "usagebox_test"] as [String?] {
            let step = Self.statements(.init(db: "ub", cluster: cluster, replicated: true))
            let tables = (step.everyShard + step.firstHost).filter { $0.hasPrefix("CREATE TABLE") && !$0.contains("Distributed") }
            #expect(tables.count == 9)
            for sql in tables { #expect(sql.contains("ENGINE = Replicated") && sql.contains("{replica}'"), "\(sql.prefix(80))") }
            // Every host holds the small tables: in a cluster their replicas are named per shard too.
            #expect(
                step.firstHost.filter { $0.contains("ENGINE = Replicated") }.allSatisfy {
                    $0.contains(cluster == nil ? "'{replica}'" : "'{shard}-{replica}'")
                })
            let sharded = step.everyShard.filter { $0.contains("ENGINE = Replicated") }
            #expect(sharded.count == 3 && sharded.allSatisfy { $0.contains("/clickhouse/usagebox/ub/\(cluster == nil ? "" : "{shard}/")") })
            #expect(step.firstHost.filter { $0.contains("/{shard}/") }.isEmpty, "every host holds the small tables whole")
        }
        #expect(
            ClickHouseSchema.Names(db: "ub", cluster: nil, replicated: true).engine("ReplacingMergeTree(version)", "meters")
                == "ReplicatedReplacingMergeTree('/clickhouse/usagebox/ub/meters', '{replica}', version)")
    }

    @Test func aStoreURLSaysWhetherItIsReplicated() throws {
        #expect(try ClickHouseLocation(url: "clickhouse://a:1,b:2/ub?replicated=true").replicated)
        #expect(try !ClickHouseLocation(url: "clickhouse://a:1/ub").replicated)
        #expect(throws: (any Error).self) { try ClickHouseLocation(url: "clickhouse://a:1/ub?replicated=maybe") }
    }

    /// A host is host:port: `127.0.0.1:18123#` sent every statement's settings (readonly, limits,
    /// user, password) as a URL fragment. A database name is ASCII, as ClickHouse's unquoted names
    /// are, and short; the password never shows in messages or logs.
    @Test func aStoreURLNamesHostsAndADatabaseClickHouseCanUse() throws {
        for good in ["clickhouse://127.0.0.1:18123/ub", "clickhouse://ch-1.example.com:8123,[::1]:8123/ub_2"] {
            #expect(throws: Never.self) { try ClickHouseLocation(url: good) }
        }
        for bad in [
            "clickhouse://127.0.0.1:18123#/ub", "clickhouse://127.0.0.1/ub", "clickhouse://h:99999/ub", "clickhouse://h:1 /ub", "clickhouse://u@h:1/ub",
            "clickhouse://h:1/t2_é", "clickhouse://h:1/\(String(repeating: "a", count: 65))", "clickhouse://h:1/ub?cluster=c%23",
        ] {
            #expect(throws: UsageBoxError.self, "\(bad)") { try ClickHouseLocation(url: bad) }
        }
        #expect(ClickHouseLocation.redacted("clickhouse://h:1/ub?user=u&password=pw_SECRET&cluster=c") == "clickhouse://h:1/ub?user=u&password=***&cluster=c")
        #expect(ClickHouseLocation.redacted("clickhouse://h:1/ub?password=a1&password=pw_SECRET") == "clickhouse://h:1/ub?password=***&password=***")
        do {
            _ = try ClickHouseLocation(url: "Clickhouse://h:1/ub?password=pw_SECRET")
        } catch let e as UsageBoxError {
            #expect(!e.message.contains("pw_SECRET"))
        }
    }

    /// A replica is complete when its parts hold every block another replica recorded, merged or not.
    @Test func aPartIsCoveredByTheBlocksOfMergedOrUnmergedParts() {
        let local = ["202605_0_25_5", "202605_26_26_0", "202605_27_30_1", "202606_0_3_1"].compactMap(PartBlocks.init)
        #expect(PartBlocks("202605_0_0_0")!.covered(by: local))
        #expect(PartBlocks("202605_20_28_2")!.covered(by: local), "across a merged and an unmerged part")
        #expect(!PartBlocks("202605_31_31_0")!.covered(by: local), "a block nobody here holds")
        #expect(!PartBlocks("202606_4_4_0")!.covered(by: local), "same blocks, other partition")
        #expect(PartBlocks("all_1_1_0_7") != nil && PartBlocks("nonsense") == nil)
    }

    /// Reads move off a host found unreachable for a while, then try it first again.
    @Test func aReplicaFoundUnreachableIsTriedLastForAWhile() async throws {
        let choice = ReplicaChoice(count: 3, retryAfter: .milliseconds(200))
        #expect(choice.order() == [0, 1, 2])
        choice.unreachable(0)
        #expect(choice.order() == [1, 2, 0])
        try await Task.sleep(for: .milliseconds(250))
        #expect(choice.order() == [0, 1, 2])
        choice.unreachable(1)
        choice.answered(1)
        #expect(choice.order() == [0, 1, 2])
        choice.unreachable(0)  // down again after its first window passed: last again, for a new window
        #expect(choice.order() == [1, 2, 0])
    }

    /// The writer's reads stay on the host it writes to: they run inside `exclusive`, which marks
    /// its task; every other read may move to a replica.
    @Test func theWritersReadsAreMarked() async throws {
        let writer = ClickHouseWriter()
        #expect(!ClickHouseWriter.writing)
        let inside = try await writer.exclusive { ClickHouseWriter.writing }
        #expect(inside && !ClickHouseWriter.writing)
    }
}

/// The SQL endpoint's guard on ClickHouse (no server needed): one SELECT of usage_events.
@Suite struct ClickHouseSQLGuardTests {
    @Test(arguments: [
        "SELECT model_id, SUM(quantity) FROM usage_events GROUP BY model_id",
        "select count() AS events from USAGE_EVENTS where model_id IN ('a', 'b')",
        "SELECT count() FROM usage_events WHERE (account_id, model_id) IN (('a', 'b')) AND quantity NOT IN (1, 2)",
        "SELECT * FROM usage_events AS u WHERE u.model_id IN (SELECT model_id FROM usage_events)",
        "WITH 1 AS x SELECT x FROM usage_events",
        "SELECT * FROM (SELECT account_id FROM usage_events) AS t WHERE account_id != 'x'",
        "SELECT a.event_id FROM usage_events AS a ANY LEFT JOIN usage_events AS b USING event_id",
        "SELECT v FROM usage_events ARRAY JOIN [1, 2] AS v",
        "SELECT 'FROM api_keys', \"quantity\" FROM `usage_events`",
        "SELECT 1 -- FROM api_keys\nFROM usage_events /* JOIN system.one */",
        "SELECT toHour(now()), tuple(1, 2).1",
        "SELECT extract(DAY FROM ts), EXTRACT(HOUR FROM ts), substring(model_id FROM 2) FROM usage_events",
        "SELECT count() FROM usage_events WHERE event_id LIKE '%;%'",
    ])
    func aSelectOfUsageEventsPasses(_ sql: String) throws {
        try ClickHouseSQLGuard.check(sql)
    }

    @Test(arguments: [
        "SHOW DATABASES", "DESCRIBE usage_events", "EXISTS usage_events", "KILL QUERY WHERE 1 SYNC", "SET readonly = 0",
        "SELECT * FROM numbers(10)", "SELECT v FROM t2_secret.s", "SELECT * FROM usage_events.x", "SELECT 1 FROM \"system\".\"one\"",
        "SELECT * FROM `api_keys`", "SELECT * FROM usage_events AS u, api_keys", "SELECT * FROM (SELECT 1) AS a, api_keys",
        "SELECT 1 FROM usage_events WHERE 1 IN system.one", "SELECT 1 FROM usage_events WHERE 1 GLOBAL NOT IN api_keys",
        "SELECT joinGet('j', 'v', 1)", "SELECT dictGetString('d', 'a', toUInt64(1))", "SELECT * FROM usage_events JOIN url('http://x', CSV, 'a String')",
        "SELECT * FROM usage_events AS a JOIN api_keys AS b USING key_id", "SELECT 1 FROM usage_events WHERE x = 'open",
        "SELECT (SELECT max(secret_sha256) FROM api_keys)", "SELECT * FROM usage_events AS ALL, api_keys",
        "SELECT * FROM (SELECT 1) AS ON, system.processes", "SELECT 1 FROM usage_events WHERE 1 IN (api_keys)",
        "SELECT notIn(1, api_keys)", "SELECT globalIn(1, api_keys)",
        "SELECT 1 FROM usage_events; SELECT 2", "SELECT extract(DAY FROM (SELECT max(ts) FROM api_keys))",
        "SELECT substring((SELECT secret_sha256 FROM api_keys) FROM 1)", "SELECT * FROM extract(DAY FROM now())",
        "SELECT extract(DAY FROM now()) FROM api_keys",
    ])
    func anythingElseIsRefused(_ sql: String) {
        #expect(throws: UsageBoxError.self, "\(sql)") { try ClickHouseSQLGuard.check(sql) }
    }

    @Test func numberTypesAreNumbersOnly() {
        #expect(["Int64", "UInt8", "Float64", "Nullable(Int64)", "Decimal(10, 2)"].allSatisfy(ClickHouseMeterStore.isNumberType))
        #expect(
            !["Enum8('Int' = 1)", "String", "AggregateFunction(sum, Int64)", "Array(Int64)", "Nullable(String)"].contains(
                where: ClickHouseMeterStore.isNumberType))
    }
}
