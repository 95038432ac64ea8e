import Foundation
import MeterStoreClickHouse
import Metering
import Testing
import UsageBoxApp
import UsageBoxTesting

/// The same conformance suite as SQLite, against a ClickHouse server: run when
/// USAGEBOX_CLICKHOUSE_URL names one (`scripts/clickhouse test` starts one on loopback), skipped
/// otherwise. Each check gets a database of its own, dropped afterwards.
enum ClickHouseUnderTest {
    /// `clickhouse://host:port[,host:port]/?cluster=NAME`: the database part is chosen per check.
    static let url = ProcessInfo.processInfo.environment["USAGEBOX_CLICKHOUSE_URL"]

    /// `url` naming a new database (`ubtest_…`), its settings kept.
    static func newDatabaseURL() throws -> String {
        guard let url else { throw CocoaError(.featureUnsupported) }
        let name = "ubtest_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        var base = url
        var query = ""
        if let q = base.firstIndex(of: "?") {
            query = String(base[q...])
            base = String(base[..<q])
        }
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/\(name)\(query)"
    }

    /// A store on a new database. `slot`: its place, as the writer lease compares it (a test that
    /// plays two writers of one account gives them two places of one split).
    static func fresh(
        segmentMaxEvents: Int64 = 100_000, slot: WriterSlot = .alone
    ) async throws -> (
        ClickHouseMeterStore, drop: @Sendable () async -> Void
    ) {
        let location = try ClickHouseLocation(url: try newDatabaseURL())
        let store = try ClickHouseMeterStore(location: location, segmentMaxEvents: segmentMaxEvents, slot: slot)
        try await store.migrate()
        return (store, { try? await store.dropDatabase() })
    }
}

@Suite(.enabled(if: ClickHouseUnderTest.url != nil, "set USAGEBOX_CLICKHOUSE_URL (scripts/clickhouse test)"), .serialized)
struct ClickHouseConformanceTests {
    @Test(arguments: MeterStoreConformance.checks + ServerStoreConformance.checks)
    func conformance(_ check: ConformanceCheck) async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        do {
            try await check.run(store)
        } catch {
            await drop()
            throw error
        }
        await drop()
    }

    @Test func aStoreAtANewerSchemaIsRefused() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        try await store.command("INSERT INTO \(store.location.database).schema_version VALUES (999, 0)")
        do {
            try await store.checkSchema()
            Issue.record("a store at schema 999 was opened")
        } catch let e as UsageBoxError {
            #expect(e.message.contains("newer than this usagebox"))
        }
        await #expect(throws: UsageBoxError.self) { try await store.migrate() }
        await drop()
    }

    /// The URL must say how the store was created: each of its options flipped is refused with the
    /// option to set, and migrate refuses it too (it would otherwise add nothing and say nothing).
    @Test func aStoreOpenedWithTheWrongLayoutIsRefused() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        var flipped = [store.location, store.location]
        flipped[0].replicated.toggle()
        flipped[1].cluster = store.location.cluster == nil ? "usagebox_test" : nil
        if store.location.cluster != nil {
            flipped.append(store.location)
            flipped[2].cluster = "usagebox_other"
        }
        for location in flipped {
            let wrong = try ClickHouseMeterStore(location: location)
            for attempt in [wrong.checkSchema, { _ = try await wrong.migrate() }] {
                do {
                    try await attempt()
                    Issue.record("a store was opened with \(location)")
                } catch let e as UsageBoxError {
                    let option =
                        location.replicated != store.location.replicated
                        ? "?replicated=true"
                        : store.location.cluster == nil ? "without ?cluster=" : location.cluster == nil ? "with the ?cluster=" : "created on cluster"
                    #expect(e.message.contains(option), "\(e.message)")
                }
            }
        }
        try await store.checkSchema()
        let again = try await store.migrate()
        #expect(again.from == again.to, "opened as created: nothing to do")
        await drop()
    }
}
