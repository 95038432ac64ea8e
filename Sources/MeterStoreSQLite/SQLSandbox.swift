import ExactJSON
import Foundation
import GRDBSQLite
import Metering
import Synchronization

/// Runs user SQL read-only over one view, `usage_events`, limited to a set of accounts.
///
/// Defence in depth: a separate connection to which the store is attached read-only under a secret
/// schema name; a temporary view that filters accounts; an authorizer that allows only SELECT,
/// reads of the view and of `event` in that secret schema, and harmless
/// functions (so other tables, writes, ATTACH, PRAGMA and extension loading are refused); and a
/// progress handler that interrupts a query past its time limit. One of the two files that touch
/// the SQLite C API directly (the other, `StatementBinder`, binds the ingest hot path).
enum SQLSandbox {
    static let viewName = "usage_events"

    /// The collation of the view's `timestamp`: its text is as wide as its fraction (`…:00Z`,
    /// `…:00.500000Z`), and `.` sorts before `Z`, so by bytes an event half a second into June
    /// was before `2026-06-01T00:00:00Z` and counted in May. Each side compares by a key: an RFC
    /// 3339 instant (any offset, any fraction) by its fixed-width UTC text, whose bytes sort as
    /// time; anything else (`'2026-05'`, a date alone) by its own bytes, as before. Keys compared
    /// by bytes are a total order, so sorts, groups and unions over mixed values stay consistent.
    static let instantCollation = "RFC3339_INSTANT"
    static let compareInstants: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeRawPointer?, Int32, UnsafeRawPointer?) -> Int32 = {
        _, n1, p1, n2, p2 in
        let a = UnsafeRawBufferPointer(start: p1, count: Int(n1)), b = UnsafeRawBufferPointer(start: p2, count: Int(n2))
        // The view's own text (and a UTC literal written like it) begins with its key's 19 bytes:
        // two such values of different seconds compare by those bytes, as their keys would, with
        // no parse (a sort or a range over 1M events took 4–5 times as long parsing every pair).
        func viewShaped(_ t: UnsafeRawBufferPointer) -> Bool {
            (t.count == 20 || (t.count == 27 && t[19] == UInt8(ascii: "."))) && t[t.count - 1] == UInt8(ascii: "Z") && t[10] == UInt8(ascii: "T")
        }
        if viewShaped(a), viewShaped(b) {
            for i in 0..<19 where a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 54) { keys in
            func key(_ p: UnsafeRawPointer?, _ n: Int32, at offset: Int) -> UnsafeRawBufferPointer {
                let text = UnsafeRawBufferPointer(start: p, count: Int(n))
                guard let t = Timestamp(rfc3339Bytes: text), t.writeFixedWidth(to: keys.baseAddress! + offset) else { return text }
                return UnsafeRawBufferPointer(start: keys.baseAddress! + offset, count: 27)
            }
            let a = key(p1, n1, at: 0), b = key(p2, n2, at: 27)
            for (l, r) in zip(a, b) where l != r { return l < r ? -1 : 1 }
            return a.count < b.count ? -1 : a.count > b.count ? 1 : 0
        }
    }
    /// The largest single value a query may build, and the most bytes of values an answer may hold.
    static let maxValueBytes = 1 << 20
    static let maxResultBytes = 8 << 20
    static let maxSQLBytes = 100_000

    /// `instr(X, Y)` as SQLite defines it: NULL if either is NULL; the 1-based place of Y's first
    /// occurrence in X, in bytes when both are blobs, else in characters of their text (where it
    /// starts a character); 1 for an empty Y; 0 when Y does not occur.
    static func instr(_ context: OpaquePointer?, _ argv: UnsafeMutablePointer<OpaquePointer?>?) {
        guard let argv, let x = argv[0], let y = argv[1] else { return }
        guard sqlite3_value_type(x) != SQLITE_NULL, sqlite3_value_type(y) != SQLITE_NULL else { return sqlite3_result_null(context) }
        let blobs = sqlite3_value_type(x) == SQLITE_BLOB && sqlite3_value_type(y) == SQLITE_BLOB
        let haystack = blobs ? sqlite3_value_blob(x) : UnsafeRawPointer(sqlite3_value_text(x))
        let haystackBytes = Int(sqlite3_value_bytes(x))
        let needle = blobs ? sqlite3_value_blob(y) : UnsafeRawPointer(sqlite3_value_text(y))
        let needleBytes = Int(sqlite3_value_bytes(y))
        guard needleBytes > 0 else { return sqlite3_result_int64(context, 1) }
        guard let haystack, let needle,
            let offset = ByteSearch(UnsafeRawBufferPointer(start: needle, count: needleBytes))
                .first(
                    in: UnsafeRawBufferPointer(start: haystack, count: haystackBytes),
                    where: { blobs || haystack.load(fromByteOffset: $0, as: UInt8.self) & 0xC0 != 0x80 })
        else {
            return sqlite3_result_int64(context, 0)
        }
        // Characters before it: every byte that does not continue a UTF-8 sequence starts one.
        let before = blobs ? offset : UnsafeRawBufferPointer(start: haystack, count: offset).reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
        sqlite3_result_int64(context, Int64(before + 1))
    }

    /// `replace(X, Y, Z)` as SQLite defines it: NULL if any is NULL; X itself for an empty Y; else
    /// the text of X with every non-overlapping Y, left to right, replaced by Z.
    static func replace(_ context: OpaquePointer?, _ argv: UnsafeMutablePointer<OpaquePointer?>?) {
        guard let argv, let x = argv[0], let y = argv[1], let z = argv[2] else { return }
        guard let text = sqlite3_value_text(x) else { return sqlite3_result_null(context) }
        let textBytes = Int(sqlite3_value_bytes(x))
        guard let pattern = sqlite3_value_text(y) else { return sqlite3_result_null(context) }
        let patternBytes = Int(sqlite3_value_bytes(y))
        // A pattern whose first byte is NUL is empty to SQLite too.
        guard patternBytes > 0, pattern[0] != 0 else { return sqlite3_result_value(context, x) }
        guard let replacement = sqlite3_value_text(z) else { return sqlite3_result_null(context) }
        let replacementBytes = Int(sqlite3_value_bytes(z))
        let limit = Int(sqlite3_limit(sqlite3_context_db_handle(context), SQLITE_LIMIT_LENGTH, -1))
        var out: [UInt8] = []
        out.reserveCapacity(textBytes)
        let search = ByteSearch(UnsafeRawBufferPointer(start: pattern, count: patternBytes))
        let haystack = UnsafeRawBufferPointer(start: text, count: textBytes)
        var start = 0
        while start < textBytes, let at = search.first(in: haystack, from: start) {
            out.append(contentsOf: UnsafeBufferPointer(start: text + start, count: at - start))
            out.append(contentsOf: UnsafeBufferPointer(start: replacement, count: replacementBytes))
            start = at + patternBytes
            guard out.count <= limit else { return sqlite3_result_error_toobig(context) }
        }
        out.append(contentsOf: UnsafeBufferPointer(start: text + start, count: textBytes - start))
        guard out.count <= limit else { return sqlite3_result_error_toobig(context) }
        out.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { sqlite3_result_text(context, $0.baseAddress, Int32(b.count), Self.transient) }
        }
    }

    /// Finds a byte string in others in time linear in both (Knuth–Morris–Pratt): SQLite's own
    /// search compares the needle at every place of the haystack.
    struct ByteSearch {
        let needle: UnsafeRawBufferPointer
        /// For each prefix of the needle, the length of its longest proper prefix that is also its suffix.
        private let fallback: [Int]

        init(_ needle: UnsafeRawBufferPointer) {
            self.needle = needle
            var fallback = [Int](repeating: 0, count: needle.count)
            var k = 0
            for i in needle.indices.dropFirst() {
                while k > 0, needle[i] != needle[k] { k = fallback[k - 1] }
                if needle[i] == needle[k] { k += 1 }
                fallback[i] = k
            }
            self.fallback = fallback
        }

        /// The offset of the needle's first occurrence in `haystack` at or after `start` that
        /// `accept` takes (SQLite's instr matches text at character starts only); the search goes
        /// on past one it does not take without starting over.
        func first(in haystack: UnsafeRawBufferPointer, from start: Int = 0, where accept: (Int) -> Bool = { _ in true }) -> Int? {
            guard !needle.isEmpty else { return start }
            var k = 0
            var i = start
            while i < haystack.count {
                while k > 0, haystack[i] != needle[k] { k = fallback[k - 1] }
                if haystack[i] == needle[k] { k += 1 }
                if k == needle.count {
                    if accept(i - k + 1) { return i - k + 1 }
                    k = fallback[k - 1]
                }
                i += 1
            }
            return nil
        }
    }

    /// SQLite copies a result given with this destructor.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    static func run(uri: String, sql: String, scope: AccountScope, deadline: WorkDeadline, rowLimit: Int) throws -> SQLResult {
        // SQLite reads text up to its first NUL: what follows one would be dropped unseen (a
        // WHERE clause, a second statement), and the answer given as if it were the query.
        guard !sql.utf8.contains(0) else {
            throw UsageBoxError.invalidArgument("the SQL holds a NUL character (U+0000); remove it", field: "sql")
        }
        guard sql.utf8.count <= maxSQLBytes else {
            throw UsageBoxError.invalidArgument("the SQL is longer than \(maxSQLBytes) bytes", field: "sql")
        }
        // The store is attached read-only under a random schema name that user SQL cannot know, and
        // the connection's own `main` is an empty in-memory database: naming `event` (or `main.event`)
        // finds nothing, and only the view's reads through the secret schema are authorized.
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(":memory:", &handle, flags, nil) == SQLITE_OK, let db = handle else {
            sqlite3_close_v2(handle)
            throw UsageBoxError(.internal, "cannot open a sandbox connection")
        }
        defer { sqlite3_close_v2(db) }
        sqlite3_busy_timeout(db, 5000)
        // No single value (a printf, zeroblob, replace or group_concat result) may exceed
        // maxValueBytes: SQLite refuses it inside the call, so the time limit cannot be outrun by
        // one huge allocation. Query text, columns and nesting are bounded too; sorts and
        // temporary tables spill to disk past a small cache.
        sqlite3_limit(db, SQLITE_LIMIT_LENGTH, Int32(maxValueBytes))
        sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, Int32(maxSQLBytes))
        // A row's values are all built before the answer's size is checked: 64 columns of at most
        // a value's limit each (200 held 200 MB in one row).
        sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 64)
        sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 200)
        sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 50)
        sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 32)
        // LIKE and GLOB backtrack over their pattern: a short pattern keeps one call short.
        // A character class is scanned at every place of the subject inside one call: 999
        // characters over a 1 MB value took 2.5 s a call.
        sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100)
        sqlite3_exec(db, "PRAGMA temp_store = FILE; PRAGMA cache_size = -4096", nil, nil, nil)
        let alias = "s" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let attach = "ATTACH DATABASE '\(uri.replacingOccurrences(of: "'", with: "''"))' AS \(alias)"
        guard sqlite3_exec(db, attach, nil, nil, nil) == SQLITE_OK else {
            throw UsageBoxError(.internal, "cannot open the store read-only: \(String(cString: sqlite3_errmsg(db)))")
        }

        // Shadow every table of the store with an empty temporary view: unqualified names resolve to
        // `temp` first, so `SELECT … FROM event` (or any other store table) finds no rows.
        var shadows: [String] = []
        var list: OpaquePointer?
        if sqlite3_prepare_v2(db, "SELECT name FROM \(alias).sqlite_master WHERE type IN ('table', 'view')", -1, &list, nil) == SQLITE_OK {
            while sqlite3_step(list) == SQLITE_ROW { shadows.append(String(cString: sqlite3_column_text(list, 0))) }
        }
        sqlite3_finalize(list)
        for name in shadows where name != viewName && !name.hasPrefix("sqlite_") {
            guard sqlite3_exec(db, "CREATE TEMP VIEW \"\(name)\" AS SELECT NULL AS shadow WHERE 0", nil, nil, nil) == SQLITE_OK else {
                throw UsageBoxError(.internal, "cannot prepare the SQL sandbox: \(String(cString: sqlite3_errmsg(db)))")
            }
        }

        // A scoped key's rows are its accounts' segments' seq ranges (there is no per-event account index).
        let source: String
        switch scope {
        case .all: source = "\(alias).event"
        case let .accounts(list):
            let filter =
                list.isEmpty
                ? "0"
                : "s.account_id IN ("
                    + list.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }
                    .joined(separator: ", ") + ")"
            source = "(" + SQLiteMeterStore.eventsBySegment(SQLiteMeterStore.segmentEventColumns, schema: alias, where: filter) + ")"
        }
        // Timestamps compare as instants (`…:00.5Z` is after `…:00Z`, which bytes put it before).
        sqlite3_create_collation_v2(db, Self.instantCollation, SQLITE_UTF8, nil, Self.compareInstants, nil)
        let view = """
            CREATE TEMP VIEW \(viewName) AS SELECT event_id, account_id, meter_id, model_id, kind, correction_ref, quantity, unit,
              (strftime('%Y-%m-%dT%H:%M:%S', ts / 1000000, 'unixepoch')
                || CASE WHEN ts % 1000000 = 0 THEN 'Z' ELSE '.' || substr('00000' || (ts % 1000000), -6) || 'Z' END) COLLATE \(Self.instantCollation) AS timestamp,
              dimensions
            FROM \(source)
            """
        guard sqlite3_exec(db, view, nil, nil, nil) == SQLITE_OK else {
            throw UsageBoxError(.internal, "cannot prepare the usage_events view: \(String(cString: sqlite3_errmsg(db)))")
        }
        // trim(X, Y) compares each character of X with each of Y inside one call, which the
        // progress handler cannot interrupt (two 60,000-character arguments ran 18 s past the
        // 10 s limit; 1 MiB ones would run for hours): the two-argument forms answer an error,
        // while trim(X) and its kin stay.
        for name in ["trim", "ltrim", "rtrim"] {
            sqlite3_create_function_v2(
                db, name, 2, SQLITE_UTF8, nil,
                { context, _, _ in
                    sqlite3_result_error(context, "trim, ltrim and rtrim take one argument here (with a character list one call can outrun the time limit)", -1)
                }, nil, nil, nil)
        }
        // instr and replace search in linear time (`ByteSearch`): SQLite's own compare the needle at every
        // place of the haystack inside one call, which the progress handler cannot interrupt (a
        // 1 MB haystack and a 500 KB needle: 3.3 s a call; eight calls answered 28 s past a 10 s limit).
        sqlite3_create_function_v2(
            db, "instr", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, { context, _, argv in SQLSandbox.instr(context, argv) }, nil, nil, nil)
        sqlite3_create_function_v2(
            db, "replace", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, { context, _, argv in SQLSandbox.replace(context, argv) }, nil, nil, nil)
        let secret = Secret(alias: alias)
        let secretPointer = Unmanaged.passRetained(secret)
        defer { secretPointer.release() }
        sqlite3_set_authorizer(db, authorize, secretPointer.toOpaque())

        let deadlinePointer = Unmanaged.passRetained(deadline)
        defer { deadlinePointer.release() }
        // Every 100 virtual-machine steps: at 1,000 a query calling a slow built-in once a row was
        // looked at about every 30 rows, and ran 30 calls past its limit (10 s answered after 44).
        stopAt(deadlinePointer, on: db, every: 100)

        // SQLite decides what is a statement: empty ones (`;`, comments) before and after the one
        // statement are skipped, anything else after it is a second statement.
        var statement: OpaquePointer?
        var second = false
        let prepared = sql.withCString { text -> Int32 in
            var cursor = text
            while statement == nil, cursor.pointee != 0 {
                var tail: UnsafePointer<CChar>?
                let rc = sqlite3_prepare_v2(db, cursor, -1, &statement, &tail)
                guard rc == SQLITE_OK else { return rc }
                guard let tail, tail != cursor else { break }
                cursor = tail
            }
            while statement != nil, cursor.pointee != 0 {
                var extra: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                let rc = sqlite3_prepare_v2(db, cursor, -1, &extra, &tail)
                sqlite3_finalize(extra)
                guard rc == SQLITE_OK, extra == nil, let tail, tail != cursor else {
                    second = true
                    break
                }
                cursor = tail
            }
            return SQLITE_OK
        }
        defer { sqlite3_finalize(statement) }
        guard prepared == SQLITE_OK else { throw error(db, code: prepared, deadline: deadline) }
        guard let stmt = statement else {
            throw UsageBoxError.invalidArgument("the SQL holds no statement: send one SELECT", field: "sql")
        }
        if second { throw UsageBoxError.invalidArgument("only one SQL statement is allowed per request", field: "sql") }
        guard sqlite3_stmt_readonly(stmt) != 0 else {
            throw UsageBoxError.invalidArgument("only read-only SELECT statements are allowed", field: "sql")
        }
        // EXPLAIN (QUERY PLAN) is read-only too, and answered the view's program: index names,
        // root pages, the key's account literal. Only a SELECT is documented.
        guard sqlite3_stmt_isexplain(stmt) == 0 else {
            throw UsageBoxError.invalidArgument("EXPLAIN is not allowed: send one SELECT", field: "sql")
        }
        let columnCount = sqlite3_column_count(stmt)
        let columns = (0..<columnCount).map { String(cString: sqlite3_column_name(stmt, $0)) }
        var rows: [[JSONValue]] = []
        var truncated = false
        var bytes = 0
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(db, code: rc, deadline: deadline) }
            if rows.count == rowLimit { truncated = true; break }
            var row: [JSONValue] = []
            row.reserveCapacity(Int(columnCount))
            for i in 0..<columnCount {
                // Counted as written: text of invalid UTF-8 is repaired to U+FFFD (three bytes for
                // one), and an "8 MiB" answer counted before the repair came back at 25 MB.
                let v = value(stmt, i)
                bytes += answerBytes(v)
                guard bytes <= maxResultBytes else {
                    throw UsageBoxError.invalidArgument(
                        "the answer would be larger than \(maxResultBytes >> 20) MiB; select fewer rows or columns",
                        field: "sql")
                }
                row.append(v)
            }
            rows.append(row)
        }
        return SQLResult(columns: columns, rows: rows, truncated: truncated)
    }

    /// The bytes a column's value takes in the JSON answer, with its separator: text as escaped
    /// (a megabyte of quotes is two, of control characters six), a blob as its base64 text.
    private static func answerBytes(_ v: JSONValue) -> Int {
        switch v {
        case let .string(s): return JSONWriter.encodedLength(s) + 1
        case .null: return 5
        default: return 26
        }
    }

    private static func value(_ stmt: OpaquePointer, _ i: Int32) -> JSONValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT:
            let d = sqlite3_column_double(stmt, i)
            return d.isFinite ? .number("\(d)") : .null
        case SQLITE_TEXT: return .string(String(cString: sqlite3_column_text(stmt, i)))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(stmt, i))
            guard n > 0, let p = sqlite3_column_blob(stmt, i) else { return .string("") }
            return .string(Data(bytes: p, count: n).base64EncodedString())
        default: return .null
        }
    }

    private static func error(_ db: OpaquePointer, code: Int32, deadline: WorkDeadline) -> any Error {
        let message = String(cString: sqlite3_errmsg(db))
        if deadline.cancelled { return CancellationError() }
        if code == SQLITE_INTERRUPT || deadline.expired {
            return UsageBoxError(.timeout, "the query was stopped after its time limit", field: "sql")
        }
        if code == SQLITE_TOOBIG || message.contains("too big") {
            return UsageBoxError.invalidArgument("a value would be larger than \(maxValueBytes >> 20) MiB, the most one query value may hold", field: "sql")
        }
        if code == SQLITE_NOMEM {
            return UsageBoxError.invalidArgument("the query needs more memory than a query may use", field: "sql")
        }
        if code == SQLITE_AUTH || message.contains("not authorized") || message.contains("prohibited") {
            return UsageBoxError.invalidArgument("not allowed: only SELECT over the usage_events view is permitted (\(message))", field: "sql")
        }
        return UsageBoxError.invalidArgument("SQL error: \(message)", field: "sql")
    }

    /// Functions that reach outside the database or alter the connection; `printf`/`format`,
    /// whose width and precision make one call loop billions of times whatever the value limit
    /// (the one cost a progress handler cannot interrupt): use `||`, `substr` and `round` instead.
    private static let forbiddenFunctions: Set<String> = [
        "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_compileoption_get",
        "sqlite_compileoption_used", "sqlite_offset", "printf", "format",
        // They grow their array past the value limit before it is checked, at the end (a reader's
        // query took the server to 1 GB): group_concat is checked as it grows.
        "json_group_array", "json_group_object", "jsonb_group_array", "jsonb_group_object",
        // Writers of JSON: json_set builds a missing path by recursion, a stack frame a step (one
        // path of 80,000 steps crashed the server); json_patch is quadratic in one call (two
        // objects of 80,000 keys ran 18–29 s past the limit). Reading JSON (json_extract, ->>) stays.
        "json_set", "json_insert", "json_replace", "json_patch", "json_remove",
        "jsonb_set", "jsonb_insert", "jsonb_replace", "jsonb_patch", "jsonb_remove",
    ]

    private static let authorize:
        @convention(c) (
            UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?
        ) -> Int32 = { context, action, arg1, arg2, database, inner in
            switch action {
            case SQLITE_SELECT, SQLITE_RECURSIVE:
                return SQLITE_OK
            case SQLITE_READ:
                // Only the view's own reads of `event` and `segment` pass: user SQL naming any table directly is refused.
                guard let arg1, let context else { return SQLITE_DENY }
                let table = String(cString: arg1)
                // The schema tables are real ones: counting `sqlite_temp_master` told how many tables
                // the store has (tester R).
                if table.hasPrefix("sqlite_") { return SQLITE_DENY }
                // A table used without reading any column (count(*)) reads no data; every other name a
                // user can write resolves to an empty shadow view or to usage_events, so this reveals nothing.
                if let arg2, arg2.pointee == 0 { return SQLITE_OK }
                guard let database else { return SQLITE_DENY }
                let schema = String(cString: database)
                if table == viewName, schema == "temp" { return SQLITE_OK }
                let alias = Unmanaged<Secret>.fromOpaque(context).takeUnretainedValue().alias
                return (table == "event" || table == "segment") && schema == alias && inner.map { String(cString: $0) } == viewName
                    ? SQLITE_OK : SQLITE_DENY
            case SQLITE_FUNCTION:
                guard let arg2 else { return SQLITE_DENY }
                return forbiddenFunctions.contains(String(cString: arg2).lowercased()) ? SQLITE_DENY : SQLITE_OK
            default:
                return SQLITE_DENY
            }
        }
}

