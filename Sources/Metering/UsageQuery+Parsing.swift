public import ExactJSON

extension UsageQuery {
    /// The most values all of a query's filters may list together.
    public static let maxFilterValues = 10_000
    /// The most names a `group_by` may list, and the most fields a query may filter on: every
    /// event field and an event's 32 dimensions, and more. 20,000 unknown names held a reader's
    /// request 22 s, and four of them the whole server, before the first was refused.
    public static let maxGroupBy = 48
    public static let maxFilterFields = 64

    /// Parameters of `GET …/usage` that are not filters.
    public static let controlParameters: Set<String> = ["from", "to", "group_by", "source"]

    /// Builds a query from URL-style parameters (docs/api.md): `from`, `to`, `group_by`
    /// (comma-separated), `source`, and every other parameter a filter (`model_id=…`,
    /// `token_type=…`, `dim.source=…`; a repeated name means any of its values).
    public static func fromParameters(_ params: [(String, String)], scope: AccountScope) throws -> UsageQuery {
        func single(_ name: String) throws -> String? {
            let values = params.filter { $0.0 == name }.map(\.1)
            guard values.count <= 1 else { throw UsageBoxError.invalidArgument("'\(name)' is given more than once", field: name) }
            return values.first
        }
        let range = try TimeRange(from: try single("from"), to: try single("to"))
        let groupBy = try groupByFields(
            params.filter { $0.0 == "group_by" }.flatMap { $0.1.split(separator: ",", omittingEmptySubsequences: false).map(String.init) },
            member: "group_by")
        var source = SourcePreference.auto
        if let s = try single("source") {
            guard let parsed = SourcePreference(rawValue: s) else {
                throw UsageBoxError.invalidArgument("source must be auto, rollup or raw, got '\(s)'", field: "source")
            }
            source = parsed
        }
        var filterValues: [(UsageField, [String])] = []
        var indexOf: [String: Int] = [:]
        for (name, value) in params where !controlParameters.contains(name) {
            if let i = indexOf[name] {
                filterValues[i].1.append(value)
                continue
            }
            let field = try UsageField(parsing: name)
            if let i = filterValues.firstIndex(where: { $0.0 == field }) {
                // Another spelling of a field already named (`dim.x` and `x`).
                indexOf[name] = i
                filterValues[i].1.append(value)
            } else {
                guard filterValues.count < maxFilterFields else {
                    throw UsageBoxError.invalidArgument("the query filters on more than \(maxFilterFields) fields", field: name)
                }
                indexOf[name] = filterValues.count
                filterValues.append((field, [value]))
            }
        }
        // Values compare with stored text, which is NFC (docs/events.md).
        let filters = filterValues.map { UsageFilter(field: $0.0, op: $0.1.count == 1 ? .eq : .in, values: $0.1.map(EventDecoder.nfc)) }
        try checkFilters(filters, scope: scope)
        return UsageQuery(scope: scope, range: range, groupBy: groupBy, filters: filters, source: source)
    }

