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
    /// a deep verify of every account over all time finds no drift and no corrupt segment. A refusal
    /// names `name` (the file the user gave, not the staging copy checked in its place).
    public static func checkBackup(at path: String, name: String? = nil) async throws -> (accounts: Int, events: Int64) {
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
                    "\(name ?? path) does not verify: account \(account) has drift \(v.drift) and \(v.segmentsCorrupt) corrupt segment(s); nothing was restored"
                )
            }
        }
        return (accounts.groups.count, events)
    }

    /// Replaces the store at `target` with a checked copy of `backup`. Stop the server first: the
    /// file is swapped underneath any process that has it open.
    ///
    /// The copy is SQLite's online backup of `backup` as SQLite reads it (its `-wal` included: a
    /// copy of the main file alone left out every commit not yet checkpointed, and an empty copy
    /// verified and replaced a good store), through any symbolic link (copied as a link, it
    /// pointed beside the target at nothing). A store is never restored onto itself.
    public static func restore(from backup: String, to target: String) async throws -> (accounts: Int, events: Int64) {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: backup, isDirectory: &isFolder), !isFolder.boolValue else {
            throw UsageBoxError.invalidArgument("\(backup): no such file", field: "from")
        }
        let source = URL(fileURLWithPath: backup).resolvingSymlinksInPath().path
        if source == URL(fileURLWithPath: target).resolvingSymlinksInPath().path {
            throw UsageBoxError.invalidArgument("\(backup) is the store \(target) itself: name a backup file to restore from", field: "from")
        }
        let staging = target + ".restoring"
        let stagingFiles = [staging, staging + "-wal", staging + "-shm", staging + ".lock"]
        for f in stagingFiles { try? fm.removeItem(atPath: f) }
        let checked: (accounts: Int, events: Int64)
        do {
            var readOnly = Configuration()
            readOnly.readonly = true
            let from = try DatabaseQueue(path: source, configuration: readOnly)
            let copy = try DatabaseQueue(path: staging)
            try from.backup(to: copy)
            try from.close()
            try copy.close()
            checked = try await checkBackup(at: staging, name: backup)
        } catch {
            for f in stagingFiles { try? fm.removeItem(atPath: f) }
            if let e = error as? DatabaseError {
                throw UsageBoxError.invalidArgument("\(backup) cannot be read as a store: \(e.message ?? "\(e)"); nothing was restored", field: "from")
            }
            if var e = error as? UsageBoxError, e.message.contains(staging) {
                // Opened as the staging copy: the user named the backup.
                e.message = e.message.replacingOccurrences(of: "the store \(staging)", with: "the backup \(backup)") + "; nothing was restored"
                throw e
            }
            throw error
        }
        // Nobody may have the store open while it is replaced (a running server would go on
        // acknowledging events into the old file, then lose them).
        let lock: OpenStoreLock
        do {
            lock = try OpenStoreLock(store: target, exclusive: true)
        } catch {
            for f in stagingFiles { try? fm.removeItem(atPath: f) }
            throw error
        }
        defer { withExtendedLifetime(lock) {} }
        // The checked copy becomes the store in one rename; a leftover WAL of the old file must not replay onto it.
        let staged = try DatabaseQueue(path: staging)
        try await staged.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        try staged.close()
        for f in [target + "-wal", target + "-shm"] + stagingFiles.dropFirst() { try? fm.removeItem(atPath: f) }
        if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) }
        try fm.moveItem(atPath: staging, toPath: target)
        return checked
    }
}