/// The random schema name of the attached store, read by the authorizer on the querying thread.
private final class Secret: @unchecked Sendable {
    let alias: String
    init(alias: String) { self.alias = alias }
}

extension SQLiteMeterStore {
    public func sql(_ query: String, scope: AccountScope, timeLimitSeconds: Double = 10, rowLimit: Int = 10_000) async throws -> SQLResult {
        let uri: String
        switch location {
        case let .file(path):
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            let escaped = absolute.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "?#%"))) ?? absolute
            uri = "file:" + escaped + "?mode=ro"
        case let .memory(name):
            uri = "file:" + name + "?mode=memory&cache=shared"
        }
        // The limit counts from the call, waiting for a thread included: with four queries admitted
        // and two threads, the last two answered "10 s" after 20.
        let deadline = WorkDeadline(seconds: timeLimitSeconds)
        return try await withTaskCancellationHandler {
            try await BlockingWork.run {
                guard !deadline.cancelled else { throw CancellationError() }
                guard !deadline.expired else {
                    throw UsageBoxError(.timeout, "the query was stopped after its time limit (it waited that long to run)", field: "sql")
                }
                return try SQLSandbox.run(uri: uri, sql: query, scope: scope, deadline: deadline, rowLimit: rowLimit)
            }
        } onCancel: {
            deadline.cancel()
        }
    }
}

extension SQLSandbox {
    /// `body` with SQLite's progress callback stopping the connection's statements at `deadline`
    /// (or when its client leaves): they fail with SQLITE_INTERRUPT. The callback is removed after,
    /// for the pool's next reader of the connection.
    static func interrupting<T>(_ connection: OpaquePointer?, at deadline: WorkDeadline, _ body: () throws -> T) throws -> T {
        let pointer = Unmanaged.passRetained(deadline)
        defer {
            sqlite3_progress_handler(connection, 0, nil, nil)
            pointer.release()
        }
        stopAt(pointer, on: connection, every: 1000)
        return try body()
    }

    /// Sets the connection's progress callback to stop its statement once `deadline` has expired,
    /// looked at every `steps` virtual-machine steps.
    static func stopAt(_ deadline: Unmanaged<WorkDeadline>, on connection: OpaquePointer?, every steps: Int32) {
        sqlite3_progress_handler(
            connection, steps,
            { context in
                guard let context else { return 0 }
                return Unmanaged<WorkDeadline>.fromOpaque(context).takeUnretainedValue().expired ? 1 : 0
            }, deadline.toOpaque())
    }
}
