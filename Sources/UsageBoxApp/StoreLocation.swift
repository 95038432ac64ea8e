import Foundation
public import MeterStoreHTTPClient
public import MeterStoreSQLite
public import Metering
import ReconCore

/// The composition root's store choice: a running server (`--server URL --key K`), or the
/// embedded SQLite file named by `--db`, `$USAGEBOX_DB`, or `./usagebox.db`.
public enum StoreFactory {
    public static let defaultPath = "usagebox.db"

    public static func resolvePath(_ option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let option, !option.isEmpty { return option }
        if let env = environment["USAGEBOX_DB"], !env.isEmpty { return env }
        return defaultPath
    }

    /// Opens (creating when missing) the embedded store at `path`.
    public static func openSQLite(path: String) throws -> SQLiteMeterStore {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            throw UsageBoxError.invalidArgument("the folder of the database \(path) does not exist", field: "db")
        }
        do {
            return try SQLiteMeterStore(location: .file(path))
        } catch let e as UsageBoxError {
            throw e
        } catch {
            throw UsageBoxError(.internal, "cannot open the store \(path): \(error)")
        }
    }

    /// The store a command works on: the server when `server` is given, else the embedded file.
    public static func open(
        db: String?, server: String?, key: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> any MeterStore {
        if let server, !server.isEmpty {
            if db != nil { throw UsageBoxError.invalidArgument("--db and --server exclude each other", field: "server") }
            let k = key ?? environment["USAGEBOX_KEY"] ?? ""
            return try HTTPMeterStore(baseURL: server, key: k)
        }
        return try openSQLite(path: resolvePath(db, environment: environment))
    }
}

/// The embedded store keeps reconciliation runs too.
extension SQLiteMeterStore: ReconciliationLog {}
