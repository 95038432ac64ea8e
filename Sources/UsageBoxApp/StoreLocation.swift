import Foundation
public import MeterStoreClickHouse
public import MeterStoreHTTPClient
public import MeterStoreSQLite
public import Metering
public import ReconCore

/// Everything `usagebox serve` needs of a store: events, keys and the reconciliation log.
public typealias ServerStore = any MeterStore & KeyStore & ReconciliationLog

/// The composition root's store choice: a running server (`--server URL --key K`), a ClickHouse
/// store (`--store clickhouse://…` or `$USAGEBOX_STORE`), or the embedded SQLite file named by
/// `--db` (or `--store sqlite:PATH`, `$USAGEBOX_DB`, `./usagebox.db`). Nothing else imports a backend.
public enum StoreFactory {
    public static let defaultPath = "usagebox.db"

    public static func resolvePath(_ option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let option, !option.isEmpty { return option }
        if let env = environment["USAGEBOX_DB"], !env.isEmpty { return env }
        return defaultPath
    }

    /// Opens the embedded store at `path`, creating it when missing if `creating`: a command that
    /// only reads (or reconciles against what is stored) refuses a path with no store, where it
    /// answered a mistyped one from a new empty store, and left that file behind.
    public static func openSQLite(path: String, creating: Bool = true) throws -> SQLiteMeterStore {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            throw UsageBoxError.invalidArgument("the folder of the database \(path) does not exist", field: "db")
        }
        if !creating, !FileManager.default.fileExists(atPath: path) {
            throw UsageBoxError.invalidArgument("no store at \(path): `usagebox ingest` or `usagebox demo` creates one", field: "db")
        }
        do {
            return try SQLiteMeterStore(location: .file(path))
        } catch let e as UsageBoxError {
            throw e
        } catch {
            throw UsageBoxError(.internal, "cannot open the store \(path): \(error)")
        }
    }

    /// A store URL: `--store`, else `$USAGEBOX_STORE`; nil means the SQLite file of `--db`.
    static func storeURL(db: String?, store: String?, environment: [String: String]) throws -> String? {
        if let store, !store.isEmpty {
            if db != nil { throw UsageBoxError.invalidArgument("--db and --store exclude each other", field: "store") }
            return store
        }
        if db == nil, let env = environment["USAGEBOX_STORE"], !env.isEmpty { return env }
        return nil
    }

    /// The store `serve`, `keys` and the reconciliation commands work on. A ClickHouse store must be
    /// at this binary's schema (`usagebox migrate`); `ring` (`serve --peers`) says which accounts
    /// this process writes, every one without it; `creating`, whether a missing SQLite file is
    /// created.
    public static func openServerStore(
        db: String?, store: String?, ring: PeerRing? = nil, creating: Bool = true,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ServerStore {
        guard let url = try storeURL(db: db, store: store, environment: environment) else {
            return try openSQLite(path: resolvePath(db, environment: environment), creating: creating)
        }
        if url.hasPrefix("sqlite:") { return try openSQLite(path: String(url.dropFirst("sqlite:".count)), creating: creating) }
        guard url.hasPrefix("clickhouse://") else {
            throw UsageBoxError.invalidArgument("--store is clickhouse://host:port/database or sqlite:PATH, got '\(redacted(url))'", field: "store")
        }
        let clickhouse = try ClickHouseMeterStore(
            location: try ClickHouseLocation(url: url), owns: { ring?.owns($0) ?? true },
            slot: ring.map { WriterSlot(of: $0.peers.count, node: $0.node) } ?? .alone)
        try await clickhouse.checkSchema()
        return clickhouse
    }

    /// A store URL as logs and messages show it: its password replaced.
    public static func redacted(_ url: String) -> String { ClickHouseLocation.redacted(url) }

    /// The store a command works on: the server when `server` is given, else the store of `--store` or `--db`.
    public static func open(
        db: String?, store: String? = nil, server: String?, key: String?, creating: Bool = true,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> any MeterStore {
        if let server, !server.isEmpty {
            if db != nil || store != nil { throw UsageBoxError.invalidArgument("--server excludes --db and --store", field: "server") }
            let k = key ?? environment["USAGEBOX_KEY"] ?? ""
            return try HTTPMeterStore(baseURL: server, key: k)
        }
        return try await openServerStore(db: db, store: store, creating: creating, environment: environment)
    }

    /// Creates or upgrades a ClickHouse store's schema (`usagebox migrate`).
    public static func migrate(store url: String) async throws -> (from: Int, to: Int) {
        guard url.hasPrefix("clickhouse://") else {
            throw UsageBoxError.invalidArgument("usagebox migrate works on a clickhouse:// store (SQLite migrates itself when opened)", field: "store")
        }
        return try await ClickHouseMeterStore(location: try ClickHouseLocation(url: url)).migrate()
    }
}

/// The embedded store keeps reconciliation runs too.
extension SQLiteMeterStore: ReconciliationLog {}
/// So does the ClickHouse store.
extension ClickHouseMeterStore: ReconciliationLog {}

extension StoreFactory {
    /// What a server does with its store before it answers: a ClickHouse store brings the open
    /// segment rows and the rollups of the accounts this process writes up to their stored events.
    public static func recover(_ store: ServerStore) async throws {
        if let owned = store as? OwnedWritesStore { return try await recover(owned.base) }
        if let clickhouse = store as? ClickHouseMeterStore { try await clickhouse.recoverOpenSegments() }
    }
}
