import GRDB
import GRDBSQLite

/// Binds and steps a GRDB-cached statement through the C API, skipping `StatementArguments`
/// boxing on the ingest hot path. GRDB still owns (and finalizes) the statement.
///
/// Text is copied into a `BindArena` and bound by pointer (`SQLITE_STATIC`): SQLite would
/// otherwise allocate and free a copy of every text value of every row (seven per event).
struct StatementBinder {
    private let handle: OpaquePointer
    /// nil for a statement that binds only integers.
    private let arena: BindArena?
    private var index: Int32 = 0

    init(_ statement: Statement, arena: BindArena?) {
        handle = statement.sqliteStatement
        self.arena = arena
        // Every parameter is bound before each run, so old bindings need no clearing; the arena's
        // bytes from the previous row are no longer read once the statement was reset.
        sqlite3_reset(handle)
        arena?.reset()
    }

    /// Binds integers and runs the statement: for the rollup upserts, a few per event.
    static func run(_ statement: Statement, _ db: Database, _ values: Int64...) throws {
        var bind = StatementBinder(statement, arena: nil)
        for v in values { bind.bind(v) }
        _ = try bind.run(db)
    }

    mutating func bind(_ value: String) {
        index += 1
        var copy = value
        guard let arena else { preconditionFailure("text bound without an arena") }
        let handle = self.handle, index = self.index
        copy.withUTF8 { buffer in
            let stored = arena.store(buffer)
            _ = sqlite3_bind_text(handle, index, stored, Int32(buffer.count), nil)  // nil: SQLITE_STATIC
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

    /// Drops the statement's bindings: called once the arena they point into is about to go, so the
    /// cached statement never holds a pointer to freed bytes.
    static func clearBindings(_ statement: Statement) {
        sqlite3_clear_bindings(statement.sqliteStatement)
    }

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

/// The bytes of one row's bound text, kept until the row was stepped. A value that does not fit
/// goes to a new block; full blocks stay allocated until the next row, so no pointer handed to
/// SQLite moves while the row is written.
final class BindArena {
    private var block: UnsafeMutablePointer<CChar>
    private var capacity: Int
    private var used = 0
    private var retired: [UnsafeMutablePointer<CChar>] = []

    init(capacity: Int = 1 << 16) {
        self.capacity = capacity
        block = .allocate(capacity: capacity)
    }

    deinit {
        block.deallocate()
        for r in retired { r.deallocate() }
    }

    func reset() {
        used = 0
        for r in retired { r.deallocate() }
        retired.removeAll(keepingCapacity: true)
    }

    /// A stable copy of the bytes (a valid pointer even when empty).
    func store(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafePointer<CChar> {
        if used + bytes.count > capacity {
            retired.append(block)
            capacity = max(capacity, bytes.count)
            block = .allocate(capacity: capacity)
            used = 0
        }
        let at = block + used
        if let base = bytes.baseAddress {
            UnsafeMutableRawPointer(at).copyMemory(from: base, byteCount: bytes.count)
        }
        used += bytes.count
        return UnsafePointer(at)
    }
}
