import CoreMetrics
public import Metering
public import Prometheus

/// What an operator graphs, through swift-metrics into a Prometheus registry served at
/// `GET /metrics`: events by outcome, request latency per route and status, batch sizes, writes in
/// flight, verify drift per account, reconciliation runs by vendor and verdict, scrub progress and
/// the store's size. The factory is given, not global, so every server (and test) has its own.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// The store's size in bytes, read at each scrape (nil when the store cannot say).
    let storeSize: @Sendable () -> Int64?

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), storeSize: @escaping @Sendable () -> Int64? = { nil }) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["usagebox_ingest_batch_events"] = [1, 10, 100, 1_000, 5_000, 10_000]
        self.factory = factory
        self.storeSize = storeSize
    }

    func request(route: String, method: String, status: Int, duration: Duration) {
        let dims = [("route", route), ("method", method), ("status", String(status))]
        Counter(label: "usagebox_http_requests_total", dimensions: dims, factory: factory).increment()
        let nanos = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        Timer(label: "usagebox_http_request_duration_seconds", dimensions: dims, factory: factory).recordNanoseconds(nanos)
    }

    func ingested(_ r: IngestResponse, batch: Int) {
        for (outcome, n) in [("accepted", r.accepted), ("duplicate", r.duplicates), ("conflict", r.conflicts)] where n > 0 {
            Counter(label: "usagebox_events_total", dimensions: [("outcome", outcome), ("code", "")], factory: factory).increment(by: n)
        }
        var rejected: [String: Int] = [:]
        for e in r.errors where e.status == .rejected { rejected[e.code, default: 0] += 1 }
        for (code, n) in rejected {
            Counter(label: "usagebox_events_total", dimensions: [("outcome", "rejected"), ("code", code)], factory: factory).increment(by: n)
        }
        Recorder(label: "usagebox_ingest_batch_events", factory: factory).record(batch)
    }

    func writesInFlight(_ delta: Int) {
        Meter(label: "usagebox_ingest_in_flight", factory: factory).increment(by: Double(delta))
    }

    func verified(account: String, _ report: VerifyReport) {
        Gauge(label: "usagebox_verify_drift", dimensions: [("account", account)], factory: factory).record(Double(report.drift))
        Gauge(label: "usagebox_verify_corrupt_segments", dimensions: [("account", account)], factory: factory).record(report.segmentsCorrupt)
    }

    func reconciled(vendor: String, verdict: String) {
        Counter(label: "usagebox_reconciliation_runs_total", dimensions: [("vendor", vendor), ("verdict", verdict)], factory: factory).increment()
    }

    /// Where the re-hashing of sealed segments stands (the scrub's progress).
    public func scrubbed(_ p: ScrubProgress) {
        for (state, n) in [("sealed", p.sealed), ("verified", p.verified), ("pending", p.pending), ("corrupt", p.corrupt)] {
            Gauge(label: "usagebox_segments", dimensions: [("state", state)], factory: factory).record(Double(n))
        }
    }

    /// The Prometheus text exposition of every metric.
    func exposition() -> String {
        if let size = storeSize() { Gauge(label: "usagebox_store_bytes", factory: factory).record(Double(size)) }
        return registry.emitToString()
    }
}
