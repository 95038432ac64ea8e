/// Runs operations that share a key one after another, in arrival order; different keys run
/// concurrently. Used for the few writes that read a record and write it back.
actor KeyedSerialQueue {
    private var tails: [String: Task<Void, Never>] = [:]
    private var waiting: [String: Int] = [:]

    func run<T: Sendable>(_ key: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let previous = tails[key]
        let mine = Task<Result<T, any Error>, Never> {
            await previous?.value
            do { return .success(try await operation()) } catch { return .failure(error) }
        }
        tails[key] = Task { _ = await mine.value }
        waiting[key, default: 0] += 1
        let result = await mine.value
        waiting[key, default: 1] -= 1
        if waiting[key] == 0 {
            tails[key] = nil
            waiting[key] = nil
        }
        return try result.get()
    }
}
