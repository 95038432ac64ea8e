public import Hummingbird
public import Metering
public import NIOCore

/// The request context of every route: where the request came from (for limits on failed
/// authentication) and, once authenticated, the key it presented.
public struct UsageBoxRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by authentication; nil on routes that need no key.
    public var key: APIKey?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        key = nil
    }

    /// The client's address without its port, the unit of the failed-authentication limit.
    var clientAddress: String { remoteAddress?.ipAddress ?? remoteAddress?.description ?? "unknown" }
}
