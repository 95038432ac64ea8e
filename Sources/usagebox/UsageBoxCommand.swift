import ArgumentParser
import Foundation
import MeterStoreSQLite
import Metering
import UsageBoxApp

/// `usagebox`: the metering database and vendor reconciliation, from the command line.
struct UsageBoxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usagebox",
        abstract: "A metering database for AI usage, and month-end vendor invoice reconciliation.",
        discussion: """
            Every command works on the embedded store named by --db (default ./usagebox.db, or $USAGEBOX_DB).
            Commands that answer with data take --json and then print exactly the HTTP API's JSON.
            Exit codes: 0 success, 1 error, 2 bad usage, 3 verify drift (verify --fail-on-drift, reconcile), 4 ingest --strict saw
            rejections or conflicts, 5 reconcile --apply on an inconclusive run.
            Shell completions: usagebox --generate-completion-script bash|zsh|fish.
            """,
        subcommands: [
            Serve.self, Ingest.self, Usage.self, Verify.self, Explain.self, Periods.self, Meters.self, Query.self, Keys.self,
            Reconcile.self, Vendors.self, RateCards.self, Rules.self, Export.self, Backup.self, Restore.self, Migrate.self, Demo.self,
        ]
    )
}

/// Options every store-backed subcommand takes, written after the subcommand.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The embedded store file (default ./usagebox.db or $USAGEBOX_DB); only ingest and meters set create a missing one.")
    var db: String?
    @Option(name: .long, help: "A store by URL: clickhouse://host:port/database (or sqlite:PATH); default $USAGEBOX_STORE.")
    var store: String?
    @Option(name: .long, help: "Work against a running UsageBox server instead, e.g. http://127.0.0.1:8080.")
    var server: String?
    @Option(name: .long, help: "The API key for --server (default $USAGEBOX_KEY).")
    var key: String?

    /// The store; an embedded one must exist unless `creating` (ingest, meters set): a mistyped
    /// path is an error, not an empty store.
    func open(creating: Bool = false) async throws -> any MeterStore {
        try await StoreFactory.open(db: db, store: store, server: server, key: key, creating: creating)
    }
}

/// The store of commands that work on it directly (serve, keys, migrate): `--db PATH` or `--store URL`.
struct LocalStoreOptions: ParsableArguments, CustomStringConvertible {
    @Option(name: .long, help: "The embedded store file (default ./usagebox.db or $USAGEBOX_DB).")
    var db: String?
    @Option(name: .long, help: "A store by URL: clickhouse://host:port/database (or sqlite:PATH); default $USAGEBOX_STORE.")
    var store: String?

    /// The store; a missing SQLite file is created unless `creating` is false (keys list, revoke).
    func open(ring: PeerRing? = nil, creating: Bool = true) async throws -> ServerStore {
        try await StoreFactory.openServerStore(db: db, store: store, ring: ring, creating: creating)
    }

    /// The store as logs show it (a URL's password replaced).
    var description: String { StoreFactory.redacted(store ?? ProcessInfo.processInfo.environment["USAGEBOX_STORE"] ?? StoreFactory.resolvePath(db)) }
}

/// The exit codes scripts rely on, beyond 0 (success), 1 (error) and 2 (bad usage).
extension ExitCode {
    /// `verify --fail-on-drift` found drift, or `reconcile` stopped on it.
    static let verifyDrift = ExitCode(3)
    /// `ingest --strict` saw rejections or conflicts.
    static let strictRejections = ExitCode(4)
    /// `reconcile --apply` on a run whose evidence allows no corrections.
    static let inconclusive = ExitCode(5)
}

/// Option values as types: listed in `--help`, completed by the shell, checked before `run()`.
enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    case auto, bar, lines, none
}

extension VerifyMode: ExpressibleByArgument, CaseIterable {
    public static let allCases: [VerifyMode] = [.deep, .incremental]
}

extension SourcePreference: ExpressibleByArgument, CaseIterable {
    public static let allCases: [SourcePreference] = [.auto, .rollup, .raw]
}

extension KeyRole: ExpressibleByArgument {}

#if os(Linux)
/// glibc's `mallopt` (malloc.h is not part of the Glibc module).
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

@main
enum Main {
    static func main() async {
        #if os(Linux)
        // Ingest allocates a few MB per batch on one thread and frees it on another; with glibc's
        // sliding mmap threshold those blocks stay in the heap and peak memory creeps up (~45 MB
        // at 10M events). A fixed threshold hands them back to the system when freed.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 20)
        #endif
        // Before any database opens: SQLite in multi-thread mode, no memory statistics.
        SQLiteMeterStore.configureLibrary()
        var parsed: (any ParsableCommand.Type)?
        do {
            var command = try UsageBoxCommand.parseAsRoot()
            parsed = type(of: command)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as UsageBoxError {
            FileHandle.standardError.write(Data("usagebox: error: \(error)\n".utf8))
            exit(1)
        } catch {
            let code = UsageBoxCommand.exitCode(for: error)
            if code == .success {
                UsageBoxCommand.exit(withError: error)
            }
            var message = UsageBoxCommand.fullMessage(for: error)
            // A usage error found while running a subcommand (`--filter token_type`) shows that
            // subcommand's usage, as one found while parsing does, not the root's.
            if let error = error as? ValidationError, let parsed, parsed != UsageBoxCommand.self {
                let usage = UsageBoxCommand.usageString(for: parsed)
                let path = usage.split(separator: " ").prefix { !$0.hasPrefix("-") && !$0.hasPrefix("<") && !$0.hasPrefix("[") }.joined(separator: " ")
                message = "Error: \(error.message)\nUsage: \(usage)\n  See '\(path) --help' for more information."
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            // swift-argument-parser's usage errors (EX_USAGE, 64) are exit 2 here; our own codes pass through.
            exit(code == .validationFailure || code.rawValue == 64 ? 2 : code.rawValue)
        }
    }
}

func printOut(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func printErr(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
