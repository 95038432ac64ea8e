import Logging
import Metering
public import ServiceLifecycle

/// Seals segments an hour after they opened, and every open segment at shutdown (after the
/// server has finished its in-flight requests: services stop in reverse order).
public struct SegmentSealer: Service {
    let store: any MeterStore
    let interval: Duration
    let logger: Logger

    public init(store: any MeterStore, interval: Duration = .seconds(60), logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                do {
                    try await store.sealExpiredSegments()
                } catch {
                    logger.error("sealing expired segments failed", metadata: ["error": "\(error)"])
                }
            }
        }
        try await store.sealOpenSegments()
        logger.info("sealed open segments at shutdown")
    }
}
