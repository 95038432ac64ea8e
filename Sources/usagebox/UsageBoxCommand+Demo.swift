import ArgumentParser
import Foundation
import MeterStoreSQLite
import Metering
import UsageBoxApp

extension UsageBoxCommand {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the vendor reconciliation kata on a fresh embedded store, step by step.")

        @Option(help: "Where to create the demo store (a new file; default: a fresh temporary folder).") var db: String?
        @Flag(name: .customLong("data-only"), help: "Only load the kata's May 2026 (to try the kata's curl commands yourself).")
        var dataOnly = false
        @Option(help: "Run on this store instead (clickhouse://host:port/database, migrated and empty).") var store: String?

        func run() async throws {
            if let store {
                guard db == nil else { throw ValidationError("--db and --store exclude each other") }
                let target = try await StoreFactory.openServerStore(db: nil, store: store)
                printOut("UsageBox demo: the month-end vendor reconciliation kata, on \(store)\n")
                let demo = KataDemo(store: target, log: target, write: { printOut($0) })
                if dataOnly {
                    let loaded = try await demo.load()
                    try await target.sealOpenSegments()
                    printOut("Loaded the kata's May 2026 for acct_42: \(loaded.accepted) events. Serve it with: usagebox serve --store \(store)")
                } else {
                    try await demo.run()
                    // The applied correction's segment seals as the run ends, as `ingest`'s do.
                    try await target.sealOpenSegments()
                }
                return
            }
            let path: String
            if let db {
                guard !FileManager.default.fileExists(atPath: db) else {
                    throw UsageBoxError.invalidArgument("\(db) already exists; the demo needs a fresh store", field: "db")
                }
                path = db
            } else {
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("usagebox-demo-\(UUID().uuidString.prefix(8))")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                path = dir.appendingPathComponent("usagebox.db").path
            }
            printOut("UsageBox demo: the month-end vendor reconciliation kata, on a fresh embedded store at \(path)\n")
            let store = try StoreFactory.openSQLite(path: path)
            let demo = KataDemo(store: store, log: store, write: { printOut($0) })
            if dataOnly {
                let loaded = try await demo.load()
                printOut("Loaded the kata's May 2026 for acct_42: \(loaded.accepted) events. Serve it with: usagebox serve --db \(path)")
                return
            }
            try await demo.run()
            try await store.sealOpenSegments()
            printOut(
                "\nThe store is kept at \(path); explore it with e.g. usagebox usage --db \(path) --account acct_42 "
                    + "--from 2026-05-01T00:00:00Z --to 2026-06-01T00:00:00Z --group-by day")
        }
    }
}
