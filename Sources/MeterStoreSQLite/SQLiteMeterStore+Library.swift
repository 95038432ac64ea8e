import CSQLiteSettings

extension SQLiteMeterStore {
    /// Process-wide SQLite settings, for the executable to apply first thing, before any database
    /// is opened (like logging, nothing else sets them: SQLite documents its configuration as unsafe
    /// while other threads use the library).
    ///
    /// Every connection of a store is used by one thread at a time (GRDB serializes each one), so
    /// the per-connection mutex SQLite takes around every bind, step and reset is pure cost on the
    /// ingest path, as is the global mutex its allocator takes to keep memory statistics nobody
    /// reads: perf showed the two at ≈ 4 % of the writer thread. Returns false when SQLite was
    /// already initialized (the settings then keep their defaults).
    @discardableResult
    public static func configureLibrary() -> Bool {
        usagebox_sqlite_multithread_without_memstatus() == 0
    }
}
