public import Metering

/// Drives a store's group commit from a test: holds the store's writer for a moment (`hold`, the
/// store's own way of doing so), then sends `batches` concurrently, in index order, while it is
/// held, so that they queue and are written together. Answers in the batches' order.
public enum GroupCommitProbe {
    public static func behindABusyWriter(
        _ store: any MeterStore, _ batches: [[IngestItem]], hold: @escaping @Sendable () async throws -> Void
    ) async throws -> [IngestResponse] {
        let blocker = Task { try await hold() }
        try await Task.sleep(for: .milliseconds(50))
        let answers = try await withThrowingTaskGroup(of: (Int, IngestResponse).self) { group in
            for (i, events) in batches.enumerated() {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(5 * i))  // arrival order = index
                    return (i, try await store.ingest(events))
                }
            }
            var all = [IngestResponse?](repeating: nil, count: batches.count)
            for try await (i, r) in group { all[i] = r }
            return all.map { $0! }
        }
        try await blocker.value
        return answers
    }
}
