import ArgumentParser
import Foundation
import MeterStoreSQLite
import Metering
import UsageBoxApp

extension UsageBoxCommand {
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the embedded store, consistent at one instant, to a new file (safe while `usagebox serve` writes).")
        @Option(help: "The store file (default ./usagebox.db or $USAGEBOX_DB).") var db: String?
        @Option(help: "The backup file to write (must not exist).") var to: String

        func run() async throws {
            // A mistyped path is no store to back up (it was created empty, and backed up).
            let store = try StoreFactory.openSQLite(path: StoreFactory.resolvePath(db), creating: false)
            try await store.backup(to: to)
            let size = (try? FileManager.default.attributesOfItem(atPath: to)[.size] as? Int) ?? 0
            printOut(
                "backed up \(StoreFactory.resolvePath(db)) to \(to) (\(size) bytes); `usagebox restore --from \(to)` verifies it before replacing anything")
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the embedded store with a backup, after a deep verify of every account in it (stop the server first).",
            discussion: "A backup that does not verify is refused and the store is left as it was.")
        @Option(help: "The backup file.") var from: String
        @Option(help: "The store file to replace (default ./usagebox.db or $USAGEBOX_DB).") var db: String?

        func run() async throws {
            let target = StoreFactory.resolvePath(db)
            let (accounts, events) = try await SQLiteMeterStore.restore(from: from, to: target)
            printOut("restored \(target) from \(from): \(events) events of \(accounts) account(s), deep-verified")
        }
    }
}

extension UsageBoxCommand {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or upgrade a ClickHouse store's schema (SQLite migrates itself when opened).",
            discussion: """
                usagebox migrate --store clickhouse://127.0.0.1:8123/usagebox
                A store at a newer schema than this usagebox is refused. With ?cluster=NAME and every shard's host:port in the URL,
                the events and rollups are created on every shard and Distributed tables over them.
                """)
        @Option(help: "The store, clickhouse://host:port[,host:port…]/database[?cluster=NAME] (default $USAGEBOX_STORE).")
        var store: String?

        func run() async throws {
            guard let url = store ?? ProcessInfo.processInfo.environment["USAGEBOX_STORE"] else {
                throw ValidationError("name the store: --store clickhouse://host:port/database")
            }
            let (from, to) = try await StoreFactory.migrate(store: url)
            printOut(from == to ? "the store is at schema \(to); nothing to do" : "migrated the store from schema \(from) to \(to)")
        }
    }
}
