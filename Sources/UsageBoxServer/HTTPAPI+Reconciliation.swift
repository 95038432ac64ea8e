import ExactJSON
import Foundation
public import Hummingbird
public import Metering
public import ReconCore

/// What the HTTP API needs of reconciliation; the composition root supplies it.
public protocol ReconciliationBackend: Sendable {
    func vendorsJSON() -> JSONValue
    func run(_ options: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)?, apply: Bool)
        async throws -> (report: ReconciliationReport, applied: IngestResponse?)
    func apply(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse
}

extension HTTPAPI {
    func addReconciliationRoutes(to router: Router<BasicRequestContext>) {
        guard let backend = reconciliation else { return }
        router.get("/v1/vendors") { request, _ in
            _ = try await authenticate(request)
            return JSONResponse.make(backend.vendorsJSON())
        }
        router.post("/v1/reconciliations") { request, _ in
            let key = try await authenticate(request)
            let options = try await reconciliationOptions(request, key: key)
            do {
                let (report, _) = try await backend.run(options, store: store, log: reconciliationLog, apply: false)
                return JSONResponse.make(report.jsonValue, status: .created)
            } catch let drift as VerifyDrift {
                throw UsageBoxError(.verifyDrift, drift.description)
            }
        }
        router.get("/v1/reconciliations/:id") { request, context in
            let key = try await authenticate(request)
            let (text, _) = try await storedReport(context.parameters.get("id") ?? "", key: key)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
        }
        router.post("/v1/reconciliations/:id/apply") { request, context in
            let key = try await authenticate(request)
            try require(key, .writer)
            let id = context.parameters.get("id") ?? ""
            _ = try await storedReport(id, key: key)
            guard let log = reconciliationLog else { throw UsageBoxError(.notFound, "no reconciliation \(id)") }
            return JSONResponse.make(try await backend.apply(id: id, store: store, log: log).jsonValue)
        }
    }

    /// A stored report the key may see: its account's keys, or admins for cross-account runs.
    func storedReport(_ id: String, key: APIKey) async throws -> (String, JSONValue) {
        guard let log = reconciliationLog, let text = try await log.reconciliation(id: id) else {
            throw UsageBoxError(.notFound, "no reconciliation \(id)", field: "id")
        }
        let json = try JSONParser.parse(text)
        let account = json["account_id"]?.stringValue
        let corrected = (json["corrections"]?.arrayValue ?? []).compactMap { $0["account_id"]?.stringValue }
        let visible = key.role == .admin || (account.map(key.scope.allows) ?? false) && corrected.allSatisfy(key.scope.allows)
        guard visible else { throw UsageBoxError(.permissionDenied, "this key may not see reconciliation \(id)") }
        return (text, json)
    }

    /// The options from the query string and raw invoice body, or from a JSON body with `invoices`.
    func reconciliationOptions(_ request: Request, key: APIKey) async throws -> ReconciliationOptions {
        let params = try parameters(request)
        let value = { (name: String) in params.last { $0.0 == name }?.1 }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxInvoiceBytes)
        } catch {
            throw UsageBoxError(.payloadTooLarge, "the invoice body is larger than \(Self.maxInvoiceBytes >> 20) MiB")
        }
        let bytes = Array(buffer.readableBytesView)
        let json = bytes.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) == UInt8(ascii: "{")
            ? try? JSONParser.parse(bytes: bytes) : nil
        var options: ReconciliationOptions
        if let json, json["invoices"] != nil {
            func string(_ name: String) throws -> String? {
                switch json[name] {
                case nil, .null?: return nil
                case let .string(s)?: return s
                case let v?: throw UsageBoxError.invalidArgument("\(name) must be a string, got \(v.typeName)", field: name)
                }
            }
            guard let vendor = try string("vendor") else { throw UsageBoxError.invalidArgument("vendor is required", field: "vendor") }
            guard case let .array(items)? = json["invoices"], !items.isEmpty else {
                throw UsageBoxError.invalidArgument("invoices must be a non-empty array of {name, content_base64}", field: "invoices")
            }
            var files: [InvoiceFile] = []
            for (i, item) in items.enumerated() {
                guard let name = item["name"]?.stringValue, let b64 = item["content_base64"]?.stringValue,
                      let data = Data(base64Encoded: b64) else {
                    throw UsageBoxError.invalidArgument("invoices[\(i)] needs a name and base64 content_base64", field: "invoices[\(i)]")
                }
                files.append(InvoiceFile(name: name, bytes: Array(data)))
            }
            options = ReconciliationOptions(vendor: vendor, invoices: files, range: try TimeRange(from: try string("from"), to: try string("to")),
                                            account: try string("account_id"))
            if let rules = try string("rules_yaml") {
                do { options.rules = try ClassificationRules.load(text: rules, file: "rules_yaml") } catch let e as ConfigError {
                    throw UsageBoxError.invalidArgument(e.description, field: "rules_yaml")
                }
            }
            if case let .object(map)? = json["account_map"] {
                for (k, v) in map {
                    guard let a = v.stringValue else { throw UsageBoxError.invalidArgument("account_map values are account ids", field: "account_map") }
                    options.accountMap[k] = a
                }
            }
            if case let .object(fx)? = json["fx"] {
                options.fx = try fxRates(fx.map { ($0.0, $0.1) })
            }
            options.deepVerify = json["deep_verify"] == .bool(true)
            options.allowDrift = json["allow_drift"] == .bool(true)
            options.allowOverlap = json["allow_overlap"] == .bool(true)
            options.meterID = try string("meter_id")
        } else {
            guard let vendor = value("vendor") else { throw UsageBoxError.invalidArgument("vendor is required", field: "vendor") }
            guard !bytes.isEmpty else { throw UsageBoxError.invalidArgument("the body must be the invoice file", field: "body") }
            options = ReconciliationOptions(vendor: vendor, invoices: [InvoiceFile(name: value("name") ?? "invoice", bytes: bytes)],
                                            range: try TimeRange(from: value("from"), to: value("to")), account: value("account"))
            options.meterID = value("meter_id")
            options.deepVerify = value("deep_verify") == "true"
        }
        options.scope = key.scope
        options.runBy = key.keyID
        if options.account == nil, options.accountMap.isEmpty, key.role != .admin, let only = key.accountID {
            options.account = only
        }
        return options
    }

    func fxRates(_ pairs: [(String, JSONValue)]) throws -> [String: Decimal] {
        var out: [String: Decimal] = [:]
        for (cur, v) in pairs {
            guard let text = v.stringValue, let rate = ExactDecimal.parse(text), rate > 0 else {
                throw UsageBoxError.invalidArgument("fx rates are decimal strings, e.g. {\"EUR\": \"1.0842\"}", field: "fx.\(cur)")
            }
            out[cur.uppercased()] = rate
        }
        return out
    }
}
