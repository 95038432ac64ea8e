import Foundation
import GRDB
public import Metering

extension SQLiteMeterStore {
    /// Copies the store, consistent at one instant, into a new file with SQLite's online backup
    /// (safe while `usagebox serve` writes: the copy is of one committed state).
    public func backup(to path: String) async throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw UsageBoxError.invalidArgument("\(path) already exists; a backup never overwrites a file", field: "to")
        }
        try await wrap {
            let target = try DatabaseQueue(path: path)
            try writer.backup(to: target)
            try target.close()
        }
    }

    /// Checks a backup before anything is replaced: it opens as a store (migrated when older), and
    /// a deep verify of every account over all time finds no drift and no corrupt segment.
    public static func checkBackup(at path: String) async throws -> (accounts: Int, events: Int64) {
        let store = try SQLiteMeterStore(location: .file(path))
        let all = try TimeRange(from: Timestamp(microseconds: 0), to: Timestamp(rfc3339: "9999-01-01T00:00:00Z")!)
        let accounts = try await store.usage(UsageQuery(scope: .all, range: all, groupBy: [.accountID]))
        var events: Int64 = 0
        for g in accounts.groups {
            guard let account = g.keys[0] else { continue }
            events += g.aggregate.count
            let v = try await store.verify(VerifyRequest(account: account, range: all, mode: .deep))
            guard v.ok else {
                throw UsageBoxError(
                    .conflict,
                    "\(path) does not verify: account \(account) has drift \(v.drift) and \(v.segmentsCorrupt) corrupt segment(s); nothing was restored")
            }
        }
        return (accounts.groups.count, events)
    }

    /// Replaces the store at `target` with a checked copy of `backup`. Stop the server first: the
    /// file is swapped underneath any process that has it open.
    public static func restore(from backup: String, to target: String) async throws -> (accounts: Int, events: Int64) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: backup) else { throw UsageBoxError.invalidArgument("\(backup): no such file", field: "from") }
        let staging = target + ".restoring"
        for f in [staging, staging + "-wal", staging + "-shm"] { try? fm.removeItem(atPath: f) }
        try fm.copyItem(atPath: backup, toPath: staging)
        let checked: (accounts: Int, events: Int64)
        do {
            checked = try await checkBackup(at: staging)
        } catch {
            for f in [staging, staging + "-wal", staging + "-shm"] { try? fm.removeItem(atPath: f) }
            throw error
        }
        // Nobody may have the store open while it is replaced (a running server would go on
        // acknowledging events into the old file, then lose them).
        let lock: OpenStoreLock
        do {
            lock = try OpenStoreLock(store: target, exclusive: true)
        } catch {
            for f in [staging, staging + "-wal", staging + "-shm"] { try? fm.removeItem(atPath: f) }
            throw error
        }
        defer { withExtendedLifetime(lock) {} }
        // The checked copy becomes the store in one rename; a leftover WAL of the old file must not replay onto it.
        let staged = try DatabaseQueue(path: staging)
        try await staged.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        try staged.close()
        for f in [target + "-wal", target + "-shm", staging + "-wal", staging + "-shm"] { try? fm.removeItem(atPath: f) }
        if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) }
        try fm.moveItem(atPath: staging, toPath: target)
        return checked
    }
}
