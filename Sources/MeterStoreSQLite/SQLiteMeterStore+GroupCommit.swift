import Foundation
import GRDB
import Metering

/// Ingest batches waiting for the writer. Batches that arrive while a transaction is being written
/// are committed together in the next one: one `fsync` of the WAL for all of them instead of one
/// each. Every caller is still answered only once the transaction holding its events has
/// committed, so "acknowledged" keeps meaning "durable".
final class IngestQueue: @unchecked Sendable {
    struct Waiting {
        let batch: IngestBatch
        let answer: CheckedContinuation<IngestResponse, any Error>
    }

    /// At most this many events go into one group's transaction (one request's batch always goes
    /// whole): a bound on how long any caller waits behind others and on the undo a failure costs.
    static let maxGroupEvents = 50_000

    // Guarded by `lock`.
    private let lock = NSLock()
    private var waiting: [Waiting] = []
    private var draining = false
    /// Batches committed in a transaction shared with others, and groups written again batch by
    /// batch after a failure (for tests: group commit must not silently stop grouping).
    private var counts = (sharedBatches: 0, retriedGroups: 0)

    var sharedBatches: Int { lock.withLock { counts.sharedBatches } }
    var retriedGroups: Int { lock.withLock { counts.retriedGroups } }

    func count(shared: Int = 0, retried: Int = 0) {
        lock.withLock {
            counts.sharedBatches += shared
            counts.retriedGroups += retried
        }
    }

    /// Queues a batch; true when the caller must start the drain (no drain is running).
    func enqueue(_ w: Waiting) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        waiting.append(w)
        if draining { return false }
        draining = true
        return true
    }

    /// The next group in arrival order, or nil (and the drain ends) when nothing waits.
    func nextGroup() -> [Waiting]? {
        lock.lock()
        defer { lock.unlock() }
        guard !waiting.isEmpty else {
            draining = false
            return nil
        }
        var events = 0
        var n = 0
        while n < waiting.count, n == 0 || events + waiting[n].batch.items.count <= Self.maxGroupEvents {
            events += waiting[n].batch.items.count
            n += 1
        }
        let group = Array(waiting.prefix(n))
        waiting.removeFirst(n)
        return group
    }
}

extension SQLiteMeterStore {
    public func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        try await withCheckedThrowingContinuation { answer in
            guard ingestQueue.enqueue(.init(batch: batch, answer: answer)) else { return }
            // The drain runs on its own task, so no caller's answer waits for batches queued after it.
            Task { await self.drainIngestQueue() }
        }
    }

    func drainIngestQueue() async {
        while let group = ingestQueue.nextGroup() {
            if group.count > 1 {
                let batches = group.map(\.batch)
                if let answers = try? await write({ db, ctx in try batches.map { try self.ingest(db, $0, &ctx, careful: false) } }) {
                    ingestQueue.count(shared: group.count)
                    for (w, a) in zip(group, answers) { w.answer.resume(returning: a) }
                    continue
                }
                ingestQueue.count(retried: 1)
                // Something in the group failed and the whole transaction rolled back: each batch
                // is written again on its own, so one batch's failure is only its own.
            }
            for w in group {
                do {
                    w.answer.resume(returning: try await ingestAlone(w.batch))
                } catch {
                    w.answer.resume(throwing: error)
                }
            }
        }
    }

    /// One batch in its own transaction.
    func ingestAlone(_ batch: IngestBatch) async throws -> IngestResponse {
        do {
            return try await write { db, ctx in try self.ingest(db, batch, &ctx, careful: false) }
        } catch is SumOverflow {
            // Rare: the fast path found a sum past 64 bits and rolled back. Each event is now checked
            // against the stored cells before it is written; the ones that would overflow are rejected.
            return try await write { db, ctx in try self.ingest(db, batch, &ctx, careful: true) }
        }
    }
}
