import Foundation
import Synchronization

/// How long one request's reads may work, and whether its client is still waiting. The server
/// sets one around each usage read and expensive request (`current`); a store checks it while it
/// reads (SQLite from its progress callback, ClickHouse as `max_execution_time`), so a read of an
/// account's whole history stops at the limit instead of holding a work slot, a core and its memory
/// for as long as the data takes (tester R2: 8–26 s a read on 300,000 events, other accounts
/// answered 429 for 48 s). Without one (the CLI on its own file) nothing is bounded.
public final class WorkDeadline: Sendable {
    @TaskLocal public static var current: WorkDeadline?

    public let at: Date
    /// The limit as given, for the message.
    public let seconds: Double
    /// Says how to ask for less when the time runs out (the server names its option).
    private let hint: String
    private let stopped = Atomic(false)

    public init(seconds: Double, hint: String = "", now: Date = Date()) {
        self.seconds = seconds
        self.hint = hint
        at = now.addingTimeInterval(seconds)
    }

    /// Its client left: the work is of no use to anyone.
    public var cancelled: Bool { stopped.load(ordering: .relaxed) }
    public var expired: Bool { cancelled || Date() >= at }
    public func cancel() { stopped.store(true, ordering: .relaxed) }
    public var remainingSeconds: Double { max(0, at.timeIntervalSinceNow) }

    public var timeoutError: UsageBoxError {
        let shown = seconds == seconds.rounded() && seconds < 1e9 ? String(Int64(seconds)) : String(seconds)
        return UsageBoxError(
            .timeout,
            "stopped after \(shown) s, the time one read may take here: ask for a shorter range (or, reading usage, fewer group_by fields or narrower filters)"
                + hint)
    }

    /// Throws when the work should stop: `CancellationError` when its client left, the timeout when past the limit.
    public func check() throws {
        if cancelled { throw CancellationError() }
        if Date() >= at { throw timeoutError }
    }

    /// Checks the current deadline every 1,024th call: for loops over rows, where reading the clock on
    /// every row would cost more than the row.
    @inline(__always)
    public static func poll(_ counter: inout Int) throws {
        counter &+= 1
        if counter & 1023 == 0, let deadline = current { try deadline.check() }
    }

    /// Runs `body` with this deadline current, cancelled when the calling task is (its client hung up).
    public func run<T>(_ body: () async throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try await Self.$current.withValue(self) { try await body() }
        } onCancel: {
            cancel()
        }
    }
}
