public import ExactJSON

extension UsageQuery {
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
        var groupBy: [UsageField] = []
        for (name, value) in params where name == "group_by" {
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                let p = String(part.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
                guard !p.isEmpty else { throw UsageBoxError.invalidArgument("empty name in group_by", field: "group_by") }
                let field = try UsageField(parsing: p)
                guard !groupBy.contains(field) else { throw UsageBoxError.invalidArgument("'\(p)' appears twice in group_by", field: "group_by") }
                groupBy.append(field)
            }
        }
        var source = SourcePreference.auto
        if let s = try single("source") {
            guard let parsed = SourcePreference(rawValue: s) else {
                throw UsageBoxError.invalidArgument("source must be auto, rollup or raw, got '\(s)'", field: "source")
            }
            source = parsed
        }
        var filterValues: [(UsageField, [String])] = []
        for (name, value) in params where !controlParameters.contains(name) {
            let field = try UsageField(parsing: name)
            if let i = filterValues.firstIndex(where: { $0.0 == field }) {
                filterValues[i].1.append(value)
            } else {
                filterValues.append((field, [value]))
            }
        }
        let filters = filterValues.map { UsageFilter(field: $0.0, op: $0.1.count == 1 ? .eq : .in, values: $0.1) }
        try checkKinds(filters)
        return UsageQuery(scope: scope, range: range, groupBy: groupBy, filters: filters, source: source)
    }

    /// `kind` takes only Usage or Correction: a typo must never read as zero.
    static func checkKinds(_ filters: [UsageFilter]) throws {
        for f in filters where f.field == .kind {
            for v in f.values where EventKind(rawValue: v) == nil {
                throw UsageBoxError.invalidArgument("kind is Usage or Correction, got '\(v)'", field: "kind")
            }
        }
    }

    /// The account a JSON query names, if any.
    public static func jsonQueryAccount(_ json: JSONValue) throws -> String? {
        guard case .object = json else { throw UsageBoxError.invalidArgument("the query must be a JSON object") }
        switch json["account_id"] {
        case nil, .null?: return nil
        case let .string(s)?: return s
        case let v?: throw UsageBoxError.invalidArgument("account_id must be a string, got \(v.typeName)", field: "account_id")
        }
    }

    /// Builds a query from the JSON body of `POST /v1/query/json` (docs/api.md).
    public static func fromJSON(_ json: JSONValue, scope: AccountScope) throws -> UsageQuery {
        guard case let .object(members) = json else { throw UsageBoxError.invalidArgument("the query must be a JSON object") }
        let known: Set<String> = ["account_id", "from", "to", "filters", "group_by", "metrics", "source"]
        for (k, _) in members where !known.contains(k) {
            throw UsageBoxError.invalidArgument("unknown query field '\(k)'", field: k)
        }
        func string(_ name: String) throws -> String? {
            switch json[name] {
            case nil, .null?: return nil
            case let .string(s)?: return s
            case let v?: throw UsageBoxError.invalidArgument("\(name) must be a string, got \(v.typeName)", field: name)
            }
        }
        let range = try TimeRange(from: try string("from"), to: try string("to"))
        var groupBy: [UsageField] = []
        switch json["group_by"] {
        case nil, .null?: break
        case let .array(items)?:
            for item in items {
                guard let name = item.stringValue else { throw UsageBoxError.invalidArgument("group_by holds names (strings)", field: "group_by") }
                groupBy.append(try UsageField(parsing: name))
            }
        case let .string(s)?:
            groupBy = try s.split(separator: ",").map { try UsageField(parsing: String($0)) }
        case let v?: throw UsageBoxError.invalidArgument("group_by must be an array of names, got \(v.typeName)", field: "group_by")
        }
        var metrics: [UsageMetric] = [.sum, .count]
        switch json["metrics"] {
        case nil, .null?: break
        case let .array(items)?:
            metrics = try items.map { item in
                guard let name = item.stringValue, let m = UsageMetric(rawValue: name) else {
                    throw UsageBoxError.invalidArgument("metrics are sum, count, min, max or avg; got \(JSONWriter.write(item))", field: "metrics")
                }
                return m
            }
            guard !metrics.isEmpty else { throw UsageBoxError.invalidArgument("metrics must name at least one metric", field: "metrics") }
        case let v?: throw UsageBoxError.invalidArgument("metrics must be an array, got \(v.typeName)", field: "metrics")
        }
        var filters: [UsageFilter] = []
        switch json["filters"] {
        case nil, .null?: break
        case let .array(items)?:
            for (i, item) in items.enumerated() {
                let at = "filters[\(i)]"
                guard case .object = item else { throw UsageBoxError.invalidArgument("\(at) must be an object", field: at) }
                guard let fieldName = item["field"]?.stringValue else {
                    throw UsageBoxError.invalidArgument("\(at).field must be a string", field: "\(at).field")
                }
                let opName = item["op"]?.stringValue ?? "eq"
                guard let op = UsageFilter.Op(rawValue: opName) else {
                    throw UsageBoxError.invalidArgument("\(at).op must be eq, neq, in or not_in, got '\(opName)'", field: "\(at).op")
                }
                var values: [String]
                switch item["value"] {
                case let .string(s)?: values = [s]
                case let .array(a)?:
                    values = try a.map {
                        guard let s = $0.stringValue else { throw UsageBoxError.invalidArgument("\(at).value holds strings", field: "\(at).value") }
                        return s
                    }
                default: throw UsageBoxError.invalidArgument("\(at).value must be a string or an array of strings", field: "\(at).value")
                }
                if (op == .eq || op == .neq), values.count != 1 {
                    throw UsageBoxError.invalidArgument("\(at): '\(opName)' takes one value", field: "\(at).value")
                }
                filters.append(UsageFilter(field: try UsageField(parsing: fieldName), op: op, values: values))
            }
        case let v?: throw UsageBoxError.invalidArgument("filters must be an array, got \(v.typeName)", field: "filters")
        }
        var source = SourcePreference.auto
        if let s = try string("source") {
            guard let p = SourcePreference(rawValue: s) else { throw UsageBoxError.invalidArgument("source must be auto, rollup or raw", field: "source") }
            source = p
        }
        try checkKinds(filters)
        return UsageQuery(scope: scope, range: range, groupBy: groupBy, filters: filters, metrics: metrics, source: source)
    }
}
