public import ExactJSON

/// A JSON shape of the API: encoded by the server and the CLI's `--json`, decoded by the HTTP
/// client store, always through these `Codable` conformances (exact integers, members in order).
///
/// ```swift
/// let text = JSONWriter.write(report.jsonValue)                        // server, CLI --json
/// let back = try VerifyReport.decode(try JSONParser.parse(text))       // HTTP client store
/// ```
public protocol WireShape: Codable, Sendable {}

extension WireShape {
    /// The shape as a `JSONValue`, ready for `JSONWriter`.
    public var jsonValue: JSONValue {
        do {
            return try JSONValueEncoder.encode(self)
        } catch {
            preconditionFailure("\(Self.self) could not encode itself: \(error)")
        }
    }

    /// Reads the shape back; a malformed answer is an error naming the member.
    public static func decode(_ value: JSONValue, userInfo: [CodingUserInfoKey: any Sendable] = [:]) throws -> Self {
        try JSONValueDecoder.decode(Self.self, from: value, userInfo: userInfo)
    }
}

extension EventKind: Codable {}
extension KeyRole: Codable {}
extension SourcePreference: Codable {}
extension UsageMetric: Codable {}

// MARK: requests

/// `POST /v1/usage/batch`: the events travel as JSON, each decoded and validated on its own.
public struct UsageBatchBody: WireShape, StrictWireDecodable {
    public var events: [JSONValue]
    /// The most events one batch may hold (the server refuses more; the HTTP client splits).
    public static let maxEvents = 10_000
    /// The most bytes a request body may hold (any request; the HTTP client splits batches under it).
    public static let maxBodyBytes = 16 << 20
    public static let wireFields: Set<String> = ["events"]
    public init(events: [JSONValue]) { self.events = events }
}

/// `POST /v1/query/sql`.
public struct SQLQueryBody: WireShape, StrictWireDecodable {
    public var sql: String
    /// Narrows the view to one account the key may see (the CLI's `--account` over `--server`,
    /// which was dropped and answered for every account).
    public var accountID: String?
    /// Lowers the server's time limit for this query (seconds); never raises it.
    public var timeoutSeconds: Double?
    /// The server's time limit when nobody sets one (`serve`'s, the CLI's `--timeout`).
    public static let defaultTimeoutSeconds: Double = 10
    enum CodingKeys: String, CodingKey, CaseIterable { case sql, accountID = "account_id", timeoutSeconds = "timeout_seconds" }
    public static let wireFields = fields(CodingKeys.self)
    public init(sql: String, accountID: String? = nil, timeoutSeconds: Double? = nil) {
        self.sql = sql
        self.accountID = accountID
        self.timeoutSeconds = timeoutSeconds
    }
}

/// `POST /v1/accounts/{account}/periods/close`.
public struct PeriodCloseBody: WireShape, StrictWireDecodable {
    public var period: String
    public static let wireFields: Set<String> = ["period"]
    public init(period: String) { self.period = period }
}

/// `PUT /v1/meters/{meter_id}`: what to set (an absent member leaves it as it is).
public struct MeterSettingsBody: WireShape, StrictWireDecodable {
    public var unit: String?
    public var rollupDimensions: [String]?
    enum CodingKeys: String, CodingKey, CaseIterable { case unit, rollupDimensions = "rollup_dimensions" }
    public static let wireFields = fields(CodingKeys.self)
    public init(unit: String?, rollupDimensions: [String]?) {
        self.unit = unit
        self.rollupDimensions = rollupDimensions
    }

    /// `"rollup_dimensions": null` read as "leave it" and changed nothing, silently: refused,
    /// naming the two spellings that do something. So is `"unit": null` (a unit is never unset).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.unit), try c.decodeNil(forKey: .unit) {
            throw UsageBoxError.invalidArgument("unit is null: name the unit, or leave the member out to leave it as it is", field: "unit")
        }
        unit = try c.decodeIfPresent(String.self, forKey: .unit)
        if c.contains(.rollupDimensions), try c.decodeNil(forKey: .rollupDimensions) {
            throw UsageBoxError.invalidArgument(
                "rollup_dimensions is null: send [\"*\"] to keep every dimension, or leave the member out to leave it as it is",
                field: "rollup_dimensions")
        }
        rollupDimensions = try c.decodeIfPresent([String].self, forKey: .rollupDimensions)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let unit { try c.encode(unit, forKey: .unit) }
        if let rollupDimensions { try c.encode(rollupDimensions, forKey: .rollupDimensions) }
    }
}

