import Foundation
import NIOCore
import NIOHTTPTypes

#if canImport(Glibc)
import Glibc
#endif

/// The server's open connections, so that they stay below what the process may open.
///
/// Connections cost a file descriptor each and nothing else until they send: a client with no key
/// opened connections until the process ran out of descriptors, pinging each under the idle
/// timeout, and `/healthz` and every other client went unanswered for as long as it held them.
/// Past `limit`, each new connection closes the one that has been quiet longest (its last request
/// began longest ago) among those with no request in flight — only when every one has one, the
/// quietest of those: the newcomer is always served, a holder of many connections loses its own
/// first, and sockets that never sent a byte go before a running query or upload (60 of them cut
/// a 10-second SQL query and a slow upload off after a second).
public final class ConnectionRegistry: @unchecked Sendable {
    // Guarded by `lock`; touched from every event loop.
    private let lock = NSLock()
    private var open: [ObjectIdentifier: (channel: any Channel, lastActive: NIODeadline, busy: Bool)] = [:]
    public let limit: Int
    /// How long a request in flight keeps its connection from being closed first: past the SQL
    /// time limit, as long as a request may take to arrive.
    static let busyProtection = TimeAmount.seconds(30)

    /// At most `limit` connections; by default below the process's descriptor limit.
    public init(limit: Int? = nil) { self.limit = max(limit ?? Self.fittingDescriptorLimit(), 1) }

    /// Below the process's descriptor limit, with room for the store's files and the listener.
    static func fittingDescriptorLimit(reserve: Int = 128) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(Int32.max) else { return 16_384 }
        return max(Int(limit.rlim_cur) - reserve, 16)
    }

    /// Registers a connection; returns the connection to close to stay within the limit, if any.
    func opened(_ channel: any Channel) -> (any Channel)? {
        lock.withLock {
            open[ObjectIdentifier(channel)] = (channel, .now(), false)
            guard open.count > limit else { return nil }
            // A request protects its connection for a while only: any client can begin one (a login
            // form trickled, a request after `Connection: close` that is never answered).
            let cutoff = NIODeadline.now() - Self.busyProtection
            func protected(_ c: (channel: any Channel, lastActive: NIODeadline, busy: Bool)) -> Bool { c.busy && c.lastActive > cutoff }
            let quietest = open.lazy.filter { $0.key != ObjectIdentifier(channel) }.min {
                protected($0.value) != protected($1.value) ? !protected($0.value) : $0.value.lastActive < $1.value.lastActive
            }
            guard let quietest else { return nil }
            open.removeValue(forKey: quietest.key)
            return quietest.value.channel
        }
    }

    /// A request began on `channel`.
    func active(_ channel: any Channel) {
        lock.withLock {
            open[ObjectIdentifier(channel)]?.lastActive = .now()
            open[ObjectIdentifier(channel)]?.busy = true
        }
    }
    /// `channel`'s answer was written to its end.
    func answered(_ channel: any Channel) { lock.withLock { open[ObjectIdentifier(channel)]?.busy = false } }
    func closed(_ channel: any Channel) { lock.withLock { _ = open.removeValue(forKey: ObjectIdentifier(channel)) } }
}

/// Registers its connection with the registry for as long as it is open.
final class ConnectionCap: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let registry: ConnectionRegistry

    init(registry: ConnectionRegistry) { self.registry = registry }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.opened(context.channel)?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { registry.active(context.channel) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        // Idle once the answer has left, not when it is queued: a large answer still downloading
        // over a slow link is a request in flight.
        let written = promise ?? context.eventLoop.makePromise()
        let registry = self.registry, channel = context.channel
        written.futureResult.whenComplete { _ in registry.answered(channel) }
        context.write(data, promise: written)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.closed(context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.closed(context.channel)
        context.fireChannelInactive()
    }
}
