import ExactJSON
import Hummingbird
import Metering

/// Ingest, reads, verify, explain, periods and queries over the meter store.
struct MeteringController {
    let api: HTTPAPI

    func register(_ routes: OperationRoutes) {
        let api = self.api
        let store = api.store
        routes.on("ingestBatch") { request, _, caller in try await api.ingest(request, caller.key) }
        routes.on("accountUsage") { request, _, caller in
            let q = try UsageQuery.fromParameters(try api.parameters(request), scope: caller.key.scope.intersect(.accounts([caller.pathAccount])))
            try api.checkBuckets(q.range, q.groupBy)
            return try await api.usageAnswer(q)
        }
        routes.on("usage") { request, _, caller in
            let q = try UsageQuery.fromParameters(try api.parameters(request), scope: caller.key.scope)
            try api.checkBuckets(q.range, q.groupBy)
            return try await api.usageAnswer(q)
        }
        routes.on("verify") { request, _, caller in
            let params = try api.uniqueParameters(request)
            let value = { (name: String) in params[name] }
            let range = try TimeRange(from: value("from"), to: value("to"))
            var mode = VerifyMode.deep
            if let m = value("mode") {
                guard let parsed = VerifyMode(rawValue: m) else { throw UsageBoxError.invalidArgument("mode is deep or incremental", field: "mode") }
                mode = parsed
            }
            if let g = value("group_by"), g != "day" { throw UsageBoxError.invalidArgument("verify groups only by day", field: "group_by") }
            if value("group_by") == "day" { try api.checkBuckets(range, [.day]) }
            let report = try await store.verify(
                VerifyRequest(account: caller.pathAccount, range: range, mode: mode, byDay: value("group_by") == "day"))
            api.metrics?.verified(account: caller.pathAccount, report)
            return JSONResponse.make(report)
        }
        routes.on("explain") { request, _, caller in
            let params = try api.uniqueParameters(request)
            let range = try TimeRange(from: params["from"], to: params["to"])
            return JSONResponse.make(try await store.explain(account: caller.pathAccount, range: range))
        }
        routes.on("closePeriod") { request, _, caller in
            let body = try await api.body(PeriodCloseBody.self, request)
            return JSONResponse.make(try await store.closePeriod(account: caller.pathAccount, period: body.period))
        }
        routes.on("listPeriods") { _, _, caller in
            JSONResponse.make(PeriodList(accountID: caller.pathAccount, periods: try await store.periods(account: caller.pathAccount)))
        }
        routes.on("querySQL") { request, _, caller in
            let body = try await api.body(SQLQueryBody.self, request)
            guard !body.sql.isEmpty else { throw UsageBoxError.invalidArgument("the body needs {\"sql\": \"SELECT …\"}", field: "sql") }
            let scope = try api.narrowed(caller.key.scope, to: body.accountID)
            var limit = api.sqlTimeLimitSeconds
            if let t = body.timeoutSeconds {
                guard t.isFinite, t > 0 else {
                    throw UsageBoxError.invalidArgument("timeout_seconds must be a finite number of seconds above 0", field: "timeout_seconds")
                }
                limit = min(limit, t)
            }
            return JSONResponse.make(try await store.sql(body.sql, scope: scope, timeLimitSeconds: limit, rowLimit: 10_000))
        }
        routes.on("queryJSON") { request, _, caller in
            let body = try UsageQuery.jsonBody(try await api.jsonBody(request))
            let q = try UsageQuery.from(body, scope: try api.narrowed(caller.key.scope, to: body.accountID))
            try api.checkBuckets(q.range, q.groupBy)
            return try await api.usageAnswer(q)
        }
    }
}

/// Meters: listed for any key, managed by admin keys.
struct AdminController {
    let api: HTTPAPI

    func register(_ routes: OperationRoutes) {
        let api = self.api
        routes.on("metrics") { _, _, _ in
            guard let metrics = api.metrics else { throw UsageBoxError(.notFound, "this server keeps no metrics") }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        routes.on("listMeters") { _, _, caller in
            JSONResponse.make(MeterList(meters: try await api.store.meters(scope: caller.key.scope)))
        }
        routes.on("setMeter") { request, context, _ in
            let meterID = try HTTPAPI.pathIdentifier(context.parameters.require("meter_id"), field: "meter_id")
            let body = try await api.body(MeterSettingsBody.self, request)
            return JSONResponse.make(try await api.store.setMeter(meterID, unit: body.unit, rollupDimensions: body.rollupDimensions))
        }
    }
}
