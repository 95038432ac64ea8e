import GRDB
import GRDBSQLite

/// Binds and steps a GRDB-cached statement through the C API, skipping `StatementArguments`
/// boxing on the ingest hot path. GRDB still owns (and finalizes) the statement.
struct StatementBinder {
    private let handle: OpaquePointer
    private var index: Int32 = 0
    /// SQLite copies the bytes before the bind call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ statement: Statement) {
        handle = statement.sqliteStatement
        // Every parameter is bound before each run, so old bindings need no clearing.
        sqlite3_reset(handle)
    }

    mutating func bind(_ value: String) {
        index += 1
        var copy = value
        let handle = self.handle, index = self.index
        copy.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                if let base = chars.baseAddress {
                    _ = sqlite3_bind_text(handle, index, base, Int32(chars.count), Self.transient)
                } else {
                    _ = sqlite3_bind_text(handle, index, "", 0, Self.transient)
                }
            }
        }
    }

    mutating func bind(_ value: String?) {
        guard let value else { index += 1; sqlite3_bind_null(handle, index); return }
        bind(value)
    }

    mutating func bind(_ value: Int64) {
        index += 1
        sqlite3_bind_int64(handle, index, value)
    }

    mutating func bind(_ value: Bool) { bind(value ? Int64(1) : 0) }

    /// Runs the statement to completion; returns the number of rows it changed.
    func run(_ db: Database) throws -> Int {
        let rc = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
        return Int(sqlite3_changes(db.sqliteConnection))
    }
}
