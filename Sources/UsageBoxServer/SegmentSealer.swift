import Logging
import Metering
public import ServiceLifecycle

/// Seals segments an hour after they opened, and every open segment at shutdown (after the
/// server has finished its in-flight requests: services stop in reverse order). First, and every
/// few seconds, it has the store prepare the open segments whose running hash this process lacks
/// (left by an earlier process, or forgotten when another process committed), so sealing them
/// stalls no write.
public struct SegmentSealer: Service {
    let store: any MeterStore
    let interval: Duration
    let prepareInterval: Duration
    let logger: Logger

    public init(store: any MeterStore, interval: Duration = .seconds(60), prepareInterval: Duration = .seconds(5), logger: Logger) {
        self.store = store
        self.interval = interval
        self.prepareInterval = min(prepareInterval, interval)
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await prepare()
            var sinceSealing: Duration = .zero
            while !Task.isCancelled {
                try await Task.sleep(for: prepareInterval)
                // Again every few seconds: a CLI command's meter change beside the server makes it
                // forget every running hash, and each seal re-read its segment in the writer (K2).
                // Nothing to do costs a turn on the writer's queue (`data_version`) and one read of the open segments.
                await prepare()
                sinceSealing += prepareInterval
                guard sinceSealing >= interval else { continue }
                sinceSealing = .zero
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

    private func prepare() async {
        do {
            let prepared = try await store.prepareOpenSegments()
            if prepared > 0 { logger.info("prepared open segments whose running hash this process lacked", metadata: ["segments": "\(prepared)"]) }
        } catch is CancellationError {
            // Shut down while preparing: nothing failed.
        } catch {
            logger.error("preparing open segments failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Re-hashes sealed segments from their stored events at a modest rate, least recently verified
/// first, so an edit made behind the store's back is found even if nobody runs a deep verify: a
/// segment counts as verified only once re-hashed here or by verify.
public struct SegmentScrubber: Service {
    let store: any MeterStore
    let interval: Duration
    let segmentsPerPass: Int
    let logger: Logger
    let metrics: ServerMetrics?

    public init(store: any MeterStore, interval: Duration = .seconds(10), segmentsPerPass: Int = 2, logger: Logger, metrics: ServerMetrics? = nil) {
        self.store = store
        self.metrics = metrics
        self.interval = interval
        self.segmentsPerPass = segmentsPerPass
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var reportedCorrupt: Int64 = 0
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                do {
                    let progress = try await store.scrub(maxSegments: segmentsPerPass)
                    metrics?.scrubbed(progress)
                    if progress.corrupt != reportedCorrupt {
                        logger.error("scrub: corrupt segments found", metadata: ["corrupt": "\(progress.corrupt)", "verified": "\(progress.verified)"])
                        reportedCorrupt = progress.corrupt
                    }
                } catch is CancellationError {
                    // Shut down mid-pass: nothing failed.
                } catch {
                    logger.error("scrubbing segments failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
