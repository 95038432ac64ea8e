import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Gives memory freed by large batches back to the system. glibc keeps what a thread's arena
/// freed for its next use: after four 16 MiB batches of 32-dimension events, `serve` stayed at
/// 313 MB with nothing in flight, and after fifteen at about 1 GB. The trim runs once no batch
/// has been in flight for a second after a large one: sustained ingest does not pay it (nor the
/// page faults of taking the memory back) per batch. `malloc_trim` is in glibc's `malloc.h`,
/// which Swift's Glibc module does not import: looked up once by name.
enum FreedMemory {
    /// Batches this large leave memory to give back.
    static let largeBatch = 1_000
    /// Answers this large leave memory to give back too.
    static let largeAnswerBytes = 1 << 20
    static let quietBeforeTrim = Duration.seconds(1)

    private static let inFlight = Atomic<Int>(0)
    /// Counts batches begun, so a trim waiting for quiet sees whether one came meanwhile.
    private static let begun = Atomic<Int>(0)
    private static let largeSinceTrim = Atomic<Bool>(false)
    /// One wait for quiet at a time: not a task per batch that ends with none in flight.
    private static let waiting = Atomic<Bool>(false)

    static func enter() {
        inFlight.add(1, ordering: .relaxed)
        begun.add(1, ordering: .relaxed)
    }

    /// A large answer was built: a trim once the server is quiet, as after a large batch.
    static func freedLargeAnswer() {
        enter()
        leave(large: true)
    }

    /// A batch ended (`large`: it held many events, or it failed part-way).
    static func leave(large: Bool) {
        if large { largeSinceTrim.store(true, ordering: .releasing) }
        guard inFlight.subtract(1, ordering: .acquiringAndReleasing).newValue == 0, largeSinceTrim.load(ordering: .acquiring),
            !waiting.exchange(true, ordering: .acquiringAndReleasing)
        else { return }
        Task.detached(priority: .background) {
            // Quiet means no batch began during a whole wait; a busy server waits again.
            var seen = begun.load(ordering: .acquiring)
            while true {
                try? await Task.sleep(for: quietBeforeTrim)
                let now = begun.load(ordering: .acquiring)
                if now == seen, inFlight.load(ordering: .acquiring) == 0 { break }
                seen = now
            }
            waiting.store(false, ordering: .releasing)
            if largeSinceTrim.exchange(false, ordering: .acquiringAndReleasing) { giveBack() }
        }
    }

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
