import Foundation
import GRDB
import MeterStoreSQLite
import Metering
import Testing
import UsageBoxTesting

/// Backups that restore: taken while ingest runs, checked by a deep verify before anything is replaced.
@Suite struct BackupTests {
    let dir: TemporaryDirectory

    init() throws { dir = try TemporaryDirectory() }

    static func batch(_ b: Int, size: Int = 500) -> [IngestItem] {
        (0..<size).map { i in
            Fixture.event(
                "b\(b)-\(i)", account: "acct_\(i % 3)", quantity: Int64(i + 1),
                at: Timestamp(microseconds: Fixture.ts("2026-05-01T00:00:00Z").microseconds + Int64(b * size + i) * 60_000_000).rfc3339,
                dims: ["token_type": i % 2 == 0 ? "input" : "output"])
        }
    }

    @Test func aBackupTakenMidIngestRestoresAndVerifies() async throws {
        let live = try SQLiteMeterStore(location: .file(dir.path("live.db")))
        _ = try await live.ingest(Self.batch(0))  // so the backup holds at least one batch, however fast it starts
        let writer = Task {
            for b in 1..<40 { _ = try await live.ingest(Self.batch(b)) }
        }
        try await Task.sleep(for: .milliseconds(50))
        try await live.backup(to: dir.path("backup.db"))
        try await writer.value

        let (accounts, events) = try await SQLiteMeterStore.restore(from: dir.path("backup.db"), to: dir.path("restored.db"))
        #expect(accounts == 3 && events >= 500 && events <= 20_000, "a consistent prefix of the ingest: \(events)")
        let restored = try SQLiteMeterStore(location: .file(dir.path("restored.db")))
        let all = try TimeRange(from: Timestamp(microseconds: 0), to: Fixture.ts("2027-01-01T00:00:00Z"))
        for account in ["acct_0", "acct_1", "acct_2"] {
            let v = try await restored.verify(VerifyRequest(account: account, range: all, mode: .deep))
            #expect(v.ok && v.drift == 0, "\(account)")
        }
        // The restored store takes new events like any other.
        #expect(try await restored.ingest([Fixture.event("after", quantity: 1)]).accepted == 1)
        await #expect(throws: UsageBoxError.self, "a backup never overwrites a file") { try await live.backup(to: dir.path("backup.db")) }
    }

    /// A copy of a store taken as files (`cp s.db s.db-wal snap/`) holds its last commits in the
    /// `-wal`: restore copied the main file alone, and an empty store verified and replaced a good
    /// one. A backup named through a relative symbolic link was copied as the link (pointing at
    /// nothing beside the target: an empty store again), and a store restored onto itself lost
    /// its own WAL. All three restore every event now, or refuse.
    @Test func aBackupIsReadAsSQLiteReadsItWALAndLinksIncluded() async throws {
        let fm = FileManager.default
        let live = try SQLiteMeterStore(location: .file(dir.path("live.db")))
        _ = try await live.ingest(Self.batch(0, size: 50))
        try fm.createDirectory(atPath: dir.path("snap"), withIntermediateDirectories: true)
        for suffix in ["", "-wal"] { try fm.copyItem(atPath: dir.path("live.db") + suffix, toPath: dir.path("snap/live.db") + suffix) }
        #expect(fm.fileExists(atPath: dir.path("snap/live.db-wal")), "the commits are in the WAL, as after an ingest")
        let target = try SQLiteMeterStore(location: .file(dir.path("target.db")))
        _ = try await target.ingest([Fixture.event("keep", quantity: 42)])
        _ = consume target
        let restored = try await SQLiteMeterStore.restore(from: dir.path("snap/live.db"), to: dir.path("target.db"))
        #expect(restored.events == 50, "\(restored)")

        try fm.createSymbolicLink(atPath: dir.path("snap/latest.db"), withDestinationPath: "live.db")
        let linked = try await SQLiteMeterStore.restore(from: dir.path("snap/latest.db"), to: dir.path("linked.db"))
        #expect(linked.events == 50, "\(linked)")
        let attributes = try fm.attributesOfItem(atPath: dir.path("linked.db"))
        #expect(attributes[.type] as? FileAttributeType == .typeRegular, "the store is a file, not a link")

        await #expect {
            _ = try await SQLiteMeterStore.restore(from: dir.path("live.db"), to: dir.path("live.db"))
        } throws: { ($0 as? UsageBoxError)?.message.contains("is the store") == true }
        let all = try TimeRange(from: Timestamp(microseconds: 0), to: Fixture.ts("2027-01-01T00:00:00Z"))
        #expect(try await live.usage(UsageQuery(scope: .all, range: all)).groups.first?.aggregate.count == 50)
    }

    @Test func aBackupThatDoesNotVerifyReplacesNothing() async throws {
        let live = try SQLiteMeterStore(location: .file(dir.path("live.db")))
        _ = try await live.ingest(Self.batch(0))
        try await live.backup(to: dir.path("backup.db"))
        // Edit a rollup in the backup behind the store's back.
        let queue = try DatabaseQueue(path: dir.path("backup.db"))
        try await queue.write {
            try $0.execute(sql: "UPDATE rollup_hour SET sum = sum + 1 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour LIMIT 1)")
        }
        try queue.close()
        let target = try SQLiteMeterStore(location: .file(dir.path("target.db")))
        _ = try await target.ingest([Fixture.event("keep", quantity: 42)])
        do {
            _ = try await SQLiteMeterStore.restore(from: dir.path("backup.db"), to: dir.path("target.db"))
            Issue.record("a drifting backup was restored")
        } catch let e as UsageBoxError {
            #expect(e.message.contains("does not verify") && e.message.contains("nothing was restored"))
            #expect(e.message.hasPrefix(dir.path("backup.db") + " "), "names the file given, not the staging copy: \(e.message)")
        }
        let kept = try await target.usage(UsageQuery(scope: .all, range: Fixture.may))
        #expect(kept.groups.first?.aggregate.sum == 42, "the store is as it was")
        #expect(!FileManager.default.fileExists(atPath: dir.path("target.db.restoring")))
    }

    /// A restore while a server had the store open succeeded: the server went on acknowledging
    /// events into the replaced file, lost when it stopped. It is refused while any process has
    /// the store open, and goes ahead once it is closed.
    @Test func aStoreOpenElsewhereIsNotReplaced() async throws {
        let source = try SQLiteMeterStore(location: .file(dir.path("source.db")))
        _ = try await source.ingest(Self.batch(0))
        try await source.backup(to: dir.path("backup.db"))
        var serving: SQLiteMeterStore? = try SQLiteMeterStore(location: .file(dir.path("serving.db")))
        _ = try await serving?.ingest([Fixture.event("keep", quantity: 42)])
        do {
            _ = try await SQLiteMeterStore.restore(from: dir.path("backup.db"), to: dir.path("serving.db"))
            Issue.record("a store open elsewhere was replaced")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("open in another process") && e.message.contains("nothing was restored"), "\(e.message)")
        }
        #expect(try await serving?.usage(UsageQuery(scope: .all, range: Fixture.may)).groups.first?.aggregate.sum == 42, "untouched")
        #expect(!FileManager.default.fileExists(atPath: dir.path("serving.db.restoring")))
        serving = nil
        let (accounts, _) = try await SQLiteMeterStore.restore(from: dir.path("backup.db"), to: dir.path("serving.db"))
        #expect(accounts == 3)
    }
}
