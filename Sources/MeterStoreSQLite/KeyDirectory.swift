import GRDB
import Metering

/// The rollup keys of one account as verify and the scrub meet them: an event's key id looked up
/// by its content through the unique index, a key's content by id, each kept in a bounded cache.
/// Loading every key of the account first cost memory in its keys' size (an account of tens of
/// thousands of keys of 32 long dimensions: gigabytes) for each verify.
struct KeyDirectory {
    var meters: [String: MeterConfig] = [:]
    private var ids: [RollupKey: Int64] = [:]
    /// Keys that raw events have but the rollups lack (verify reports them), under ids below zero.
    private var synthetic: [Int64: RollupKey] = [:]
    private var nextSynthetic: Int64 = -1
    private var cachedBytes = 0
    /// Past this many bytes of cached keys the cache starts again (a key of 32 dimensions of
    /// control characters is ~46 KB): a key's lookup is one indexed read.
    static let cacheLimit = 4 << 20

    init(_ db: Database) throws {
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

    mutating func id(for e: UsageEvent, _ db: Database) throws -> Int64 { try id(for: key(for: e), db) }

    mutating func id(for key: RollupKey, _ db: Database) throws -> Int64 {
        if let id = ids[key] { return id }
        let statement = try db.cachedStatement(
            sql: """
                SELECT id FROM rollup_key
                WHERE account_id = ? AND meter_id = ? AND model_id = ? AND kind = ? AND unit = ? AND dimensions = ?
                """)
        let id: Int64
        if let stored = try Int64.fetchOne(statement, arguments: [key.account, key.meter, key.model, key.kind, key.unit, key.dimensions]) {
            id = stored
            let size = key.account.utf8.count + key.meter.utf8.count + key.model.utf8.count + key.unit.utf8.count + key.dimensions.utf8.count
            if cachedBytes + size > Self.cacheLimit {
                ids.removeAll(keepingCapacity: true)
                cachedBytes = 0
            }
            cachedBytes += size
        } else {
            id = nextSynthetic
            nextSynthetic -= 1
            synthetic[id] = key
        }
        ids[key] = id
        return id
    }

    /// A key's content, for the few a report names.
    func key(_ id: Int64, _ db: Database) throws -> RollupKey? {
        if let k = synthetic[id] { return k }
        let statement = try db.cachedStatement(sql: "SELECT account_id, meter_id, model_id, kind, unit, dimensions FROM rollup_key WHERE id = ?")
        return try Row.fetchOne(statement, arguments: [id]).map {
            RollupKey(account: $0[0], meter: $0[1], model: $0[2], kind: $0[3], unit: $0[4], dimensions: $0[5])
        }
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
