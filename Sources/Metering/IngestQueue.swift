import Foundation

/// Ingest batches waiting for a store's writer (group commit). Batches that arrive while a group is
/// being written are written together in the next one: one transaction (SQLite: one `fsync` of the
/// WAL) or one insert (ClickHouse: one part per table) for all of them instead of one each. Every
/// caller is still answered only once the write holding its events has finished, so
/// "acknowledged" keeps meaning "durable". Stores keep one queue and hand it how to write a group
/// and how to write one batch alone.
public final class IngestQueue: @unchecked Sendable {
    struct Waiting {
        let batch: IngestBatch
        let answer: CheckedContinuation<IngestResponse, any Error>
    }

    /// At most this many events go into one group (one request's batch always goes whole): a bound
    /// on how long any caller waits behind others and on the undo a failure costs.
    public let maxGroupEvents: Int

    // Guarded by `lock`.
    private let lock = NSLock()
    private var waiting: [Waiting] = []
    private var draining = false
    /// Batches written in a group shared with others, and groups written again batch by batch
    /// after a failure (for tests: group commit must not silently stop grouping).
    private var counts = (sharedBatches: 0, retriedGroups: 0)

    public init(maxGroupEvents: Int = 50_000) { self.maxGroupEvents = maxGroupEvents }

    public var sharedBatches: Int { lock.withLock { counts.sharedBatches } }
    public var retriedGroups: Int { lock.withLock { counts.retriedGroups } }
    /// Batches queued and not yet taken into a group (tests wait on it to build a group for sure).
    public var waitingCount: Int { lock.withLock { waiting.count } }

    /// Queues `batch` and returns its answer once it is written. The caller that finds nothing
    /// draining starts the drain on its own task, so no answer waits for batches queued after it.
    /// A group of several batches is written by `group` (all answers, in order, or an error); when
    /// it fails, each batch is written again by `alone`, so one batch's failure is only its own —
    /// unless `retryAlone` says the error is not any batch's (the store could not be reached at
    /// all): then every batch of the group gets it at once instead of waiting as long again each.
    public func submit(
        _ batch: IngestBatch,
        group: @escaping @Sendable ([IngestBatch]) async throws -> [IngestResponse],
        alone: @escaping @Sendable (IngestBatch) async throws -> IngestResponse,
        retryAlone: @escaping @Sendable (any Error) -> Bool = { _ in true }
    ) async throws -> IngestResponse {
        try await withCheckedThrowingContinuation { answer in
            guard enqueue(.init(batch: batch, answer: answer)) else { return }
            Task { await self.drain(group: group, alone: alone, retryAlone: retryAlone) }
        }
    }

    private func drain(
        group write: @Sendable ([IngestBatch]) async throws -> [IngestResponse], alone: @Sendable (IngestBatch) async throws -> IngestResponse,
        retryAlone: @Sendable (any Error) -> Bool
    ) async {
        while let group = nextGroup() {
            if group.count > 1 {
                do {
                    let answers = try await write(group.map(\.batch))
                    if answers.count == group.count {
                        count(shared: group.count)
                        for (w, a) in zip(group, answers) { w.answer.resume(returning: a) }
                        continue
                    }
                } catch  where !retryAlone(error) {
                    for w in group { w.answer.resume(throwing: error) }
                    continue
                } catch {}
                count(retried: 1)
            }
            for w in group {
                do {
                    w.answer.resume(returning: try await alone(w.batch))
                } catch {
                    w.answer.resume(throwing: error)
                }
            }
        }
    }

    private func count(shared: Int = 0, retried: Int = 0) {
        lock.withLock {
            counts.sharedBatches += shared
            counts.retriedGroups += retried
        }
    }

    /// Queues a batch; true when the caller must start the drain (no drain is running).
    private func enqueue(_ w: Waiting) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        waiting.append(w)
        if draining { return false }
        draining = true
        return true
    }

    /// The next group in arrival order, or nil (and the drain ends) when nothing waits.
    private func nextGroup() -> [Waiting]? {
        lock.lock()
        defer { lock.unlock() }
        guard !waiting.isEmpty else {
            draining = false
            return nil
        }
        var events = 0
        var n = 0
        while n < waiting.count, n == 0 || events + waiting[n].batch.items.count <= maxGroupEvents {
            events += waiting[n].batch.items.count
            n += 1
        }
        let group = Array(waiting.prefix(n))
        waiting.removeFirst(n)
        return group
    }
}
