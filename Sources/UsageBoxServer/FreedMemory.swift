#if canImport(Glibc)
import Glibc
#endif

/// Gives memory freed by a large request back to the system. glibc keeps what a thread's arena
/// freed for its next use: after four 16 MiB batches of 32-dimension events, `serve` stayed at
/// 313 MB with nothing in flight, and after fifteen at about 1 GB. `malloc_trim` is in glibc's
/// `malloc.h`, which Swift's Glibc module does not import: looked up once by name.
enum FreedMemory {
    /// Batches this large give their memory back once answered (a trim costs a few ms).
    static let largeBatch = 1_000

    #if canImport(Glibc)
    private typealias Trim = @convention(c) (Int) -> Int32
    private static let trim: Trim? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim").map { unsafeBitCast($0, to: Trim.self) }
    #endif

    static func giveBack() {
        #if canImport(Glibc)
        _ = trim?(0)
        #endif
    }
}
