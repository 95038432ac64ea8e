import ExactJSON
import Hummingbird
import Metering

extension UsageBoxError {
    /// The JSON error body of docs/api.md.
    var jsonBody: JSONValue {
        var e: [(String, JSONValue)] = [("code", .string(code.rawValue)), ("message", .string(message))]
        if let field { e.append(("field", .string(field))) }
        return .object([("error", .object(e))])
    }
}

/// Turns every error into the contract's JSON error body with its status; only a real server
/// fault becomes a 500.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as UsageBoxError {
            return JSONResponse.error(error)
        } catch let error as HTTPError where error.status.code == 404 && Self.allowedMethods(request.uri.path) != nil {
            var response = JSONResponse.error(UsageBoxError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(request.uri.path)"))
            response.headers[.allow] = Self.allowedMethods(request.uri.path)
            return response
        } catch let error as HTTPError {
            let code: UsageBoxError.Code
            switch error.status.code {
            case 404: code = .notFound
            case 405: code = .notFound
            case 413: code = .payloadTooLarge
            case 401: code = .unauthenticated
            case 403: code = .permissionDenied
            case 400..<500: code = .invalidArgument
            default: code = .internal
            }
            var response = JSONResponse.error(UsageBoxError(code, error.body ?? error.status.reasonPhrase))
            response.status = error.status.code == 405 ? .methodNotAllowed : response.status
            return response
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            return JSONResponse.error(UsageBoxError(.internal, "internal error"))
        }
    }
}

extension APIErrorMiddleware {
    /// Route templates and their methods, to tell "no such path" (404) from "not this method" (405).
    static var routes: [(template: [Substring], methods: String)] {
        [("/healthz", "GET"), ("/openapi.yaml", "GET"), ("/v1/usage/batch", "POST"), ("/v1/accounts/*/usage", "GET"),
         ("/v1/usage", "GET"), ("/v1/accounts/*/verify", "GET"), ("/v1/accounts/*/explain", "GET"),
         ("/v1/accounts/*/periods/close", "POST"), ("/v1/accounts/*/periods", "GET"), ("/v1/query/sql", "POST"),
         ("/v1/query/json", "POST"), ("/v1/meters", "GET"), ("/v1/meters/*", "PUT"), ("/v1/vendors", "GET"),
         ("/v1/reconciliations", "POST"), ("/v1/reconciliations/*", "GET"), ("/v1/reconciliations/*/apply", "POST"), ("/v1/reconciliations/*/revert", "POST")]
            .map { ($0.0.split(separator: "/"), $0.1) }
    }

    /// The methods a known path allows, or nil for an unknown path.
    static func allowedMethods(_ path: String) -> String? {
        let parts = path.split(separator: "/")
        return routes.first { r in r.template.count == parts.count && zip(r.template, parts).allSatisfy { $0 == "*" || $0 == $1 } }?.methods
    }
}

enum JSONResponse {
    /// A body that is already JSON text (a Codable shape's encoding).
    static func make(text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var text = JSONWriter.write(value)
        text += "\n"
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ e: UsageBoxError) -> Response {
        var response = make(e.jsonBody, status: HTTPResponse.Status(code: e.httpStatus))
        if let wait = e.retryAfter { response.headers[.retryAfter] = String(max(1, wait)) }
        return response
    }
}
