import Dispatch

/// Runs blocking or CPU-heavy work (a sandboxed SQLite query, parsing a large invoice) on threads
/// of its own, never on the cooperative pool the server's event loops and request handlers share:
/// two slow queries must not stall `/healthz` or another key's ingest.
public enum BlockingWork {
    static let queue = DispatchQueue(label: "usagebox.blocking-work", qos: .utility, attributes: .concurrent)

    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }
}
