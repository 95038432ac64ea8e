public import Hummingbird
public import Logging
public import Metering
public import NIOCore
public import ReconCore
public import UsageBoxServer

/// Builds the `usagebox serve` application: the HTTP API over a store, with the segment sealer.
public enum ServerApplication {
    public static func build(
        store: any MeterStore & KeyStore & ReconciliationLog, host: String, port: Int, environmentAdminSecret: String?, logger: Logger,
        limits: RequestLimits = RequestLimits(), idleTimeout: TimeAmount = .seconds(30), requestTimeout: TimeAmount = .seconds(120),
        sealInterval: Duration = .seconds(60), metrics: ServerMetrics? = nil,
        connections: ConnectionRegistry = ConnectionRegistry(),
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        var api = HTTPAPI(store: store, keys: store, environmentAdminSecret: environmentAdminSecret, limits: limits)
        api.metrics = metrics
        api.reconciliation = try ReconciliationService()
        api.reconciliationLog = store
        return Application(
            router: api.buildRouter(),
            // Idle connections are closed, and so is one whose request does not arrive whole in time
            // or whose client reads nothing of its answers for the idle timeout, so slow or
            // abandoned clients cannot hold sockets, or answers in memory, for ever; past the
            // connection limit the quietest connection gives way to each new one.
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [
                        ConnectionCap(registry: connections), RequestArrivalDeadline(limit: requestTimeout), AnswerReadDeadline(limit: idleTimeout),
                    ],
                    idleTimeout: idleTimeout)),
            configuration: .init(address: .hostname(host, port: port), serverName: "UsageBox"),
            services: [SegmentSealer(store: store, interval: sealInterval, logger: logger), SegmentScrubber(store: store, logger: logger, metrics: metrics)],
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