/// `POST /v1/query/json`: a grouped read written as JSON.
public struct JSONQueryBody: WireShape, StrictWireDecodable {
    public var accountID: String?
    public var from: String?
    public var to: String?
    public var filters: [Filter]?
    /// An array of names, or (accepted for convenience) one comma-separated string.
    public var groupBy: OneOrMany?
    public var metrics: [String]?
    public var source: String?

    public struct Filter: Codable, Sendable, StrictWireDecodable {
        public var field: String
        public var op: String?
        public var value: OneOrMany
        enum CodingKeys: String, CodingKey, CaseIterable { case field, op, value }
        public static let wireFields = fields(CodingKeys.self)
        public init(field: String, op: String?, value: OneOrMany) {
            self.field = field
            self.op = op
            self.value = value
        }
    }

    /// A string or an array of strings.
    public enum OneOrMany: Codable, Sendable, Equatable {
        case one(String)
        case many([String])
        public var values: [String] {
            switch self {
            case let .one(s): return [s]
            case let .many(a): return a
            }
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .one(s); return }
            guard let a = try? c.decode([String].self) else {
                throw JSONValueDecoder.Failure(path: JSONValueDecoder.pathText(decoder.codingPath), message: "must be a string or an array of strings")
            }
            self = .many(a)
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case let .one(s): try c.encode(s)
            case let .many(a): try c.encode(a)
            }
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case accountID = "account_id", from, to, filters, groupBy = "group_by", metrics, source
    }
    public static let wireFields = fields(CodingKeys.self)

    public init(
        accountID: String? = nil, from: String?, to: String?, filters: [Filter]? = nil, groupBy: OneOrMany? = nil,
        metrics: [String]? = nil, source: String? = nil
    ) {
        self.accountID = accountID
        self.from = from
        self.to = to
        self.filters = filters
        self.groupBy = groupBy
        self.metrics = metrics
        self.source = source
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let accountID { try c.encode(accountID, forKey: .accountID) }
        try c.encodeIfPresent(from, forKey: .from)
        try c.encodeIfPresent(to, forKey: .to)
        if let filters { try c.encode(filters, forKey: .filters) }
        if let groupBy { try c.encode(groupBy, forKey: .groupBy) }
        if let metrics { try c.encode(metrics, forKey: .metrics) }
        if let source { try c.encode(source, forKey: .source) }
    }
}

// MARK: lists

/// `GET /v1/accounts/{account}/periods`.
public struct PeriodList: WireShape {
    public var accountID: String
    public var periods: [PeriodRecord]
    enum CodingKeys: String, CodingKey { case accountID = "account_id", periods }
    public init(accountID: String, periods: [PeriodRecord]) {
        self.accountID = accountID
        self.periods = periods
    }
}

/// `GET /v1/meters`.
public struct MeterList: WireShape {
    public var meters: [MeterInfo]
    public init(meters: [MeterInfo]) { self.meters = meters }
}

/// `usagebox keys --json`.
public struct KeyList: WireShape {
    public var keys: [APIKey]
    public init(keys: [APIKey]) { self.keys = keys }
}

extension JSONValueDecoder.Failure {
    /// The failure as the 400 a client sees, naming the member.
    public var usageBoxError: UsageBoxError { UsageBoxError.invalidArgument(description, field: path.isEmpty ? nil : path) }
}

/// `usagebox keys create --json`: the secret, shown once.
public struct CreatedKey: WireShape {
    public var keyID: String
    public var secret: String
    public var accountID: String?
    public var role: KeyRole
    enum CodingKeys: String, CodingKey { case keyID = "key_id", secret, accountID = "account_id", role }
    public init(key: APIKey, secret: String) {
        keyID = key.keyID
        self.secret = secret
        accountID = key.accountID
        role = key.role
    }
}