    /// The fields a `group_by` names, in order, each once, spaces around a name ignored, in the
    /// URL's comma-separated form and the JSON query's string or list alike; an error names `member`.
    static func groupByFields(_ names: [String], member: String) throws -> [UsageField] {
        guard names.count <= maxGroupBy else {
            throw UsageBoxError.invalidArgument("\(member) lists \(names.count) names; at most \(maxGroupBy)", field: member)
        }
        var groupBy: [UsageField] = []
        for name in names {
            let p = String(name.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
            guard !p.isEmpty else { throw UsageBoxError.invalidArgument("empty name in \(member)", field: member) }
            let field = try UsageField(parsing: p, member: member)
            guard !groupBy.contains(field) else { throw UsageBoxError.invalidArgument("'\(p)' appears twice in \(member)", field: member) }
            groupBy.append(field)
        }
        return groupBy
    }

    /// `kind` takes only Usage or Correction: a typo must never read as zero. An account a filter
    /// asks for must be one the key may see: a 403, as naming it in the path is, not a quiet zero.
    static func checkFilters(_ filters: [UsageFilter], scope: AccountScope, member: String? = nil) throws {
        // Each value is a bound SQL variable: past SQLite's limit a long list was a 500.
        let values = filters.reduce(0) { $0 + $1.values.count }
        guard values <= maxFilterValues else {
            throw UsageBoxError.invalidArgument(
                "the filters hold \(values) values; at most \(maxFilterValues) (filter by a dimension the events share instead)",
                field: member ?? filters.first?.field.name ?? "filters")
        }
        // The URL's parameter, or the JSON body's member (`filters[1].value`): with several
        // filters, `filters` alone did not say which was wrong.
        func field(_ i: Int, _ f: UsageFilter) -> String { member.map { "\($0)[\(i)].value" } ?? f.field.name }
        for (i, f) in filters.enumerated() where f.field == .kind {
            for v in f.values where EventKind(rawValue: v) == nil {
                throw UsageBoxError.invalidArgument("kind is Usage or Correction, got '\(v)'", field: field(i, f))
            }
        }
        // An id no event can carry (empty, or past the id alphabet) can only be a typo or an
        // unset variable (`model_id=$MODEL`): refused, as an unknown name is, not read as zero.
        for (i, f) in filters.enumerated() where (f.field == .modelID || f.field == .meterID) && (f.op == .eq || f.op == .in) {
            for v in f.values where !EventDecoder.isValidIdentifier(v) {
                throw UsageBoxError.invalidArgument(
                    "\(f.field.name) must be \(EventDecoder.identifierRule), got '\(v.prefix(80))': no event could match it",
                    field: field(i, f))
            }
        }
        for (i, f) in filters.enumerated() where f.field == .accountID && (f.op == .eq || f.op == .in) {
            for v in f.values {
                guard EventDecoder.isValidIdentifier(v) else {
                    throw UsageBoxError.invalidArgument(
                        "account_id must be \(EventDecoder.identifierRule), got '\(v.prefix(80))'", field: field(i, f))
                }
                guard scope.allows(v) else { throw UsageBoxError(.permissionDenied, "this key may not see account \(v)", field: field(i, f)) }
            }
        }
    }

    /// Reads the body of `POST /v1/query/json`; a malformed member is a 400 naming it.
    public static func jsonBody(_ json: JSONValue) throws -> JSONQueryBody {
        do {
            return try JSONQueryBody.decode(json)
        } catch let f as JSONValueDecoder.Failure {
            throw f.usageBoxError
        }
    }

    /// Builds a query from the JSON body of `POST /v1/query/json` (docs/api.md).
    public static func fromJSON(_ json: JSONValue, scope: AccountScope) throws -> UsageQuery {
        try from(try jsonBody(json), scope: scope)
    }

    /// Builds a query from a JSON query body, naming the member that is wrong.
    public static func from(_ body: JSONQueryBody, scope: AccountScope) throws -> UsageQuery {
        let range = try TimeRange(from: body.from, to: body.to)
        let groupBy: [UsageField]
        switch body.groupBy {
        case nil: groupBy = []
        case let .one(s)?: groupBy = try groupByFields(s.split(separator: ",", omittingEmptySubsequences: false).map(String.init), member: "group_by")
        case let .many(names)?: groupBy = try groupByFields(names, member: "group_by")
        }
        var metrics: [UsageMetric] = [.sum, .count]
        if let names = body.metrics {
            guard names.count <= UsageMetric.allCases.count else {
                throw UsageBoxError.invalidArgument("metrics lists \(names.count) names; there are \(UsageMetric.allCases.count)", field: "metrics")
            }
            metrics = try names.map { name in
                guard let m = UsageMetric(rawValue: name) else {
                    throw UsageBoxError.invalidArgument("metrics are sum, count, min, max or avg; got '\(name)'", field: "metrics")
                }
                return m
            }
            guard !metrics.isEmpty else { throw UsageBoxError.invalidArgument("metrics must name at least one metric", field: "metrics") }
            guard Set(metrics).count == metrics.count else { throw UsageBoxError.invalidArgument("metrics names one metric twice", field: "metrics") }
        }
        var filters: [UsageFilter] = []
        if let list = body.filters, list.count > maxFilterFields {
            throw UsageBoxError.invalidArgument("filters lists \(list.count) filters; at most \(maxFilterFields)", field: "filters")
        }
        for (i, f) in (body.filters ?? []).enumerated() {
            let at = "filters[\(i)]"
            let opName = f.op ?? "eq"
            guard let op = UsageFilter.Op(rawValue: opName) else {
                throw UsageBoxError.invalidArgument("\(at).op must be eq, neq, in or not_in, got '\(opName)'", field: "\(at).op")
            }
            let values = f.value.values
            if op == .eq || op == .neq, values.count != 1 {
                throw UsageBoxError.invalidArgument("\(at): '\(opName)' takes one value", field: "\(at).value")
            }
            filters.append(UsageFilter(field: try UsageField(parsing: f.field, member: "\(at).field"), op: op, values: values.map(EventDecoder.nfc)))
        }
        var source = SourcePreference.auto
        if let s = body.source {
            guard let p = SourcePreference(rawValue: s) else { throw UsageBoxError.invalidArgument("source must be auto, rollup or raw", field: "source") }
            source = p
        }
        try checkFilters(filters, scope: scope, member: "filters")
        return UsageQuery(scope: scope, range: range, groupBy: groupBy, filters: filters, metrics: metrics, source: source)
    }

    /// The query as a JSON query body, for one account or all (the HTTP client sends this).
    public func jsonBody() throws -> JSONQueryBody {
        var account: String?
        switch scope {
        case .all: break
        case let .accounts(list):
            guard list.count == 1 else { throw UsageBoxError.invalidArgument("a remote read names one account or all", field: "account_id") }
            account = list[0]
        }
        return JSONQueryBody(
            accountID: account, from: range.from.rfc3339, to: range.to.rfc3339,
            filters: filters.map { .init(field: $0.field.name, op: $0.op.rawValue, value: .many($0.values)) },
            groupBy: .many(groupBy.map(\.name)), metrics: metrics.map(\.rawValue), source: source.rawValue)
    }
}
