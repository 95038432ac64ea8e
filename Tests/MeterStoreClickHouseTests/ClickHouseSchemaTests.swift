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
