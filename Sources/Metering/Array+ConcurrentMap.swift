extension Array where Element: Sendable {
    /// `transform` of each element, at most `width` running at once, answered in the array's
    /// order; the first error cancels the rest. For reads a store answers side by side (a few
    /// accounts' verifies, a few segments' re-hashes) without opening one task per element.
    public func concurrentMap<T: Sendable>(
        atMost width: Int, _ transform: @escaping @Sendable (Element) async throws -> T
    ) async throws -> [T] {
        try await withThrowingTaskGroup(of: (Int, T).self) { group in
            var next = 0
            func launch() {
                guard next < count else { return }
                let (i, element) = (next, self[next])
                next += 1
                group.addTask { (i, try await transform(element)) }
            }
            for _ in 0..<Swift.min(Swift.max(width, 1), count) { launch() }
            var done: [T?] = Array<T?>(repeating: nil, count: count)
            while let (i, value) = try await group.next() {
                done[i] = value
                launch()
            }
            return done.map { $0! }
        }
    }
}
