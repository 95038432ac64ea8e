import NIOCore
import NIOHTTPTypes

/// A connection closed once `limit` passes, unless the condition that started the clock ends
/// first: the scaffolding both deadlines below share.
class ConnectionDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    let limit: TimeAmount
    private var deadline: Scheduled<Void>?

    init(limit: TimeAmount) {
        self.limit = limit
    }

    /// Starts the clock, unless it runs already.
    func start(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: limit) { bound.value.close(promise: nil) }
    }

    func stop() {
        deadline?.cancel()
        deadline = nil
    }

    // Declared here so that subclasses override them: the protocol's default implementations
    // would be what NIO calls otherwise.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.fireChannelWritabilityChanged()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }
}

/// Closes a connection whose request does not arrive whole in time.
///
/// Hummingbird's idle timeout counts time since the last *HTTP part*: a request head trickled a byte
/// at a time is no part until complete, so the idle timeout already bounds it; but a body trickled
/// a byte at a time is a stream of parts and would hold the connection (and a handler waiting on it)
/// for ever. This handler bounds the whole request, head to end.
final class RequestArrivalDeadline: ConnectionDeadline {
    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            stop()
            start(context)
        case .end:
            stop()
        case .body:
            break
        }
        context.fireChannelRead(data)
    }
}

/// Closes a connection whose client stops reading its answer.
///
/// An answer waits in the connection's outbound buffer until the client reads it, and the idle
/// timeout counts requests, not reading: a client that sends a small request every few seconds
/// and never reads held every answer it was sent (50 connections held 8 MB each, 444 MB, for as
/// long as they pinged). When the connection cannot take more bytes for `limit` — the client read
/// none of them meanwhile — it is closed and its buffered answers freed. A slow reader that reads
/// makes the connection writable again and the clock starts over.
final class AnswerReadDeadline: ConnectionDeadline {
    override func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { stop() } else { start(context) }
        context.fireChannelWritabilityChanged()
    }
}
