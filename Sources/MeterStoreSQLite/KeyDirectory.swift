import GRDB
import Metering

/// A read-only view of the rollup keys and meter settings of some accounts, for reads and verify.
struct KeyDirectory {
    var byID: [Int64: RollupKey] = [:]
    var ids: [RollupKey: Int64] = [:]
    var meters: [String: MeterConfig] = [:]
    private var decodedDims: [Int64: [String: String]] = [:]
    /// Ids handed to keys that raw events have but the rollups lack (verify reports them).
    private var nextSynthetic: Int64 = -1

    init(_ db: Database, scope: AccountScope) throws {
        let (clause, args) = SQLiteMeterStore.accountClause(scope, column: "account_id")
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT id, account_id, meter_id, model_id, kind, unit, dimensions FROM rollup_key WHERE \(clause)
                """, arguments: args)
        while let r = try rows.next() {
            let key = RollupKey(account: r[1], meter: r[2], model: r[3], kind: r[4], unit: r[5], dimensions: r[6])
            byID[r[0]] = key
            ids[key] = r[0]
        }
        meters = try Self.meters(db)
    }

    /// Every meter's settings.
    static func meters(_ db: Database) throws -> [String: MeterConfig] {
        var meters: [String: MeterConfig] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT meter_id, unit, rollup_dimensions FROM meter") {
            meters[r[0]] = MeterConfig(unit: r[1], rollupDimensions: SQLiteMeterStore.decodeNameList(r[2]))
        }
        return meters
    }

    func key(for e: UsageEvent) -> RollupKey {
        let config = meters[e.meterID] ?? MeterConfig(unit: nil, rollupDimensions: nil)
        return RollupKey(
            account: e.accountID, meter: e.meterID, model: e.modelID ?? "", kind: e.kind.rawValue, unit: e.unit ?? "",
            dimensions: UsageEvent.canonicalDimensions(config.projected(e.dimensions)))
    }

    mutating func id(for e: UsageEvent) -> Int64 { id(for: key(for: e)) }

    mutating func id(for key: RollupKey) -> Int64 {
        if let id = ids[key] { return id }
        let id = nextSynthetic
        nextSynthetic -= 1
        ids[key] = id
        byID[id] = key
        return id
    }

    mutating func dimensions(of id: Int64) -> [String: String] {
        if let d = decodedDims[id] { return d }
        var out: [String: String] = [:]
        for d in UsageEvent.decodeDimensions(byID[id]?.dimensions ?? "{}") { out[d.key] = d.value }
        decodedDims[id] = out
        return out
    }
}

extension SQLiteMeterStore {
    /// A SQL condition limiting `column` to the scope's accounts, with its arguments.
    static func accountClause(_ scope: AccountScope, column: String) -> (String, StatementArguments) {
        switch scope {
        case .all: return ("1", [])
        case let .accounts(list):
            if list.isEmpty { return ("0", []) }
            return ("\(column) IN (\(Array(repeating: "?", count: list.count).joined(separator: ", ")))", StatementArguments(list))
        }
    }
}

/// The rollup keys a grouped read meets, fetched by id as its rows name them and decoded once: a
/// read of an empty hour fetches none, where loading every key of the scope first (thousands of
/// keys of 32 dimensions) took seconds and hundreds of megabytes per read.
struct RollupKeyReader {
    struct Key {
        var account: String
        var meter: String
        var model: String?
        var kind: String
        var unit: String?
        var dimensions: [String: String]
    }
    private var cache: [Int64: Key] = [:]

    mutating func key(_ id: Int64, _ db: Database) throws -> Key {
        if let k = cache[id] { return k }
        let statement = try db.cachedStatement(sql: "SELECT account_id, meter_id, model_id, kind, unit, dimensions FROM rollup_key WHERE id = ?")
        guard let r = try Row.fetchOne(statement, arguments: [id]) else { throw UsageBoxError(.internal, "rollup key \(id) is not in rollup_key") }
        let stored = RollupKey(account: r[0], meter: r[1], model: r[2], kind: r[3], unit: r[4], dimensions: r[5])
        var dims: [String: String] = [:]
        for d in UsageEvent.decodeDimensions(stored.dimensions) { dims[d.key] = d.value }
        let k = Key(account: stored.account, meter: stored.meter, model: stored.modelID, kind: stored.kind, unit: stored.unitValue, dimensions: dims)
        cache[id] = k
        return k
    }
}
