import ExactJSON
import Hummingbird
import Logging
import Metering

/// Every error answer: `{"error": {"code", "message", "field"}}` (docs/api.md).
struct ErrorBody: WireShape {
    struct Detail: Codable, Sendable {
        var code: String
        var message: String
        var field: String?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(code, forKey: .code)
            try c.encode(message, forKey: .message)
            if let field { try c.encode(field, forKey: .field) }
        }
    }

    var error: Detail
}

extension UsageBoxError {
    /// The HTTP status of each error code: the only place the two meet.
    var httpStatus: HTTPResponse.Status {
        switch code {
        case .invalidArgument, .timeout: return .badRequest
        case .unauthenticated: return .unauthorized
        case .permissionDenied: return .forbidden
        case .notFound: return .notFound
        case .conflict, .verifyDrift, .inconclusive: return .conflict
        case .payloadTooLarge: return .contentTooLarge
        case .rateLimited: return .tooManyRequests
        case .unavailable: return .serviceUnavailable
        case .unprocessable: return .unprocessableContent
        case .internal: return .internalServerError
        }
    }

    var body: ErrorBody { ErrorBody(error: .init(code: code.rawValue, message: message, field: field)) }
}

/// Turns every error into the JSON error body with its status; only a real server fault becomes a
/// 500. A known path asked with another method is a 405 listing the methods the document allows.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return Self.response(for: error, request, logger: context.logger)
        }
    }

    /// The answer to an error a handler threw.
    static func response(for error: any Error, _ request: Request, logger: Logger) -> Response {
        switch error {
        case let error as UsageBoxError:
            return JSONResponse.error(error)
        case let error as HTTPError where error.status.code == 404 || error.status.code == 405:
            if let allowed = APIOperation.allowedMethods(request.uri.path) {
                let body = ErrorBody(error: .init(code: "method_not_allowed", message: "\(request.method.rawValue) is not allowed on \(request.uri.path)"))
                var response = JSONResponse.make(body, status: .methodNotAllowed)
                response.headers[.allow] = allowed
                return response
            }
            return JSONResponse.error(UsageBoxError(.notFound, "no route \(request.method.rawValue) \(request.uri.path)"))
        case let error as HTTPError:
            let code: UsageBoxError.Code
            switch error.status.code {
            case 413: code = .payloadTooLarge
            case 401: code = .unauthenticated
            case 403: code = .permissionDenied
            case 400..<500: code = .invalidArgument
            default: code = .internal
            }
            return JSONResponse.error(UsageBoxError(code, error.body ?? error.status.reasonPhrase))
        case let error as JSONValueDecoder.Failure:
            return JSONResponse.error(error.usageBoxError)
        case is CancellationError:
            // The client hung up and its request was stopped (`OperationRoutes`): nobody reads
            // this answer; the log line says so (nginx's 499) rather than count a server fault.
            return Response(status: .init(code: 499, reasonPhrase: "Client Closed Request"))
        default:
            logger.error("unhandled error", metadata: ["error": "\(error)"])
            return JSONResponse.error(UsageBoxError(.internal, "internal error"))
        }
    }
}

extension HTTPAPI {
    /// A usage read's answer. One refused for its size had built most of it: that memory is
    /// given back too (eight refused reads left `serve` at 359 MB with nothing in flight).
    func usageAnswer(_ q: UsageQuery) async throws -> Response {
        do {
            return JSONResponse.make(try await store.usage(q))
        } catch  where UsageAccumulator.isAnswerLimit(error) {
            FreedMemory.freedLargeAnswer()
            throw error
        }
    }
}

enum JSONResponse {
    /// A body that is already JSON text (a report's own encoding).
    static func make(text: String, status: HTTPResponse.Status = .ok) -> Response {
        // Into the response's buffer once, the newline after it (a report can be megabytes).
        var buffer = ByteBuffer(string: text)
        buffer.writeInteger(UInt8(0x0A))
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    static func make(_ shape: some WireShape, status: HTTPResponse.Status = .ok) -> Response {
        // Written once at its size, then copied once into the response's buffer.
        let bytes = JSONWriter.bytes(shape.jsonValue, suffix: [0x0A])
        // A large answer's tree and text are freed memory once written (eight 10 MB usage
        // answers left `serve` at 696 MB with nothing in flight).
        if bytes.count >= FreedMemory.largeAnswerBytes { FreedMemory.freedLargeAnswer() }
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(_ e: UsageBoxError) -> Response {
        var response = make(e.body, status: e.httpStatus)
        if let wait = e.retryAfter { response.headers[.retryAfter] = String(max(1, wait)) }
        // RFC 9110: a 401 names the scheme it wants.
        if e.code == .unauthenticated { response.headers[.wwwAuthenticate] = #"Bearer realm="usagebox""# }
        return response
    }
}
