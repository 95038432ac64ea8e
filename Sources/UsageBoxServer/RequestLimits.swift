import Foundation
public import Metering

/// What one request may cost the server, and how many may run at once.
public struct RequestLimits: Sendable {
    /// Expensive requests (SQL, JSON query, verify, explain, reconciliation) running at once, per
    /// account (its keys together; an admin key on its own) and overall.
    public var expensivePerKey = 2
    public var expensiveOverall = 4
    /// Usage reads running at once, per key and overall: one key's slow reads (a dimension with a
    /// value per event) held every reader while the others' waited behind them, and each may hold
    /// a few times its answer's 16 MiB while it is written.
    public var readsPerKey = 4
    public var readsOverall = 8
    /// Seconds the reads of one usage read or expensive request may take (SQL keeps its own
    /// limit): a JSON query, verify or explain of 300,000 events took 8–26 s, four of them held
    /// every expensive place for a minute and the server's memory at 1.4 GB (tester R2).
    public var readSeconds: Double = 30
    /// Failed authentications per client address per minute before 429.
    public var failedAuthPerMinute = 100
    /// The sliding window those failures are counted over (a minute; a test lengthens it so that a
    /// loaded machine's slow calls do not slide out of it).
    public var failedAuthWindow: Duration = .seconds(60)
    /// Requests with a body over `largeBodyBytes` (or of unknown length) read and handled at
    /// once, per key and overall: each may buffer up to 16 MiB, and 40 unfinished uploads from
    /// one reader key held 690 MB.
    public var largeBodiesPerKey = 4
    public var largeBodiesOverall = 8
    public static let largeBodyBytes = 1 << 20
    /// Bytes of smaller bodies (up to `largeBodyBytes`, by their Content-Length) read and handled
    /// at once, per key and overall: one reader key's 500 connections each stalling a body just
    /// under 1 MiB held 686 MB (an outside tester; 1,000 of a writer's, 1.4 GB), none of them
    /// counted by the limit on larger bodies.
    public var smallBodyBytesPerKey = 32 << 20
    public var smallBodyBytesOverall = 128 << 20
    /// The largest invoice a reconciliation request may carry.
    public var maxInvoiceBytes = 32 << 20
    /// Time buckets (hours, days, months) one usage or verify answer may hold.
    public var maxTimeBuckets = UsageQuery.maxTimeBuckets
    public init() {}
}

/// Counts expensive requests in flight per holder (an account's keys together, or an admin key)
/// and overall; beyond the limits a request is answered 429 at once rather than queued behind the others.
actor WorkLimiter {
    let perKey: Int
    let overall: Int
    /// What is counted, as the 429 names it ("expensive requests").
    let what: String
    /// How a count reads in the 429 (`4`, or `32 MiB` for bytes).
    let amount: @Sendable (Int) -> String
    private var running: [String: Int] = [:]
    private var total = 0

    init(perKey: Int, overall: Int, what: String = "expensive requests", amount: @escaping @Sendable (Int) -> String = { String($0) }) {
        self.perKey = perKey
        self.overall = overall
        self.what = what
        self.amount = amount
    }

    /// Bytes as a 429 names them: whole MiB when exact, else to a tenth (`31.5 MiB`).
    static func mebibytes(_ bytes: Int) -> String {
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10) MiB"
    }

    /// Takes `weight` of the limits (one place, or a body's bytes).
    func acquire(_ key: String, weight: Int = 1) throws {
        // What is in flight against the limit, and what this request asks, when it weighs more
        // than one place: "32 MiB" alone read as the limit, not as what was already held.
        func held(_ now: Int, _ limit: Int) -> String {
            "\(amount(now)) \(what) (at most \(amount(limit))\(weight > 1 ? "; this one declares \(amount(weight))" : ""))"
        }
        guard total + weight <= overall else {
            throw UsageBoxError.rateLimited("this server already runs \(held(total, overall)); try again shortly", retryAfter: 1)
        }
        guard running[key, default: 0] + weight <= perKey else {
            let who = key.hasPrefix("account ") ? "the keys of \(key.dropFirst(8)) already run" : "this key already runs"
            throw UsageBoxError.rateLimited("\(who) \(held(running[key, default: 0], perKey)); wait for one to finish", retryAfter: 1)
        }
        running[key, default: 0] += weight
        total += weight
    }

    func release(_ key: String, weight: Int = 1) {
        running[key, default: weight] -= weight
        if running[key] == 0 { running[key] = nil }
        total -= weight
    }
}

/// Failed authentications per client address in a sliding minute.
actor AuthFailureLimiter {
    let perMinute: Int
    let window: Duration
    private var failures: [String: [ContinuousClock.Instant]] = [:]

    init(perMinute: Int, window: Duration = .seconds(60)) {
        self.perMinute = perMinute
        self.window = window
    }

    /// Refuses a client that failed too often in the last window, saying when it may try again.
    func check(_ client: String) throws {
        let now = ContinuousClock.now
        var recent = (failures[client] ?? []).filter { now - $0 < window }
        failures[client] = recent.isEmpty ? nil : recent
        guard recent.count >= perMinute, let oldest = recent.first else { return }
        let wait = Int((window - (now - oldest)).components.seconds) + 1
        recent.removeAll()
        throw UsageBoxError.rateLimited("too many failed authentications from this address; try again in \(wait) s", retryAfter: wait)
    }

    func record(_ client: String) {
        failures[client, default: []].append(.now)
        // Bound the table itself: forget the oldest clients when it grows past what an attack could justify.
        if failures.count > 100_000, let victim = failures.keys.first { failures[victim] = nil }
    }
}

/// Compares secrets in time independent of where they differ.
public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(truncatingIfNeeded: x.count ^ y.count)
    for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
    return diff == 0
}
