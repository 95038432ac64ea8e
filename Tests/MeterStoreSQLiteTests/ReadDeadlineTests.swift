import Foundation
import GRDB
import Metering
import Testing

@testable import MeterStoreSQLite

/// A request's store reads stop at its deadline (tester R2: a JSON read, verify or explain of
/// 300,000 events took 8–26 s with nothing to stop it), and when its client leaves.
@Suite struct ReadDeadlineTests {
    /// Counts to a billion: minutes for SQLite, unless something stops it.
    static let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c"
    static let short = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*) FROM c"

    @Test func aReadStopsAtItsDeadlineAndTheConnectionReadsOnAfter() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        do {
            _ = try await WorkDeadline(seconds: 0.3, hint: " (test)").run {
                try await store.boundedRead { db in try Int.fetchOne(db, sql: Self.endless) }
            }
            Issue.record("a read past its deadline answered")
        } catch let e as UsageBoxError {
            #expect(e.code == .timeout && e.message.hasSuffix(" (test)"), "\(e.message)")
        }
        // The progress callback went with the read: the next reader of the connection, with a
        // deadline long past, is not interrupted.
        #expect(try await store.writer.read { db in try Int.fetchOne(db, sql: Self.short) } == 200_000)
        // Without a deadline (the CLI) a read is plain.
        #expect(try await store.boundedRead { db in try Int.fetchOne(db, sql: Self.short) } == 200_000)
    }

    @Test func aReadStopsWhenItsClientLeaves() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        let read = Task {
            try await WorkDeadline(seconds: 600).run {
                try await store.boundedRead { db in try Int.fetchOne(db, sql: Self.endless) }
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        read.cancel()
        await #expect(throws: CancellationError.self) { _ = try await read.value }
    }
}
