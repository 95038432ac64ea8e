public import Metering
import ReconCore

/// What a backend that serves `usagebox serve` must also keep: keys, meters, periods and the
/// reconciliation log. The same list for every backend, run beside `MeterStoreConformance.checks`.
public enum ServerStoreConformance {
    typealias F = Fixture

    static func keys(_ store: any MeterStore) throws -> any KeyStore {
        guard let keys = store as? any KeyStore else {
            throw ConformanceFailure(message: "a server's store keeps keys (KeyStore)", file: #fileID, line: #line)
        }
        return keys
    }

    static func log(_ store: any MeterStore) throws -> any ReconciliationLog {
        guard let log = store as? any ReconciliationLog else {
            throw ConformanceFailure(message: "a server's store keeps reconciliations (ReconciliationLog)", file: #fileID, line: #line)
        }
        return log
    }

    public static let checks: [ConformanceCheck] = [
        ConformanceCheck("keys: created with a secret shown once, authenticated, listed without it, revoked at once") { store in
            let keys = try keys(store)
            let (reader, secret) = try await keys.createKey(account: "acct_1", role: .reader)
            try expect(secret.count >= 32 && secret.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }, "secret of [A-Za-z0-9_-]")
            let (admin, adminSecret) = try await keys.createKey(account: nil, role: .admin)
            try expectEqual(try await keys.authenticate(secret: secret)?.keyID, reader.keyID, "the secret finds its key")
            try expectEqual(try await keys.authenticate(secret: adminSecret)?.role, .admin, "an admin key")
            try expectEqual(try await keys.authenticate(secret: secret + "x"), nil, "another secret finds nothing")
            let listed = try await keys.listKeys()
            try expectEqual(Set(listed.map(\.keyID)), [reader.keyID, admin.keyID], "listed")
            try expectEqual(listed.first { $0.keyID == reader.keyID }?.accountID, "acct_1", "its account")
            let revoked = try await keys.revokeKey(reader.keyID)
            try expect(revoked.revokedAt != nil, "revoked_at set")
            try expectEqual(try await keys.authenticate(secret: secret), nil, "a revoked key stops at once")
            try expectEqual(try await keys.revokeKey(reader.keyID).revokedAt, revoked.revokedAt, "revoking twice keeps the first time")
            try await expectThrows(.notFound) { _ = try await keys.revokeKey("key_unknown") }
            try expectEqual(try await keys.authenticate(secret: adminSecret)?.keyID, admin.keyID, "other keys unaffected")
        },
        ConformanceCheck("periods: listed in order per account; another account's months are its own") { store in
            _ = try await store.closePeriod(account: "acct_1", period: "2026-06")
            _ = try await store.closePeriod(account: "acct_1", period: "2026-04")
            _ = try await store.closePeriod(account: "acct_2", period: "2026-05")
            try expectEqual(try await store.periods(account: "acct_1").map(\.period), ["2026-04", "2026-06"], "acct_1")
            try expectEqual(try await store.periods(account: "acct_2").map(\.period), ["2026-05"], "acct_2")
            try expectEqual(try await store.periods(account: "acct_3").map(\.period), [], "none")
            let r = try await store.ingest([F.event("may", account: "acct_1", quantity: 3), F.event("may", account: "acct_2", quantity: 3)])
            try expectEqual([r.accepted, r.rejected], [1, 1], "May is closed for acct_2 only")
        },
        ConformanceCheck("meters: set before any event, listed for the accounts that use them") { store in
            let set = try await store.setMeter("gpu_seconds", unit: "seconds", rollupDimensions: ["region"])
            try expectEqual(set.unit, "seconds", "unit")
            try expectEqual(set.rollupDimensions, ["region"], "rollup dimensions")
            let r = try await store.ingest([
                F.event("g1", meter: "gpu_seconds", quantity: 5, unit: "seconds", dims: ["region": "eu", "host": "h1"]),
                F.event("g2", meter: "gpu_seconds", quantity: 5, unit: "hours"),
                F.event("t1", account: "acct_2", quantity: 1),
            ])
            try expectEqual([r.accepted, r.rejected], [2, 1], "a meter set to seconds refuses hours")
            let all = try await store.meters(scope: .all)
            try expectEqual(all.map(\.meterID), ["gpu_seconds", "tokens"], "every meter")
            let one = try await store.meters(scope: .accounts(["acct_2"]))
            try expectEqual(one.map(\.meterID), ["tokens"], "meters of acct_2")
            let changed = try await store.setMeter("gpu_seconds", unit: nil, rollupDimensions: ["region", "host"])
            try expectEqual(changed.unit, "seconds", "nil leaves the unit")
            try expectEqual(changed.rollupDimensions, ["host", "region"], "dimensions replaced")
            // A meter's first event that carries a unit records the unit; the kept dimensions set
            // before it stay (on ClickHouse, ingest's row read as "every dimension").
            _ = try await store.setMeter("calls", unit: nil, rollupDimensions: ["region"])
            _ = try await store.ingest([F.event("c1", meter: "calls", quantity: 1, unit: "requests")])
            let calls = try await store.meters(scope: .all).first { $0.meterID == "calls" }
            try expectEqual(calls?.unit, "requests", "unit recorded")
            try expectEqual(calls?.rollupDimensions, ["region"], "kept dimensions kept")
        },
        ConformanceCheck("the reconciliation log keeps each report and its summary, replaces both when applied, and knows no other id") { store in
            let log = try log(store)
            // The store keeps both texts as given; only a summary's `account_id` is ever read by it.
            func summary(_ id: String, _ account: String?, applied: Bool) -> String {
                #"{"account_id":\#(account.map { "\"\($0)\"" } ?? "null"),"id":"\#(id)","applied":\#(applied)}"#
            }
            func recent(_ runs: [(id: String, createdAt: Timestamp, summaryJSON: String?)]) -> [String] { runs.map { "\($0.id) \($0.summaryJSON ?? "none")" } }
            try await log.saveReconciliation(
                id: "rec_1", vendor: "anthropic", createdAt: F.ts("2026-06-02T09:00:00Z"), runBy: "key_a",
                reportJSON: #"{"id":"rec_1","applied":false}"#, summaryJSON: summary("rec_1", nil, applied: false))
            try await log.saveReconciliation(
                id: "rec_2", vendor: "openai", createdAt: F.ts("2026-06-02T10:00:00Z"), runBy: "cli",
                reportJSON: #"{"id":"rec_2","applied":false}"#, summaryJSON: summary("rec_2", nil, applied: false))
            try expectEqual(try await log.reconciliation(id: "rec_1"), #"{"id":"rec_1","applied":false}"#, "stored text")
            try await log.markReconciliationApplied(
                id: "rec_1", reportJSON: #"{"id":"rec_1","applied":true}"#, summaryJSON: summary("rec_1", nil, applied: true),
                appliedAt: F.ts("2026-06-02T11:00:00Z"))
            try expectEqual(try await log.reconciliation(id: "rec_1"), #"{"id":"rec_1","applied":true}"#, "replaced when applied")
            try expectEqual(try await log.reconciliation(id: "rec_2"), #"{"id":"rec_2","applied":false}"#, "others unchanged")
            try expectEqual(try await log.reconciliation(id: "rec_none"), nil, "unknown")
            try expectEqual(try await log.reconciliationHead(id: "rec_2", characters: 13), #"{"id":"rec_2""#, "the head alone")
            try expectEqual(try await log.reconciliationHead(id: "rec_none", characters: 12), nil, "no head of an unknown run")
            try expectEqual(
                recent(try await log.recentReconciliations(limit: 10, before: nil)),
                ["rec_2 \(summary("rec_2", nil, applied: false))", "rec_1 \(summary("rec_1", nil, applied: true))"],
                "newest first, summaries replaced when applied")
            try expectEqual(recent(try await log.recentReconciliations(limit: 1, before: nil)), ["rec_2 \(summary("rec_2", nil, applied: false))"], "limited")
            try await log.saveReconciliation(
                id: "rec_3", vendor: "openai", createdAt: F.ts("2026-06-02T12:00:00Z"), runBy: "cli",
                reportJSON: #"{"id":"rec_3","vendor":"openai","account_id":"acct_7","findings":[{"account_id":"acct_1"}]}"#,
                summaryJSON: summary("rec_3", "acct_7", applied: false))
            // A run recorded before summaries were kept (an empty one is none): found by its report's account.
            try await log.saveReconciliation(
                id: "rec_4", vendor: "openai", createdAt: F.ts("2026-06-02T13:00:00Z"), runBy: "cli",
                reportJSON: #"{"id":"rec_4","vendor":"openai","account_id":"acct_8","findings":[{"account_id":"acct_7"}]}"#, summaryJSON: "")
            try expectEqual(
                recent(try await log.recentReconciliations(limit: 10, ofAccounts: ["acct_7"], before: nil)),
                ["rec_3 \(summary("rec_3", "acct_7", applied: false))"],
                "an account's runs")
            try expectEqual(
                recent(try await log.recentReconciliations(limit: 10, ofAccounts: ["acct_8", "acct_7"], before: nil)),
                ["rec_4 none", "rec_3 \(summary("rec_3", "acct_7", applied: false))"], "with and without a summary")
            try expectEqual(recent(try await log.recentReconciliations(limit: 10, ofAccounts: ["acct_1"], before: nil)), [], "by the run's own account only")
            try expectEqual(
                recent(try await log.recentReconciliations(limit: 2, before: nil)), ["rec_4 none", "rec_3 \(summary("rec_3", "acct_7", applied: false))"],
                "no summary is none")
            // The next page: runs recorded before a time (the last listed run's), alike with and without accounts.
            try expectEqual(
                recent(try await log.recentReconciliations(limit: 2, before: (createdAt: F.ts("2026-06-02T12:00:00Z"), id: ""))),
                ["rec_2 \(summary("rec_2", nil, applied: false))", "rec_1 \(summary("rec_1", nil, applied: true))"], "before a time")
            try expectEqual(
                recent(
                    try await log.recentReconciliations(limit: 10, ofAccounts: ["acct_8", "acct_7"], before: (createdAt: F.ts("2026-06-02T13:00:00Z"), id: ""))),
                ["rec_3 \(summary("rec_3", "acct_7", applied: false))"], "an account's, before a time")
            try expectEqual(
                recent(try await log.recentReconciliations(limit: 10, before: (createdAt: F.ts("2026-06-02T09:00:00Z"), id: ""))), [], "none before the first")
            // Runs sharing a time are paged by id too, none skipped: each page goes on after the
            // last run it read (its time and id).
            try await log.saveReconciliation(
                id: "rec_5a", vendor: "openai", createdAt: F.ts("2026-06-02T14:00:00.000001Z"), runBy: "cli", reportJSON: #"{"id":"rec_5a"}"#,
                summaryJSON: summary("rec_5a", nil, applied: false))
            try await log.saveReconciliation(
                id: "rec_5b", vendor: "openai", createdAt: F.ts("2026-06-02T14:00:00.000001Z"), runBy: "cli", reportJSON: #"{"id":"rec_5b"}"#,
                summaryJSON: summary("rec_5b", nil, applied: false))
            var paged: [String] = []
            var cursor: (createdAt: Timestamp, id: String)? = nil
            while true {
                let page = try await log.recentReconciliations(limit: 1, before: cursor)
                guard let last = page.last else { break }
                paged.append(last.id)
                cursor = (last.createdAt, last.id)
            }
            try expectEqual(paged, ["rec_5b", "rec_5a", "rec_4", "rec_3", "rec_2", "rec_1"], "one page at a time, ties by id")
            try expectEqual(cursor?.createdAt, F.ts("2026-06-02T09:00:00Z"), "each run's time as recorded")
            try expectEqual(
                try await log.recentReconciliations(limit: 5, before: (createdAt: F.ts("2026-06-02T14:00:00.000001Z"), id: "rec_5b")).first.map {
                    "\($0.id) \($0.createdAt.rfc3339)"
                }, "rec_5a 2026-06-02T14:00:00.000001Z", "the time to the microsecond")
        },
    ]
}
