import Hummingbird
public import Metering
import Yams

/// One operation of the HTTP API, as `openapi.yaml` declares it. The document is the one source of
/// the routes: the router mounts a handler at each operation's method and path, behind the role in
/// `x-usagebox-role` and the work limits when `x-usagebox-expensive` (or `x-usagebox-read`) is set; the 405 answers and
/// the attack suite's authorization matrix come from the same list.
public struct APIOperation: Sendable, Hashable {
    public let id: String
    public let method: String
    /// The OpenAPI path template (`/v1/accounts/{account}/usage`).
    public let path: String
    /// The least role a key needs; nil for an operation that needs no key.
    public let role: KeyRole?
    /// Counts against the per-key and overall limits on expensive work (429 beyond them).
    public let expensive: Bool
    /// Counts against the per-key and overall limits on grouped reads (429 beyond them): a read of
    /// a high-cardinality dimension takes seconds, and one key's many would queue everyone's.
    public let read: Bool
    /// How the key is presented: a bearer header (the API), a browser session (the pages), or not at all.
    public let auth: Auth
    /// The query parameters the document names for it: any other is refused (a misspelt one must
    /// not be ignored).
    public var queryParameters: Set<String> = []
    /// Any other parameter filters by a dimension of that name (`x-usagebox-dimension-filters`):
    /// the operation's own reader checks those names against the account's dimensions.
    public var dimensionFilters = false
    /// The statuses the document lists for it: an answer outside them is a bug in one or the other.
    public var statuses: Set<Int> = []

    public enum Auth: String, Sendable, Hashable { case none, bearer, session }

    /// Whether the path names an account, which the key must be allowed to see.
    var namesAccount: Bool { path.contains("{account}") }

    /// The path as Hummingbird writes parameters (`/accounts/:account/usage`), under `prefix`.
    func routerPath(dropping prefix: String) -> String {
        var p = path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
        while let open = p.firstIndex(of: "{"), let close = p[open...].firstIndex(of: "}") {
            p.replaceSubrange(open...close, with: ":" + p[p.index(after: open)..<close])
        }
        return p.isEmpty ? "/" : p
    }
}

extension APIOperation {
    /// Every operation of the served document, sorted by path and method.
    public static let all: [APIOperation] = {
        do {
            return try parse(OpenAPIDocument.yaml)
        } catch {
            preconditionFailure("openapi.yaml does not describe its operations: \(error)")
        }
    }()

    public static func named(_ id: String) -> APIOperation? { all.first { $0.id == id } }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the operations of an OpenAPI document: each needs an `operationId`, and an
    /// `x-usagebox-role` unless it declares `security: []`.
    static func parse(_ yaml: String) throws -> [APIOperation] {
        guard let root = try Yams.load(yaml: yaml) as? [String: Any], let paths = root["paths"] as? [String: Any] else {
            throw Malformed(description: "no paths")
        }
        let shared = ((root["components"] as? [String: Any])?["parameters"] as? [String: Any]) ?? [:]
        // A parameter written out, or a `$ref` to one under components/parameters.
        func queryName(_ p: Any) -> String? {
            guard var p = p as? [String: Any] else { return nil }
            if let ref = p["$ref"] as? String, let named = shared[String(ref.split(separator: "/").last ?? "")] as? [String: Any] { p = named }
            return p["in"] as? String == "query" ? p["name"] as? String : nil
        }
        var out: [APIOperation] = []
        for (path, item) in paths {
            guard let methods = item as? [String: Any] else { throw Malformed(description: "\(path) is not a path item") }
            for (method, body) in methods where ["get", "post", "put", "delete", "patch"].contains(method) {
                guard let op = body as? [String: Any], let id = op["operationId"] as? String else {
                    throw Malformed(description: "\(method.uppercased()) \(path) has no operationId")
                }
                let open = (op["security"] as? [Any])?.isEmpty == true
                let role = (op["x-usagebox-role"] as? String).flatMap(KeyRole.init(rawValue:))
                guard open || role != nil else { throw Malformed(description: "\(id) names no x-usagebox-role (reader, writer or admin)") }
                var operation = APIOperation(
                    id: id, method: method.uppercased(), path: path, role: open ? nil : role,
                    expensive: op["x-usagebox-expensive"] as? Bool ?? false, read: op["x-usagebox-read"] as? Bool ?? false,
                    auth: open ? .none : (op["x-usagebox-auth"] as? String).flatMap(Auth.init(rawValue:)) ?? .bearer)
                let listed = ((item as? [String: Any])?["parameters"] as? [Any] ?? []) + (op["parameters"] as? [Any] ?? [])
                operation.queryParameters = Set(listed.compactMap(queryName))
                operation.dimensionFilters = op["x-usagebox-dimension-filters"] as? Bool ?? false
                operation.statuses = Set(((op["responses"] as? [String: Any]) ?? [:]).keys.compactMap { Int($0) })
                out.append(operation)
            }
        }
        guard Set(out.map(\.id)).count == out.count else { throw Malformed(description: "an operationId is used twice") }
        return out.sorted { ($0.path, $0.method) < ($1.path, $1.method) }
    }

    /// The methods a concrete path allows (`GET, POST`), or nil when no operation has that path:
    /// tells "no such route" (404) from "not with this method" (405).
    static func allowedMethods(_ path: String) -> String? {
        let methods = matching(path).map(\.method)
        return methods.isEmpty ? nil : methods.joined(separator: ", ")
    }

    /// The operation a concrete method and path (no query) reach, if any.
    public static func answering(_ method: String, _ path: String) -> APIOperation? {
        matching(path).first { $0.method == method }
    }

    private static func matching(_ path: String) -> [APIOperation] {
        let parts = path.split(separator: "/")
        return all.filter { op in
            let template = op.path.split(separator: "/")
            return template.count == parts.count && zip(template, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
    }
}
