import Foundation
public import Metering

/// Streams files into a store in batches, keeping the per-event answers with their file and line.
public struct FileIngestor: Sendable {
    public struct Progress: Sendable {
        public var events: Int
        public var elapsedSeconds: Double
        public var file: String
    }

    public var store: any MeterStore
    public var reader: EventFileReader
    public var batchSize: Int
    /// How many conflicts and rejections are kept for the report (the counts are always exact).
    public var errorLimit: Int

    public init(store: any MeterStore, decoder: EventDecoder = EventDecoder(), batchSize: Int = 20_000, errorLimit: Int = 10_000) {
        self.store = store
        self.reader = EventFileReader(decoder: decoder)
        self.batchSize = batchSize
        self.errorLimit = errorLimit
    }

    public func ingest(files: [String], progress: (@Sendable (Progress) -> Void)? = nil) async throws -> IngestResponse {
        var total = IngestResponse()
        var events = 0
        let start = Date()
        let store = self.store
        // One batch is written while the next is read and decoded: the two cores overlap.
        var inflight: (task: Task<IngestResponse, any Error>, batch: [SourcedItem], index: Int, file: String)?
        func settle() async throws {
            guard let current = inflight else { return }
            inflight = nil
            var response: IngestResponse
            do {
                response = try await current.task.value
            } catch let e as UsageBoxError where e.eventIndex.map(current.batch.indices.contains) == true {
                // A refusal of the whole batch for one event (a server's 403 for another account's):
                // the file and line it came from.
                let local = e.eventIndex!
                let place = current.batch[local].line.map { "\(current.file):\($0): " } ?? "\(current.file), event \(current.index + local): "
                throw e.renumbered({ current.index + $0 }, prefix: place)
            }
            for i in response.errors.indices {
                let local = response.errors[i].index
                response.errors[i].index = current.index + local
                response.errors[i].file = current.file
                response.errors[i].line = current.batch[local].line
            }
            events += current.batch.count
            total.add(response, errorLimit: errorLimit)
            progress?(Progress(events: events, elapsedSeconds: Date().timeIntervalSince(start), file: current.file))
        }
        do {
            for file in files {
                var index = 0
                try await reader.read(path: file, batchSize: batchSize) { batch in
                    // Prepared here, on the reading side, while the store still writes the previous batch.
                    let prepared = IngestBatch(batch.map(\.item))
                    try await settle()
                    inflight = (Task { try await store.ingest(prepared) }, batch, index, file)
                    index += batch.count
                }
                try await settle()
            }
        } catch {
            // Never leave a write running behind an error: wait for it, keep its answer out.
            _ = try? await inflight?.task.value
            throw error
        }
        return total
    }
}
