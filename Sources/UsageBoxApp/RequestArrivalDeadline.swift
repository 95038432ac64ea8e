import NIOCore
import NIOHTTPTypes

/// Closes a connection whose request does not arrive whole in time.
///
/// Hummingbird's idle timeout counts time since the last *HTTP part*: a request head trickled a byte
/// at a time is no part until complete, so the idle timeout already bounds it; but a body trickled
/// a byte at a time is a stream of parts and would hold the connection (and a handler waiting on it)
/// for ever. This handler bounds the whole request, head to end.
final class RequestArrivalDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    let limit: TimeAmount
    private var deadline: Scheduled<Void>?

    init(limit: TimeAmount) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: limit) { bound.value.close(promise: nil) }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }
}
