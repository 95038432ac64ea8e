import Metering

extension SQLiteMeterStore {
    /// Batches that wait behind a transaction share the next one (`IngestQueue`): one `fsync` of
    /// the WAL for all of them; a group that fails is written again batch by batch.
    public func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        try await ingestQueue.submit(
            batch,
            group: { batches in
                try await self.write { db, ctx in try batches.map { try self.ingest(db, $0, &ctx, careful: false) } }
            },
            alone: { try await self.ingestAlone($0) })
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
