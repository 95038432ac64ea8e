import Foundation

/// Process-wide SQLite settings, applied once before the library first initializes.
///
/// Every connection of a store is used by one thread at a time (GRDB serializes each one), so the
/// per-connection mutex SQLite takes around every bind, step and reset is pure cost on the ingest
/// path, as is the global mutex its allocator takes to keep memory statistics nobody reads. perf
/// showed the two at ≈ 4 % of the writer thread.
enum SQLiteLibrary {
    /// False when the library was already initialized (the settings then keep their defaults).
    static let configured: Bool = {
        // `sqlite3_config` is variadic, which Swift cannot call. These two options take at most one
        // `int`, which x86-64 and arm64 Linux pass in the same register as a fixed argument.
        #if os(Linux) && (arch(x86_64) || arch(arm64))
        guard let handle = dlopen(nil, RTLD_NOW), let config = dlsym(handle, "sqlite3_config") else { return false }
        typealias NoArgument = @convention(c) (Int32) -> Int32
        typealias IntArgument = @convention(c) (Int32, Int32) -> Int32
        let multiThread = unsafeBitCast(config, to: NoArgument.self)(2)  // SQLITE_CONFIG_MULTITHREAD
        let noMemoryStatistics = unsafeBitCast(config, to: IntArgument.self)(9, 0)  // SQLITE_CONFIG_MEMSTATUS, 0
        return multiThread == 0 && noMemoryStatistics == 0
        #else
        return false
        #endif
    }()
}
