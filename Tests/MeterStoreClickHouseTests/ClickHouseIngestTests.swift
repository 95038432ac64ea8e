import ExactJSON
import Foundation
import Metering
import SegmentChain
import Testing
import UsageBoxTesting

@testable import MeterStoreClickHouse

/// How the ClickHouse store writes events: the JSONEachRow line it builds as bytes (no server
/// needed), and, against a server, group commit and the cached meters and closed periods.
@Suite struct ClickHouseRowTests {
    /// Every column of an event row, read back by a JSON parser, is the event's own value, for
    /// text that needs escaping in both the row and the `dimensions` string nested in it.
    @Test func anEventRowHoldsEveryFieldExactly() throws {
        let odd = "q\"b\\s\n\t\u{1}é"
        let e = UsageEvent(
            eventID: "id" + odd, accountID: "acct_1", meterID: "m", modelID: odd, kind: .correction, correctionRef: odd, quantity: -42,
            unit: odd, timestamp: Timestamp(microseconds: 1_777_593_600_123_456), dimensions: ["b": odd, "a": "1"])
        let content = Array("x".utf8).withUnsafeBytes { ContentHash(canonical: $0) }
        for postClose in [false, true] {
            var out: [UInt8] = []
            ClickHouseMeterStore.appendRow(e, content: content, segment: 7, ordinal: 3, postClose: postClose, now: 99, to: &out)
            #expect(out.last == 0x0A && out.filter { $0 == 0x0A }.count == 1, "one line")
            let row = try JSONParser.parse(String(decoding: out.dropLast(), as: UTF8.self))
            #expect(row["account_id"]?.stringValue == "acct_1" && row["event_id"]?.stringValue == e.eventID)
            #expect(row["meter_id"]?.stringValue == "m" && row["model_id"]?.stringValue == odd && row["kind"]?.stringValue == "Correction")
            #expect(row["correction_ref"]?.stringValue == odd && row["unit"]?.stringValue == odd)
            #expect(row["quantity"]?.numberText == "-42" && row["ts"]?.numberText == "1777593600123456")
            #expect(row["dim_keys"]?.arrayValue?.compactMap(\.stringValue) == ["a", "b"])
            #expect(row["dim_values"]?.arrayValue?.compactMap(\.stringValue) == ["1", odd])
            #expect(row["dimensions"]?.stringValue == UsageEvent.canonicalDimensions(e.dimensions))
            #expect(row["content"]?.stringValue == content.hex)
            #expect(row["segment_id"]?.numberText == "7" && row["ordinal"]?.numberText == "3" && row["ingested_at"]?.numberText == "99")
            #expect(row["post_close"]?.numberText == (postClose ? "1" : "0"))
        }
        let bare = UsageEvent(eventID: "e", accountID: "a", meterID: "m", quantity: 1, timestamp: Timestamp(microseconds: 0))
        var out: [UInt8] = []
        ClickHouseMeterStore.appendRow(bare, content: content, segment: 1, ordinal: 0, postClose: false, now: 0, to: &out)
        let row = try JSONParser.parse(String(decoding: out.dropLast(), as: UTF8.self))
        #expect(row["model_id"] == .null && row["unit"] == .null && row["correction_ref"] == .null)
        #expect(row["dimensions"]?.stringValue == "{}" && row["dim_keys"]?.arrayValue?.isEmpty == true)
    }
}

@Suite(.enabled(if: ClickHouseUnderTest.url != nil, "set USAGEBOX_CLICKHOUSE_URL (scripts/clickhouse test)"), .serialized)
struct ClickHouseIngestTests {
    typealias F = Fixture

    /// Batches that wait behind a busy writer go into ClickHouse as one insert, and each is still
    /// answered for its own events, in arrival order: an id a batch of the group accepted is a
    /// duplicate or a conflict for a later batch of the same group. With small segments the group
    /// seals segments part-way (earlier batches' events are flushed first) and verifies clean.
    @Test(arguments: [100_000, 30] as [Int64])
    func batchesWaitingBehindTheWriterShareOneInsert(segmentMaxEvents: Int64) async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh(segmentMaxEvents: segmentMaxEvents)
        defer { Task { await drop() } }
        let batches: [[IngestItem]] = (0..<5).map { b in
            var events = (0..<20).map { F.event("b\(b)-\($0)", quantity: 1) }
            if b == 1 || b == 3 { events.append(F.event("same", quantity: 1)) }
            if b == 2 || b == 4 { events.append(F.event("clash", quantity: Int64(b))) }
            return events
        }
        // b0 is written alone while b1–b4 queue behind it: they are the group.
        let answers = try await GroupCommitProbe.behindABusyWriter(store, batches) {
            try await store.writer.exclusive { try await Task.sleep(for: .milliseconds(400)) }
        }
        #expect(store.ingestQueue.sharedBatches >= 4, "the batches that waited went in together")
        #expect([1, 2, 3, 4].map { answers[$0].accepted } == [21, 21, 20, 20])
        #expect(answers[3].duplicates == 1 && answers[4].conflicts == 1 && answers[4].errors.map(\IngestResponse.Problem.index) == [20])
        let total = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may))
        #expect(total.groups.first?.aggregate.sum == 103, "100 events of 1, the shared one, the first content of the clashing id (2)")
        try await store.sealOpenSegments()
        let report = try await store.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(report.ok && report.corruptSegments.isEmpty)
    }

    /// Runs `body` and expects it refused as 503 `unavailable` with a message saying `words`;
    /// `otherwise` names what went wrong if it was not.
    static func expectUnavailable(
        _ otherwise: Comment, saying words: String..., sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
    ) async throws {
        do {
            try await body()
            Issue.record(otherwise, sourceLocation: sourceLocation)
        } catch let e as UsageBoxError {
            #expect(e.code == .unavailable && words.allSatisfy(e.message.contains), "\(e.message)", sourceLocation: sourceLocation)
        }
    }

    /// Polls until `done` holds or `tries` have passed (a `for … where` loop would go on
    /// evaluating its condition, a query each time, after it held).
    static func poll(_ tries: Int, every pause: Duration = .milliseconds(100), until done: () async throws -> Bool) async throws {
        for _ in 0..<tries {
            if try await done() { return }
            try await Task.sleep(for: pause)
        }
    }

    /// As a client does: again after a 503 (a replica check's answer stands for a second).
    static func retryingUnavailable<T>(_ body: () async throws -> T) async throws -> T {
        for _ in 0..<30 {
            do { return try await body() } catch let e as UsageBoxError where e.code == .unavailable {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        return try await body()
    }

    /// Detaches or attaches the rollup views on every host: detached, an insert stores events
    /// without their rollups, as a server killed between the parts of one INSERT leaves them.
    static func rollupViews(_ verb: String, _ store: ClickHouseMeterStore) async throws {
        for host in store.shards {
            for view in ClickHouseSchema.rollups.map({ "\($0.table)_mv" }) {
                try await host.command("\(verb) TABLE \(store.location.database).\(view)")
            }
        }
    }

    /// A segment's events are read back a page at a time (in one answer, 5,000 events of long
    /// dimensions passed the answer bound: the segment could never seal nor verify). Pages of
    /// one row hash as one answer does, a row stored twice included (counted twice, as verify
    /// must), and pages sized by bytes seal and verify an account of long dimensions.
    @Test func aSegmentIsHashedAPageAtATimeAsInOneAnswer() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest((0..<12).map { F.event("p\($0)", quantity: Int64($0 + 1), dims: ["token_type": $0 % 2 == 0 ? "input" : "output"]) })
        // Both reads of one state: an insert through a cluster's Distributed table reaches its
        // shard (and the replica read) a moment later.
        func same(_ label: String, count: UInt64) async throws {
            for _ in 0..<100 {
                let whole = try await store.digest("acct_1", segment: 1, previous: nil)
                let paged = try await store.digest("acct_1", segment: 1, previous: nil, pageBytes: 1)
                guard whole.count == count, paged.count == count else {
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                let a = whole.hash, b = paged.hash
                #expect(a.finalize() == b.finalize() && whole.multiset == paged.multiset, "\(label)")
                return
            }
            Issue.record("\(label): never read \(count) rows in both ways")
        }
        try await same("as stored", count: 12)
        try await store.shards[0].command(
            "INSERT INTO \(store.location.database).events SELECT * FROM \(store.location.database).events WHERE event_id = 'p5'")
        try await same("a row stored twice", count: 13)

        let long = String(repeating: "\u{01}", count: 240)
        _ = try await store.ingest(
            (0..<40).map { i in
                F.event(
                    "long\(i)", account: "acct_long", quantity: 1,
                    dims: Dictionary(uniqueKeysWithValues: (0..<32).map { (String(format: "d%02d", $0), long + "\($0)_\(i)") }))
            })
        let pages = try await store.digest("acct_long", segment: 1, previous: nil, pageBytes: 600_000)
        #expect(pages.count == 40 && pages.unreadable == 0)
        try await store.sealOpenSegments()
        let report = try await Self.retryingUnavailable { try await store.verify(VerifyRequest(account: "acct_long", range: F.may, mode: .deep)) }
        #expect(report.ok && report.rawSum == 40 && report.segmentsChecked == 1, "\(report.corruptSegments)")
    }

    /// An account's ids are read a page at a time when its owner first writes it (in one
    /// answer, ten million ids passed the answer bound and the account could not be written once
    /// its owner restarted): with pages of one id, a restarted owner still knows every id.
    @Test func aRestartedOwnerReadsEveryIdAPageAtATime() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let events = (0..<7).map { F.event("id\($0)", quantity: Int64($0 + 1)) }
        _ = try await store.ingest(events)
        try await store.sealOpenSegments()
        let restarted = try ClickHouseMeterStore(location: store.location, readPageBytes: 1)
        let again = try await restarted.ingest(events + [F.event("id7", quantity: 8)])
        #expect(again.accepted == 1 && again.duplicates == 7, "\(again)")
        let report = try await restarted.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(report.ok && report.rawSum == 36, "\(report.corruptSegments) \(report.mismatches)")
    }

    /// The owner kept every id it ever wrote, of every account, for as long as it ran. Past
    /// `heldEventIDs`, the accounts outside the write just done drop theirs and read them again at
    /// their next write: a retry is still `duplicate`, another content still `conflict`.
    @Test func idsPastTheBoundAreDroppedAndReadAgainAtTheNextWrite() async throws {
        let (fresh, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let store = try ClickHouseMeterStore(location: fresh.location, heldEventIDs: 3)
        _ = try await store.ingest((0..<3).map { F.event("a\($0)", account: "acct_a", quantity: 1) })
        #expect(await store.writer.heldEventIDs() == 3)
        _ = try await store.ingest((0..<2).map { F.event("b\($0)", account: "acct_b", quantity: 1) })
        #expect(await store.writer.heldEventIDs() == 2, "acct_a's ids dropped, acct_b's kept")
        let dropped = await store.writer.state("acct_a")
        #expect(dropped?.ids == nil && dropped?.open != nil, "the rest of its state kept")
        let again = try await store.ingest([
            F.event("a0", account: "acct_a", quantity: 1), F.event("a1", account: "acct_a", quantity: 2), F.event("a3", account: "acct_a", quantity: 1),
        ])
        #expect(again.duplicates == 1 && again.conflicts == 1 && again.accepted == 1, "\(again)")
        #expect(await store.writer.heldEventIDs() == 4, "acct_a's four read again; acct_b's dropped")
        for account in ["acct_a", "acct_b"] {
            let report = try await store.verify(VerifyRequest(account: account, range: F.may, mode: .deep))
            #expect(report.ok && report.rawSum == (account == "acct_a" ? 4 : 2), "\(account): \(report.mismatches)")
        }
    }

    /// Verify's comparison returns a cell's dimensions only where its sides differ (every cell's
    /// was read into the process): a mismatch still names its own; clean cells beside it are
    /// not listed.
    @Test func verifyNamesAMismatchedCellByItsDimensions() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("kept", quantity: 5, dims: ["token_type": "output", "feature": "chat"])])
        try await Self.rollupViews("DETACH", store)
        _ = try await store.ingest([F.event("lost", quantity: 7, dims: ["token_type": "input", "feature": "search"])])
        try await Self.rollupViews("ATTACH", store)
        let report = try await store.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(!report.ok && report.rawSum == 12 && report.rollupSum == 5)
        #expect(!report.mismatches.isEmpty && report.mismatches.allSatisfy { $0.dimensions.contains("search") && $0.rawSum == 7 }, "\(report.mismatches)")
        #expect(report.mismatches.map(\.rollup) == [.hour, .day], "each rollup's cell, labelled")
    }

    /// Reconciliation's gate verifies every account of an org in a few statements (two per
    /// verify of one account took seconds for 100 accounts): accounts in different chunks, one
    /// of them drifted, each answered as its own verify answers it, mismatches in the same order.
    @Test func verifyOfManyAccountsFindsTheOneThatDrifted() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let accounts = (0..<(ClickHouseMeterStore.verifyChunk + 5)).map { "acct_\($0)" }
        _ = try await store.ingest(accounts.enumerated().map { i, a in F.event("e", account: a, quantity: Int64(i + 1)) })
        let drifted = accounts[ClickHouseMeterStore.verifyChunk + 2]
        try await Self.rollupViews("DETACH", store)
        _ = try await store.ingest(
            (0..<3).map { F.event("lost\($0)", account: drifted, quantity: 7, at: "2026-05-0\($0 + 2)T10:00:00Z", dims: ["token_type": "in\($0)"]) })
        try await Self.rollupViews("ATTACH", store)
        for mode in [VerifyMode.incremental, .deep] {
            let many = try await store.verify(accounts: accounts.reversed(), range: F.may, mode: mode)
            var one: [VerifyReport] = []
            for a in accounts.reversed() { one.append(try await store.verify(VerifyRequest(account: a, range: F.may, mode: mode))) }
            #expect(many == one)
            #expect(many.filter { !$0.ok }.count == 1)
            let bad = many[accounts.count - 1 - (ClickHouseMeterStore.verifyChunk + 2)]
            #expect(!bad.ok && bad.drift == 42 && bad.rawSum == Int64(ClickHouseMeterStore.verifyChunk + 3) + 21)
            #expect(bad.mismatches.map(\.rollup) == [.hour, .hour, .hour, .day, .day, .day], "\(bad.mismatches)")
            #expect(bad.mismatches.map(\.dimensions) == ["in0", "in1", "in2", "in0", "in1", "in2"].map { "{\"token_type\":\"\($0)\"}" })
        }
    }

    /// Verify adds each account's cells up inside ClickHouse: tampered rollup cells whose low
    /// halves hold nearly 2^63 each add up past 64 bits, which a plain sum wrapped to −2. The
    /// total saturates, as the cells added one by one did.
    @Test func verifyTotalsOfHugeLowHalvesDoNotWrap() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("a", quantity: 1, at: "2026-05-02T10:00:00Z"), F.event("b", quantity: 1, at: "2026-05-03T10:00:00Z")])
        try await store.shards[0].command(
            """
            INSERT INTO \(store.t("rollup_hour")) SELECT account_id, meter_id, ifNull(model_id, ''), kind, ifNull(unit, ''), dimensions,
                any(dim_keys), any(dim_values), intDiv(ts, 3600000000), sumState(toInt64(0)), sumState(toInt64(9223372036854775806)),
                countState(), minState(toInt64(1)), maxState(toInt64(1))
            FROM \(store.t("events")) GROUP BY account_id, meter_id, model_id, kind, unit, dimensions, ts
            """)
        // In a cluster the tampering goes through a Distributed table and lands a moment later.
        var report = try await store.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        try await Self.poll(50, every: .milliseconds(200)) {
            report = try await store.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
            return report.rollupSum != 2
        }
        #expect(!report.ok && report.rawSum == 2 && report.rollupSum == Int64.max && report.drift == Int64.max, "\(report)")
    }

    /// A per-day verify of one account returns every hourly and daily cell; both levels in one
    /// answer can pass the answer bound where each alone fits (each level was read alone before
    /// they were joined). Past the bound, one account's levels are read in two answers, and the
    /// report is the one a single answer gives.
    @Test func aPerDayVerifyPastTheAnswerBoundReadsEachLevelAlone() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest((1...30).map { F.event("d\($0)", quantity: Int64($0), at: String(format: "2026-05-%02dT10:00:00Z", $0)) })
        try await Self.rollupViews("DETACH", store)
        _ = try await store.ingest(
            (0..<3).map { F.event("lost\($0)", quantity: 7, at: "2026-05-0\($0 + 2)T11:00:00Z", dims: ["token_type": "in\($0)"]) })
        try await Self.rollupViews("ATTACH", store)
        let h = Timestamp.microsPerHour
        let (fromHour, toHour) = (F.may.from.microseconds / h, F.may.to.microseconds / h)
        // The smallest bound the joined answer fits in (its statistics' digits vary a little).
        func fits(_ bytes: Int) async throws -> Bool {
            let bounded = try ClickHouseMeterStore(location: store.location, verifyAnswerBytes: bytes)
            var cells: [String: ClickHouseMeterStore.RollupCheck] = [:]
            do {
                try await bounded.rollupCheck(["acct_1"], fromHour: fromHour, toHour: toHour, byDay: true, into: &cells)
                return true
            } catch let e as UsageBoxError where e.message.hasPrefix(ClickHouseClient.answerLimitPrefix) {
                return false
            }
        }
        var (low, high) = (1, 1 << 20)
        #expect(try await fits(high))
        while high - low > 1 {
            let mid = (low + high) / 2
            if try await fits(mid) { high = mid } else { low = mid }
        }
        let bound = high - 256
        #expect(try await !fits(bound))
        let bounded = try ClickHouseMeterStore(location: store.location, verifyAnswerBytes: bound)
        for mode in [VerifyMode.deep, .incremental] {
            let req = VerifyRequest(account: "acct_1", range: F.may, mode: mode, byDay: true)
            let whole = try await store.verify(req)
            let split = try await bounded.verify(req)
            #expect(split == whole)
            #expect(!split.ok && split.drift == 42 && split.rawSum == 465 + 21 && split.rollupSum == 465, "\(split)")
            #expect(split.mismatches.map(\.rollup) == [.hour, .hour, .hour, .day, .day, .day], "\(split.mismatches)")
            #expect(split.days?.count == 31 && split.days?[2].drift == 14 && split.days?[2].rawSum == 3 + 7, "\(split.days ?? [])")
        }
        // Without the per-day report only the differing cells come back: well inside the bound.
        #expect(try await bounded.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep)).drift == 42)
    }

    /// Every CLI command that posts gives ClickHouse's writer lease up when it ends: a second
    /// `reconcile revert` posts duplicates only, and it kept the lease, so an `ingest` right
    /// after it was answered that another process writes the accounts.
    @Test func aCommandThatPostedOnlyDuplicatesGivesTheLeaseUp() async throws {
        let url = try ClickHouseUnderTest.newDatabaseURL()
        let store = try ClickHouseMeterStore(location: try ClickHouseLocation(url: url))
        try await store.migrate()
        defer { Task { try? await store.dropDatabase() } }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let invoice = root.appendingPathComponent("Plugins/Anthropic/Examples/cost_report_2026_05.json").path
        func cli(_ args: [String]) throws -> ProcessOutput {
            try ProcessRunner.run(ProcessRunner.product("usagebox"), args + ["--store", url], unset: ["USAGEBOX_DB", "USAGEBOX_STORE"])
        }
        #expect(try cli(["demo", "--data-only"]).status == 0)
        let run = try cli([
            "reconcile", "--vendor", "anthropic", "--invoice", invoice, "--from", "2026-05-01", "--to", "2026-06-01", "--account", "acct_42", "--json",
            "--apply",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        guard case let .object(members) = try JSONParser.parse(run.stdout), case let .string(id)? = members.first(where: { $0.0 == "id" })?.1 else {
            Issue.record("no run id in \(run.stdout.prefix(300))")
            return
        }
        for _ in 0..<2 {
            let reverted = try cli(["reconcile", "revert", id, "--json"])
            #expect(reverted.status == 0, "\(reverted.stderr)")
        }
        let events = FileManager.default.temporaryDirectory.appendingPathComponent("lease-\(UUID().uuidString).ndjson")
        try Data(
            #"{"event_id":"after_revert","account_id":"acct_42","meter_id":"claude_tokens","quantity":1,"unit":"tokens","timestamp":"2026-06-01T00:00:00Z"}"#
                .utf8
        ).write(to: events)
        defer { try? FileManager.default.removeItem(at: events) }
        let ingest = try cli(["ingest", events.path, "--json", "--progress", "none"])
        #expect(ingest.status == 0 && !ingest.stderr.contains("another process"), "\(ingest.stderr)")
    }

    /// A write renews the writer lease as it reads: after a restart, reading an account's ids a
    /// page at a time could take past the lease's margin (6 s), and every retry was then refused.
    /// Here the margin is a quarter second and the ids come one per page.
    @Test func aWriteThatReadsForLongKeepsItsLease() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest((0..<600).map { F.event("id\($0)", quantity: 1) })
        try await store.sealOpenSegments()  // and gives the lease up, as a stopping server does
        let restarted = try ClickHouseMeterStore(
            location: store.location, readPageBytes: 1, leaseRenewal: (every: .milliseconds(50), within: .milliseconds(250)))
        var attempts = 0
        let answer = try await Self.retryingUnavailable {
            attempts += 1
            return try await restarted.ingest([F.event("new", quantity: 1), F.event("id7", quantity: 1)])
        }
        // On a slow replicated cluster one attempt can still outlast the quarter second after
        // storing "new"; its retry then answers it duplicate, counted once all the same.
        #expect(answer.conflicts == 0 && answer.rejected == 0 && answer.accepted + answer.duplicates == 2, "\(answer)")
        #expect(answer.accepted == 1 || attempts > 1, "\(answer) in \(attempts) attempts")
        let report = try await restarted.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(report.ok && report.rawSum == 601, "\(report)")
    }

    /// Segment rows are versioned by their writer's clock. A writer that stopped with its clock
    /// ten minutes ahead left an open segment's row that outranked every row of the writer after
    /// it: verify read the stale count beside the new events, and the seal stayed corrupt for
    /// good. The next writer's versions go above the rows it finds.
    @Test func aWriterAfterOneWhoseClockRanAheadOutranksItsRows() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let ahead = try ClickHouseMeterStore(location: store.location, clock: { Timestamp(microseconds: Timestamp.now().microseconds + 600_000_000) })
        _ = try await ahead.ingest((0..<3).map { F.event("a\($0)", quantity: 1) })
        try await ahead.releaseWriterLease()  // stops without sealing: its segment stays open
        let next = try ClickHouseMeterStore(location: store.location)
        _ = try await Self.retryingUnavailable { try await next.ingest((0..<2).map { F.event("b\($0)", quantity: 2) }) }
        var report = try await next.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(report.ok && report.rawSum == 7, "\(report)")
        try await next.sealOpenSegments()
        report = try await next.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(report.ok && report.rawSum == 7 && report.segmentsCorrupt == 0, "\(report)")
    }

    /// The store's reads send `join_use_nulls=0` whatever the user's profile sets: as the
    /// `join_nulls` user of scripts/clickhouse (whose profile sets 1), a segment never checked
    /// was counted neither clean, corrupt nor pending, and the scrub never picked it first.
    @Test func aProfileThatFillsJoinsWithNullChangesNoCount() async throws {
        let url = try ClickHouseUnderTest.newDatabaseURL()
        let store = try ClickHouseMeterStore(location: try ClickHouseLocation(url: url + (url.contains("?") ? "&" : "?") + "user=join_nulls"))
        try await store.migrate()
        defer { Task { try? await store.dropDatabase() } }
        _ = try await store.ingest([F.event("a", quantity: 1)])
        try await store.sealOpenSegments()
        _ = try await store.ingest([F.event("b", quantity: 2)])
        try await store.sealOpenSegments()
        var progress = try await store.scrub(maxSegments: 0)
        #expect(progress.sealed == 2 && progress.pending == 2 && progress.verified == 0 && progress.corrupt == 0, "\(progress)")
        progress = try await store.scrub(maxSegments: 1)
        #expect(progress.sealed == 2 && progress.pending == 1 && progress.verified == 1, "\(progress)")
        progress = try await store.scrub(maxSegments: 1)
        #expect(progress.pending == 0 && progress.verified == 2 && progress.corrupt == 0, "\(progress)")
    }

    /// Keys, meters and the reconciliation log are versioned by their writer's clock too: beside
    /// rows of a process whose clock ran ten minutes ahead, a meter's change and a run's
    /// application were read as never made (a revocation held: `argMax` skips the first row's
    /// NULL `revoked_at`; checked all the same). Each replacement goes above the row it replaces.
    @Test func rowsWrittenOnAClockAheadAreReplacedAllTheSame() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let ahead = try ClickHouseMeterStore(location: store.location, clock: { Timestamp(microseconds: Timestamp.now().microseconds + 600_000_000) })
        let (key, secret) = try await ahead.createKey(account: "acct_1", role: .reader)
        _ = try await ahead.setMeter("tokens", unit: "tokens", rollupDimensions: ["model"])
        try await ahead.saveReconciliation(
            id: "rec_1", vendor: "anthropic", createdAt: Timestamp.now(), runBy: "test", reportJSON: #"{"applied":false}"#, summaryJSON: "")
        let behind = try ClickHouseMeterStore(location: store.location)
        #expect(try await behind.revokeKey(key.keyID).revokedAt != nil)
        #expect(try await behind.authenticate(secret: secret) == nil, "a revoked key still authenticates")
        #expect(try await behind.listKeys().first { $0.keyID == key.keyID }?.revokedAt != nil)
        _ = try await behind.setMeter("tokens", unit: nil, rollupDimensions: ["model", "region"])
        let meter = try await behind.meters(scope: .all).first { $0.meterID == "tokens" }
        #expect(meter?.rollupDimensions == ["model", "region"] && meter?.unit == "tokens", "\(String(describing: meter))")
        try await behind.markReconciliationApplied(id: "rec_1", reportJSON: #"{"applied":true}"#, summaryJSON: "", appliedAt: Timestamp.now())
        #expect(try await behind.reconciliation(id: "rec_1") == #"{"applied":true}"#)
    }

    /// One writer per account, leased: a second process writing the same accounts (two `serve`
    /// without `--peers`, a CLI `ingest --store` beside a server) is answered 503 naming the
    /// first, and stored nothing (two such writers stored an id twice, each deciding from what it
    /// had read). Once the first stops, the second takes the lease, reads what was stored, and
    /// answers a resent id `duplicate`. Processes with their own places (`--peers`) write at once.
    @Test func aSecondWriterOfTheSameAccountsWaitsForTheLease() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("x1", quantity: 5)])
        let second = try ClickHouseMeterStore(location: store.location)
        try await Self.expectUnavailable("a second writer of the same accounts wrote", saying: "another process writes accounts") {
            _ = try await second.ingest([F.event("x2", quantity: 6)])
        }
        // It seals nothing either (its shutdown): the first writer's open segment stays the first's.
        try await second.sealOpenSegments()
        _ = try await store.ingest([F.event("x2", quantity: 6)])
        try await store.sealOpenSegments()  // the first stops: sealed, and the lease released
        let retried = try await second.ingest([F.event("x2", quantity: 6), F.event("x3", quantity: 7)])
        #expect(retried.accepted == 1 && retried.duplicates == 1, "\(retried)")
        let report = try await second.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(report.ok && report.rawSum == 18, "\(report.mismatches) \(report.corruptSegments)")

        // Two places of one split write at once; a process alone beside them does not.
        try await second.releaseWriterLease()
        let a = try ClickHouseMeterStore(location: store.location, owns: { _ in true }, slot: WriterSlot(of: 2, node: 0))
        let b = try ClickHouseMeterStore(location: store.location, owns: { _ in true }, slot: WriterSlot(of: 2, node: 1))
        _ = try await a.ingest([F.event("p1", account: "acct_2", quantity: 1)])
        _ = try await b.ingest([F.event("p2", account: "acct_3", quantity: 1)])
        try await Self.expectUnavailable("a process alone wrote beside a split", saying: " of 2") {
            _ = try await ClickHouseMeterStore(location: store.location).ingest([F.event("p3", account: "acct_4", quantity: 1)])
        }
    }

    /// A write that took longer than its lease allows stops before it stores anything (the lease
    /// was checked only at the write's start, and another process could take it meanwhile).
    @Test func aWriteStopsWhenItsLeaseLapsedMidway() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("l1", quantity: 1)])
        await store.writer.setLeaseRenewed(.now - .seconds(7))  // as if the write had read for 7 s
        try await Self.expectUnavailable("stored after its lease lapsed", saying: "lease lapsed") {
            try await store.writer.exclusive { try await store.insertEvents(Array("{}".utf8), count: 1) }
        }
        let stored = try await store.shards[0].rows("SELECT count() FROM \(store.location.database).events").rows.first?.first?.chInt
        #expect(stored == 1)
        #expect(try await store.ingest([F.event("l2", quantity: 1)]).accepted == 1, "taken again at the next write")
    }

    /// A process that wrote and let its lease lapse (a last batch that took long) takes it again
    /// to seal at its end, so `ingest` leaves its segments sealed; while another process holds the
    /// lease, it seals nothing and leaves them to that one.
    @Test func aWriterWhoseLeaseLapsedTakesItAgainToSeal() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("s1", quantity: 1)])
        await store.writer.setLeaseRenewed(.now - .seconds(7))
        try await store.sealOpenSegments()
        #expect(try await store.openSegmentAccounts().isEmpty, "sealed after taking the lapsed lease again")
        #expect(await store.writer.leaseRenewedAt == nil, "and given up once sealed")

        _ = try await store.ingest([F.event("s2", quantity: 1)])
        await store.writer.setLeaseRenewed(.now - .seconds(7))
        try await store.releaseWriterLease()
        let other = try ClickHouseMeterStore(location: store.location)
        _ = try await other.ingest([F.event("s3", account: "acct_2", quantity: 1)])  // the other holds the lease now
        try await store.sealOpenSegments()
        #expect(try await store.openSegmentAccounts() == ["acct_1", "acct_2"], "left open for the holder")
        try await other.sealOpenSegments()
        #expect(try await store.openSegmentAccounts().isEmpty)
    }

    /// Settling a failed write's rollups in the background (`settleSoon`) needs the writer lease:
    /// another holder settles the same last writes when it takes the lease, and both adding a
    /// shortfall would count it twice. It waits while another holds the lease, then settles.
    @Test func settlingInTheBackgroundWaitsForTheWriterLease() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("w-1", quantity: 5)])
        try await store.releaseWriterLease()
        let holder = try ClickHouseMeterStore(location: store.location)
        _ = try await holder.ingest([F.event("w-2", account: "acct_2", quantity: 6)])
        await store.writer.setLastWritesPending(true)  // as after an insert whose answer was lost
        store.settleSoon(every: .milliseconds(50))
        try await Task.sleep(for: .milliseconds(500))
        #expect(await store.writer.anythingToSettle, "settled while another process held the lease")
        try await holder.releaseWriterLease()
        var settled = false
        for _ in 0..<50 where !settled {
            try await Task.sleep(for: .milliseconds(100))
            settled = await !store.writer.anythingToSettle
        }
        let holding = await store.writer.leaseRenewedAt != nil
        #expect(settled && holding, "settled once the lease was free, holding it")
    }

    /// A new meter's first events, in two units, sent at once to the owners of two accounts (two
    /// places of one `--peers` split): never both accepted (10 of 10 tries were, and the meter
    /// summed tokens and requests). One is, or neither (503, retry); then one unit holds.
    @Test func aNewMeterTakesOneUnitWhenTwoOwnersSeeItAtOnce() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let a = try ClickHouseMeterStore(location: store.location, owns: { _ in true }, slot: WriterSlot(of: 2, node: 0))
        let b = try ClickHouseMeterStore(location: store.location, owns: { _ in true }, slot: WriterSlot(of: 2, node: 1))
        for round in 0..<6 {
            let meter = "new\(round)"
            async let first = try? a.ingest([F.event("x\(round)", account: "acct_a", meter: meter, quantity: 1, unit: "tokens")])
            async let second = try? b.ingest([F.event("y\(round)", account: "acct_b", meter: meter, quantity: 1, unit: "requests")])
            let (ra, rb) = await (first, second)
            #expect((ra?.accepted ?? 0) + (rb?.accepted ?? 0) <= 1, "round \(round): \(String(describing: ra)) \(String(describing: rb))")
            let units = try await store.shards[0].rows(
                "SELECT count(DISTINCT unit) FROM \(store.location.database).events WHERE meter_id = '\(meter)'"
            ).rows.first?.first?.chInt
            #expect((units ?? 0) <= 1, "round \(round)")
        }
    }

    /// SQL's time limit holds even where ClickHouse checks it only between blocks (eight sleep(3)
    /// in one row answered after 24 s): the query is killed past the limit and a second, and the
    /// answer is `timeout`, not `invalid_argument`.
    @Test func aSlowSQLQueryStopsAtItsTimeLimit() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let start = ContinuousClock.now
        do {
            _ = try await store.sql("SELECT sleep(3), sleep(3), sleep(3), sleep(3)", scope: .all, timeLimitSeconds: 1, rowLimit: 10)
            Issue.record("answered")
        } catch let e as UsageBoxError {
            #expect(e.code == .timeout && e.field == "sql", "\(e)")
        }
        #expect(ContinuousClock.now - start < .seconds(8), "stopped near its limit")
    }

    /// A segment found corrupt once and re-hashed clean since is clean: the newest check's NULL
    /// reason was skipped by `argMax`, so incremental verify reported the old finding for good.
    @Test func aSegmentRehashedCleanIsCleanAgain() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("c1", quantity: 5), F.event("c2", quantity: 6)])
        try await store.sealOpenSegments()
        let segment = try #require(try await store.segmentRecords(["acct_1"])["acct_1"]?.first { $0.sealedAt != nil })
        try await store.recordCheck("acct_1", segment.id, "found corrupt by an earlier check")
        let request = VerifyRequest(account: "acct_1", range: F.may, mode: .incremental)
        #expect(try await store.verify(request).segmentsCorrupt == 1, "the earlier finding is reported")
        try await Task.sleep(for: .milliseconds(5))
        #expect(try await store.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep)).ok, "re-hashed clean")
        let after = try await store.verify(request)
        #expect(after.ok && after.segmentsCorrupt == 0, "\(after.corruptSegments)")
    }

    /// A correction stored after its month closed is marked in its segment's hash (rule 2):
    /// clearing its `post_close` in the table breaks the SHA-256. A segment sealed by a writer of
    /// schema 3 (its row has no rule: read as 1) is re-hashed without the mark and stays clean.
    @Test func aClearedPostCloseFlagIsCaughtAndOlderSegmentsKeepTheirRule() async throws {
        guard !(ClickHouseUnderTest.url ?? "").contains("cluster=") else { return }  // the mutation below is one table's
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("u", quantity: 5)])
        _ = try await store.closePeriod(account: "acct_1", period: "2026-05")
        #expect(try await store.ingest([F.event("fix", kind: .correction, ref: "r", quantity: -1)]).postClose == 1)
        try await store.sealOpenSegments()
        let deep = VerifyRequest(account: "acct_1", range: F.may, mode: .deep)
        #expect(try await store.verify(deep).ok)
        // Each ingest leaves its segment sealed: the correction's is the last.
        let sealed = try #require(try await store.segmentRecords(["acct_1"])["acct_1"]?.last { $0.sealedAt != nil })
        #expect(sealed.rule == 2)
        let previous = try await store.segmentRecords(["acct_1"])["acct_1"]?.last { $0.id < sealed.id }?.sha

        // As a schema-3 writer sealed it: the events alone hashed, no rule in its row.
        let old = try await store.digest("acct_1", segment: sealed.id, previous: previous, rule: 1).hash.finalize()
        #expect(old != sealed.sha, "the mark is in the rule-2 hash")
        try await store.insert(
            "segments",
            [
                .object([
                    ("account_id", .string("acct_1")), ("segment_id", .number(String(sealed.id))), ("opened_at", .int(0)),
                    ("sealed_at", .int(sealed.sealedAt ?? 1)), ("event_count", .number(String(sealed.count))), ("sum", .int(sealed.sum)),
                    ("first_ts", sealed.firstTs.map { .int($0) } ?? .null), ("last_ts", sealed.lastTs.map { .int($0) } ?? .null),
                    ("sha256", .string(old)), ("prev_sha256", previous.map(JSONValue.string) ?? .null), ("running_hash", .string(sealed.running)),
                    ("version", .number(String(await store.nextVersion()))),
                ])
            ])
        let asOld = try await store.verify(deep)
        let oldRule = try await store.segmentRecords(["acct_1"])["acct_1"]?.first { $0.id == sealed.id }?.rule
        #expect(asOld.ok && oldRule == 1, "\(asOld.corruptSegments)")

        // Rule 2 again, then the flag cleared: caught.
        try await store.insert(
            "segments",
            [
                await store.segmentRow(
                    "acct_1",
                    .init(
                        id: sealed.id, openedAt: 0, count: UInt64(sealed.count), sum: sealed.sum, firstTs: sealed.firstTs, lastTs: sealed.lastTs,
                        running: MultisetHash()), sealedAt: sealed.sealedAt, sha: sealed.sha, prev: previous)
            ])
        try await store.command("ALTER TABLE \(store.location.database).events UPDATE post_close = 0 WHERE event_id = 'fix'")
        for _ in 0..<100 {
            let flag = try await store.rows("SELECT post_close FROM \(store.location.database).events WHERE event_id = 'fix'")
            if flag.first?[0].chInt == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let v = try await store.verify(deep)
        #expect(!v.ok && v.corruptSegments.contains { $0.reason.contains("SHA-256") }, "\(v.corruptSegments)")
    }

    /// `["*"]` after a narrowed list keeps every dimension again on ClickHouse too: the meter's
    /// newest row holds NULL, which `argMax` skipped, reading the older list.
    @Test func everyDimensionKeptAgainIsRead() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.setMeter("tokens", unit: nil, rollupDimensions: ["token_type"])
        _ = try await store.setMeter("tokens", unit: nil, rollupDimensions: ["*"])
        #expect(try await store.meters(scope: .all).first { $0.meterID == "tokens" }?.rollupDimensions == nil)
    }

    /// A ClickHouse server killed inside an INSERT can keep the events' part and lose the rollups'
    /// parts (the views write theirs after the table's), and the client's retry is then answered
    /// duplicate. The writer keeps the ids of a write that failed and settles them: it adds to each
    /// rollup cell the stored ones it lacks, only where the cell's shortfall is exactly those
    /// events — a cell mixing them with events already rolled up, or settled twice, is left as it
    /// is; ids never stored, and the same id in another account, are not touched.
    @Test func rollupsLostWithAFailedInsertAreSettledCellByCell() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        func verify(_ account: String = "acct_1") async throws -> VerifyReport {
            try await store.verify(VerifyRequest(account: account, range: F.may, mode: .deep))
        }
        func keys(_ ids: [String], account: String = "acct_1") -> [ClickHouseMeterStore.BatchEventKey] {
            ids.map { .init(account: account, eventID: $0) }
        }
        // Rolled up as usual: one event in acct_1's hour 12 of May 10, one of the same id in acct_2.
        _ = try await store.ingest([F.event("before", quantity: 5), F.event("lost-2", account: "acct_2", quantity: 50)])
        // The views off: what a server killed between the events' part and the rollups' keeps.
        try await Self.rollupViews("DETACH", store)
        _ = try await store.ingest([F.event("lost-1", quantity: 7), F.event("lost-2", quantity: 11, at: "2026-05-11T08:00:00Z")])
        try await Self.rollupViews("ATTACH", store)
        let drifted = try await verify()
        #expect(!drifted.ok && drifted.rawSum == 23 && drifted.rollupSum == 5)

        // "before" with "lost-1" in one cell: the shortfall (7) is not the two (12), so that cell
        // waits; lost-2's own cell is whole again; the id never stored is nothing.
        await store.writer.addUnsettled(keys(["before", "lost-1", "lost-2", "never-stored"]))
        try await store.settleRollups()
        #expect(await store.writer.unsettledEvents().isEmpty)
        let partly = try await verify()
        #expect(!partly.ok && partly.rawSum == 23 && partly.rollupSum == 16, "\(partly.mismatches)")
        let other = try await verify("acct_2")
        #expect(other.ok && other.rollupSum == 50, "acct_2's lost-2 is not added again")

        // Exactly the lost one: whole. Settling again adds nothing.
        await store.writer.addUnsettled(keys(["lost-1"]))
        _ = try await store.ingest([F.event("after", quantity: 100)])  // a write settles first
        let settled = try await verify()
        #expect(settled.ok && settled.rawSum == 123 && settled.rollupSum == 123, "\(settled.mismatches)")
        await store.writer.addUnsettled(keys(["lost-1", "lost-2"]))
        try await store.settleRollups()
        let again = try await verify()
        #expect(again.ok && again.rollupSum == 123)
    }

    /// Until the events of a failed insert are settled, a grouped read of their account is answered
    /// from raw events, not from rollups that may lack them; other accounts keep their rollups.
    /// The writer retries settling on its own, without waiting for a write.
    @Test func rollupsAwaitingSettlingAreNotRead() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("before", quantity: 5), F.event("other", account: "acct_2", quantity: 50)])
        try await Self.rollupViews("DETACH", store)
        _ = try await store.ingest([F.event("lost", quantity: 7)])
        try await Self.rollupViews("ATTACH", store)
        await store.writer.addUnsettled([.init(account: "acct_1", eventID: "lost")])
        func read(_ scope: AccountScope) async throws -> (source: String, sum: Int64?) {
            let r = try await store.usage(UsageQuery(scope: scope, range: F.may))
            return (r.source, r.groups.reduce(0) { $0 + $1.aggregate.sum })
        }
        #expect(try await read(.accounts(["acct_1"])) == ("raw", 12))
        #expect(try await read(.all) == ("raw", 62))
        #expect(try await read(.accounts(["acct_2"])) == ("rollup", 50))
        // Asked for rollups by name: refused, not answered short.
        try await Self.expectUnavailable("source=rollup answered from rollups awaiting settling", saying: "source=auto") {
            _ = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, source: .rollup))
        }
        #expect(try await store.usage(UsageQuery(scope: .accounts(["acct_2"]), range: F.may, source: .rollup)).source == "rollup")
        store.settleSoon(every: .milliseconds(50))
        try await Self.poll(100, every: .milliseconds(50)) { await store.writer.unsettledEvents().isEmpty }
        #expect(try await read(.accounts(["acct_1"])) == ("rollup", 12))
        #expect(try await store.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep)).ok)
    }

    /// A write whose insert fails leaves its events to settle, and the writer settles them on its
    /// own within seconds, with no write after it (here the insert is refused because a statement
    /// with the writer's query id runs; the events were never stored, so settling adds nothing).
    @Test func aFailedWriteIsSettledWithoutAnotherWrite() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("before", quantity: 5)])
        let blocking = Task { try await store.shards[0].command("SELECT sleep(1.5)", settings: ["query_id": store.insertQueryID]) }
        try await Task.sleep(for: .milliseconds(300))
        await #expect(throws: (any Error).self) { try await store.ingest([F.event("refused", quantity: 7)]) }
        #expect(await store.writer.unsettledEvents().map(\.eventID) == ["refused"])
        #expect(try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may)).source == "raw")
        try await blocking.value
        try await Self.poll(60) { await store.writer.unsettledEvents().isEmpty }
        #expect(await store.writer.unsettledEvents().isEmpty, "settled with no write after the failure")
        #expect(await store.writer.claimRetry(), "the retry ended and can start again")
        let read = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may))
        #expect(read.source == "rollup" && read.groups.first?.aggregate.sum == 5)
    }

    /// While a statement carrying the writer's query id still runs (an insert whose answer was
    /// lost to a timeout), the writer with events to settle neither settles nor writes: 503, retry.
    /// Once it has ended, both go on.
    @Test func aWriterWaitsForItsOwnLostInsertToEnd() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("before", quantity: 5)])
        await store.writer.addUnsettled([.init(account: "acct_1", eventID: "before")])
        let stillRunning = Task {
            try await store.shards[0].command("SELECT sleep(2)", settings: ["query_id": store.insertQueryID])
        }
        try await Task.sleep(for: .milliseconds(500))
        do {
            _ = try await store.ingest([F.event("during", quantity: 1)])
            Issue.record("a write went ahead beside the writer's own running insert")
        } catch let e as UsageBoxError {
            #expect(e.code == .unavailable && e.retryAfter == 1, "\(e)")
        }
        try await stillRunning.value
        let after = try await store.ingest([F.event("during", quantity: 1)])
        let pending = await store.writer.unsettledEvents()
        #expect(after.accepted == 1 && pending.isEmpty)
    }

    /// In a cluster a Distributed statement's part on another shard runs under a query id of its
    /// own with the writer's as its initial one: the writer sees it still running there.
    @Test func aLostInsertStillRunningOnAnotherShardIsSeen() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        guard let cluster = store.location.cluster, store.shards.count > 1 else { return }
        #expect(try await !store.insertStillRunning())
        let second = try await store.rows(
            "SELECT host_name, port FROM system.clusters WHERE cluster = \(ClickHouseClient.quote(cluster)) AND shard_num = 2 LIMIT 1")
        let remote = "\(second.first?[0].chString ?? ""):\(second.first?[1].chInt ?? 0)"
        let started = Task {
            try await store.shards[0].command(
                "SELECT sleep(2) FROM remote(\(ClickHouseClient.quote(remote)), system.one)", settings: ["query_id": store.insertQueryID])
        }
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await store.runningOnOtherShards(), "its part on the second shard")
        try await started.value
        #expect(try await !store.insertStillRunning())
    }

    /// On one server's replicas (not a cluster): a fresh store, the same store opened with its
    /// hosts reversed (writing through the replica), and the drop; nil on any other layout. The
    /// two write the same account, so they hold two places of one split (the writer lease).
    static func oneServersReplicas() async throws -> (ClickHouseMeterStore, ClickHouseMeterStore, @Sendable () async -> Void)? {
        let (store, drop) = try await ClickHouseUnderTest.fresh(slot: WriterSlot(of: 2, node: 0))
        guard store.location.replicated, store.location.cluster == nil, store.shards.count > 1 else {
            await drop()
            return nil
        }
        var reversed = store.location
        reversed.hosts.reverse()
        return (store, try ClickHouseMeterStore(location: reversed, slot: WriterSlot(of: 2, node: 1)), drop)
    }

    /// A first host lacking a part its replica recorded (a server restarted after a crash,
    /// fetching a broken part of its own back; here its replication queue is stopped while another writer
    /// wrote through the replica) does not give the writer ids to decide from: the write is 503
    /// until the part is back, then the retried event is a duplicate, not stored twice.
    @Test func aFirstHostLackingPartsDecidesNothing() async throws {
        guard let (store, throughReplica, drop) = try await Self.oneServersReplicas() else { return }
        defer { Task { await drop() } }
        let events = "\(store.location.database).events"
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(events)")
        _ = try await Self.retryingUnavailable { try await throughReplica.ingest([F.event("e1", quantity: 3)]) }
        try await Self.expectUnavailable("the first host decided ids while it lacked a part", saying: "lacks") {
            _ = try await store.ingest([F.event("e1", quantity: 3)])
        }
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(events)")
        func stored() async throws -> Int64 { try await store.shards[0].rows("SELECT count() FROM \(events)").rows.first?.first?.chInt ?? 0 }
        try await Self.poll(100) { try await stored() > 0 }
        func ingestRetrying(_ items: [IngestItem]) async throws -> IngestResponse { try await Self.retryingUnavailable { try await store.ingest(items) } }
        let retried = try await ingestRetrying([F.event("e1", quantity: 3)])
        #expect(retried.duplicates == 1 && retried.accepted == 0)
        #expect(try await stored() == 1, "e1 stored once")

        // An account already loaded, its first host losing a part after a restart that failed
        // none of the writer's writes (here: the part written through the replica while its queue
        // is stopped, its id in the writer's set as if the writer had stored it): a retried id
        // whose row the first host does not return is not taken for new.
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(events)")
        _ = try await Self.retryingUnavailable { try await throughReplica.ingest([F.event("e2", quantity: 4)]) }
        await store.writer.state("acct_1")?.ids?.insert(EventIDSet.hash("e2"))
        try await Self.expectUnavailable("a loaded account took an id its first host lacks for new", saying: "lacks") {
            _ = try await store.ingest([F.event("e2", quantity: 4)])
        }
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(events)")
        try await Self.poll(150) { try await stored() >= 2 }
        let again = try await ingestRetrying([F.event("e2", quantity: 4)])
        #expect(again.duplicates == 1 && again.accepted == 0)
        #expect(try await stored() == 2, "e1 and e2 once each")

        // Settling after a failed write compares stored events with stored rollups: a first host
        // holding an event's part but not its rollup part (fetching it back) would have the event
        // added to the rollup again, and counted twice once the part is back.
        let hourly = "\(store.location.database).\(ClickHouseSchema.rollups[0].table)"
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(hourly)")
        _ = try await Self.retryingUnavailable { try await throughReplica.ingest([F.event("e3", quantity: 5)]) }
        try await Self.poll(150) { try await stored() >= 3 }
        await store.writer.forgetFirstHostCheck()  // as a failed write does
        await store.writer.addUnsettled([.init(account: "acct_1", eventID: "e3")])
        try await Self.expectUnavailable("settled against a first host lacking a rollup part", saying: "lacks") {
            _ = try await store.settleRollupsBeforeWriting()
        }
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(hourly)")
        try await Self.poll(50, every: .milliseconds(200)) {
            try? await store.settleRollupsBeforeWriting()
            return await !store.writer.anythingToSettle
        }
        #expect(await !store.writer.anythingToSettle)
        // The part fetched back: counted once, not twice.
        try await Self.poll(50, every: .milliseconds(200)) { try await store.replicaLag(store.shards[0], tables: [ClickHouseSchema.rollups[0].table]) == nil }
        let rolled = try await store.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .incremental))
        #expect(rolled.rawSum == 12 && rolled.rollupSum == 12 && rolled.mismatches.isEmpty, "\(rolled.mismatches)")

        // A seal hashes the segment's stored events: not while the first host lacks some.
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(events)")
        _ = try await Self.retryingUnavailable { try await throughReplica.ingest([F.event("e4", quantity: 6)]) }
        try await Task.sleep(for: .milliseconds(1_100))  // the last passing check is a second old, as after any restart
        try await Self.expectUnavailable("sealed a segment from a first host lacking a part", saying: "lacks") { _ = try await store.sealOpenSegments() }
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(events)")

        // A loaded account's closed months are read again each second: not from a first host
        // lacking a close's part, which would take usage into the closed month.
        func bothWhole() async throws {  // so that what follows lacks only the part it stops
            for shard in store.shards {
                try await Self.poll(300) { try await store.replicaLag(shard) == nil }
            }
        }
        try await bothWhole()
        _ = try await ingestRetrying([F.event("e5", quantity: 1)])
        try await bothWhole()
        let periods = "\(store.location.database).periods"
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(periods)")
        _ = try await Self.retryingUnavailable { try await throughReplica.closePeriod(account: "acct_1", period: "2026-05") }
        try await Task.sleep(for: ClickHouseMeterStore.catalogMaxAge + .milliseconds(100))
        try await Self.expectUnavailable("took usage into a month closed in a part the first host lacks", saying: "lacks") {
            _ = try await store.ingest([F.event("e6", quantity: 1)])
        }
        // Nothing was sent: the account stays loaded (reloading it reads every id it has).
        #expect(await store.writer.state("acct_1") != nil)
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(periods)")
        let closed = try await ingestRetrying([F.event("e6", quantity: 1)])
        #expect(closed.errors.map(\.code) == ["period_closed"] && closed.accepted == 0, "\(closed)")

        // Meters' units likewise: a unit set in a part the first host lacks would let another
        // unit into the meter (tokens and requests summed as one).
        try await bothWhole()
        // (A meter whose events carry no unit, so its unit may still be set.)
        let june = "2026-06-02T00:00:00Z"
        _ = try await ingestRetrying([F.event("j1", meter: "calls", quantity: 1, unit: nil, at: june)])
        try await bothWhole()
        let meters = "\(store.location.database).meters"
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(meters)")
        _ = try await Self.retryingUnavailable { try await throughReplica.setMeter("calls", unit: "requests", rollupDimensions: nil) }
        try await Task.sleep(for: ClickHouseMeterStore.catalogMaxAge + .milliseconds(100))
        try await Self.expectUnavailable("took tokens into a meter whose unit, in a part the first host lacks, is requests", saying: "lacks") {
            _ = try await store.ingest([F.event("j2", meter: "calls", quantity: 1, at: june)])
        }
        // A change that leaves the unit out keeps the stored one: not read from that first host,
        // which would write the meter back with no unit.
        try await Self.expectUnavailable("kept a meter's unit read from a first host lacking it", saying: "lacks") {
            _ = try await store.setMeter("calls", unit: nil, rollupDimensions: ["region"])
        }
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(meters)")
        let mismatched = try await ingestRetrying([F.event("j2", meter: "calls", quantity: 1, at: june)])
        #expect(mismatched.errors.map(\.code) == ["unit_mismatch"] && mismatched.accepted == 0, "\(mismatched)")
        let kept = try await Self.retryingUnavailable { try await store.setMeter("calls", unit: nil, rollupDimensions: ["region"]) }
        #expect(kept.unit == "requests" && kept.rollupDimensions == ["region"], "\(kept)")
    }

    /// Keys and the reconciliation log on a first host lacking a part its replica recorded (a
    /// server restarted after a crash, fetching a part of its own back): a revocation in that part
    /// does not let the key back in, and neither a revocation nor an application is written over
    /// an older row read from that host.
    @Test func aFirstHostLackingAKeysPartLetsNoRevokedKeyBackIn() async throws {
        guard let (store, throughReplica, drop) = try await Self.oneServersReplicas() else { return }
        defer { Task { await drop() } }
        func bothWhole() async throws {
            for shard in store.shards { try await Self.poll(300) { try await store.replicaLag(shard) == nil } }
        }
        let (key, secret) = try await Self.retryingUnavailable { try await store.createKey(account: "acct_1", role: .writer) }
        try await Self.retryingUnavailable {
            try await store.saveReconciliation(
                id: "rec_1", vendor: "anthropic", createdAt: F.ts("2026-06-01T10:00:00Z"), runBy: "t", reportJSON: "{}", summaryJSON: "")
        }
        try await bothWhole()
        let db = store.location.database
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(db).api_keys")
        try await store.shards[0].command("SYSTEM STOP REPLICATION QUEUES \(db).reconciliations")
        let revoked = try await Self.retryingUnavailable { try await throughReplica.revokeKey(key.keyID) }
        try await Self.retryingUnavailable {
            try await throughReplica.markReconciliationApplied(
                id: "rec_1", reportJSON: #"{"applied":true}"#, summaryJSON: "", appliedAt: F.ts("2026-06-02T10:00:00Z"))
        }
        try await Task.sleep(for: .milliseconds(1_100))  // the last passing check is a second old, as after any restart
        #expect(try await store.authenticate(secret: secret) == nil, "a key revoked in a part the first host lacks was let in")
        try await Self.expectUnavailable("revoked a key again over a row read from a first host lacking its revocation", saying: "lacks") {
            _ = try await store.revokeKey(key.keyID)
        }
        try await Self.expectUnavailable("marked a reconciliation applied over a row read from a first host lacking it", saying: "lacks") {
            try await store.markReconciliationApplied(
                id: "rec_1", reportJSON: #"{"applied":"again"}"#, summaryJSON: "", appliedAt: F.ts("2026-06-03T10:00:00Z"))
        }
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(db).api_keys")
        try await store.shards[0].command("SYSTEM START REPLICATION QUEUES \(db).reconciliations")
        try await bothWhole()
        #expect(try await store.authenticate(secret: secret) == nil)
        let again = try await Self.retryingUnavailable { try await store.revokeKey(key.keyID) }
        #expect(again.revokedAt == revoked.revokedAt, "the revocation kept its time")
        #expect(try await store.reconciliation(id: "rec_1") == #"{"applied":true}"#)
    }

    /// A part the first host stores while the check runs, fetched and recorded by the other replica
    /// before the check reads that replica's list, is not one the host lacks (two serve processes
    /// write segments through the first host at once: their writes were 503 now and then).
    @Test func partsStoredDuringTheCheckAreNotLacking() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        guard store.location.replicated, store.location.cluster == nil, store.shards.count > 1 else { return }
        let periods = "\(store.location.database).periods"
        let lacking = try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask {
                for i in 0..<200 { try await store.shards[0].command("INSERT INTO \(periods) VALUES ('acct_x', 'p\(i)', \(i))") }
                return []
            }
            group.addTask {
                var found: [String] = []
                for _ in 0..<200 {
                    if let behind = try await store.replicaLag(store.shards[0], tables: ["periods"]) { found.append(behind) }
                }
                return found
            }
            return try await group.reduce([], +)
        }
        #expect(lacking.isEmpty, "\(lacking.count) false gaps: \(lacking.prefix(3))")
    }

    /// Checks that start together share one scan of what the replicas recorded (each reads every
    /// part name from ZooKeeper): a burst of requests the moment the last pass is a second old
    /// starts one, not one each.
    @Test func concurrentFirstHostChecksShareOneScan() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        guard store.location.replicated, store.location.cluster != nil || store.shards.count > 1 else { return }
        _ = try await Self.retryingUnavailable { try await store.ingest([F.event("e1", quantity: 1)]) }
        await store.writer.forgetFirstHostCheck()
        let before = await store.writer.firstHostScans
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { try await store.checkFirstHostWhole() } }
            try await group.waitForAll()
        }
        #expect(await store.writer.firstHostScans - before == 1)
        // A check that starts after a failed write (a new generation) does not take the answer of
        // a scan begun before it, even while that scan runs.
        await store.writer.forgetFirstHostCheck()
        let earlier = Task { try await store.checkFirstHostWhole() }
        try await Self.poll(2_000, every: .milliseconds(1)) { await store.writer.firstHostScans - before == 2 }
        await store.writer.forgetFirstHostCheck()
        try await store.checkFirstHostWhole()
        try await earlier.value
        #expect(await store.writer.firstHostScans - before == 3)
    }

    /// A cluster of replicated shards: each shard's reads go to the first replica in the cluster's
    /// order that answers, so that replica is checked as the first host is on one server's
    /// replicas. Here a part lands on the second replica of acct_1's shard (as while the first was
    /// down) and the first does not fetch it: the writer reloading the account is 503, then, once
    /// the part is fetched, the id is not stored a second time.
    @Test func aShardReplicaLackingPartsDecidesNothing() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh(slot: WriterSlot(of: 2, node: 0))
        defer { Task { await drop() } }
        guard store.location.replicated, store.location.cluster != nil else { return }
        _ = try await store.ingest([F.event("e0", quantity: 3)])
        let order = try await store.shardReplicaOrder()
        #expect(order.count == 2 && order.allSatisfy { $0.replicas.count == 2 && $0.replicas.allSatisfy { $0.host != nil } }, "\(order)")
        let local = "\(store.location.database).events_local"
        func count(_ host: Int, _ id: String) async throws -> Int64 {
            try await store.shards[host].rows("SELECT count() FROM \(local) WHERE event_id = '\(id)'").rows.first?.first?.chInt ?? 0
        }
        var holding: [Int] = []
        for shard in order where try await count(shard.replicas[0].host ?? 0, "e0") == 1 { holding = shard.replicas.compactMap(\.host) }
        try #require(holding.count == 2, "acct_1's shard found")
        let (first, second) = (holding[0], holding[1])
        try await store.shards[first].command("SYSTEM STOP REPLICATION QUEUES \(local)")
        try await store.shards[second].command(
            """
            INSERT INTO \(local) SELECT account_id, 'e1', meter_id, model_id, kind, correction_ref, quantity, unit, ts, dim_keys,
                dim_values, dimensions, content, segment_id, ordinal + 1, post_close, ingested_at FROM \(local) WHERE event_id = 'e0'
            """)
        // The starved replica is the one the store's Distributed reads go to (not only the one
        // the code thinks they go to). Asked without the store's one-second staleness bound: a
        // replica whose queue has held the part for two seconds is skipped by ClickHouse itself
        // (the other answers, whole), and a loaded machine can take that long to get here.
        let seen = try await store.client.rows(
            "SELECT count() FROM \(store.location.database).events WHERE event_id = 'e1'",
            settings: ["max_replica_delay_for_distributed_queries": "0"]
        ).rows
        #expect(seen.first?.first?.chInt == 0, "reads go to the shard's first replica")
        await store.writer.set("acct_1", nil)  // as after a failed write: the account is read again, checked first
        await store.writer.forgetFirstHostCheck()
        try await Self.expectUnavailable("a shard's first replica decided ids while it lacked a part", saying: "lacks", "shard") {
            _ = try await store.ingest([F.event("e1", quantity: 3)])
        }
        // Nor does it answer reads short (any serve process's, not only the writer's).
        let reader = try ClickHouseMeterStore(location: store.location)
        do {
            let short = try await reader.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, source: .raw))
            Issue.record("read answered from a replica lacking a part: \(short.groups.map(\.aggregate.count))")
        } catch let e as UsageBoxError {
            #expect(e.code == .unavailable && e.message.contains("reads wait"), "\(e.message)")
        }
        try await store.shards[first].command("SYSTEM START REPLICATION QUEUES \(local)")
        try await Self.poll(100) { try await count(first, "e1") > 0 }
        let retried = try await Self.retryingUnavailable { try await store.ingest([F.event("e1", quantity: 3)]) }
        #expect(retried.accepted == 0, "e1 is there already (a conflict: its content is e0's)")
        try await Task.sleep(for: .milliseconds(1_100))
        #expect(try await reader.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, source: .raw)).groups.first?.aggregate.count == 2)
        let stored = (try await count(first, "e1"), try await count(second, "e1"))
        #expect(stored == (1, 1), "e1 stored once")

        // A URL whose first host is the shard's second replica: the store still reads the shard
        // from its first replica (ClickHouse would otherwise prefer the local one), so a part the
        // second lacks and the first holds is found, and the id is not stored twice.
        var reordered = store.location
        reordered.hosts = [reordered.hosts[second]] + reordered.hosts.enumerated().filter { $0.offset != second }.map(\.element)
        let throughSecond = try ClickHouseMeterStore(location: reordered, slot: WriterSlot(of: 2, node: 1))
        try await store.shards[second].command("SYSTEM STOP REPLICATION QUEUES \(local)")
        try await store.shards[first].command(
            """
            INSERT INTO \(local) SELECT account_id, 'e2', meter_id, model_id, kind, correction_ref, quantity, unit, ts, dim_keys,
                dim_values, dimensions, content, segment_id, ordinal + 2, post_close, ingested_at FROM \(local) WHERE event_id = 'e0'
            """)
        let answer = try await Self.retryingUnavailable { try await throughSecond.ingest([F.event("e2", quantity: 3)]) }
        #expect(answer.accepted == 0, "e2 found on the shard's first replica")
        try await store.shards[second].command("SYSTEM START REPLICATION QUEUES \(local)")
        try await Self.poll(100) { try await count(second, "e2") > 0 }
        try await Task.sleep(for: .milliseconds(500))  // anything else to fetch arrives too
        let e2 = (try await count(first, "e2"), try await count(second, "e2"))
        #expect(e2 == (1, 1), "e2 stored once")
    }

    /// A server starting after a writer stopped mid-insert settles that writer's last write
    /// before its own first one — but not while an insert begun before it opened the store still
    /// runs (the stopped writer's, perhaps: its views' parts may yet land). Reads answer from raw
    /// events meanwhile and writes are 503; once the insert has ended the server settles on its
    /// own. An insert begun after it opened (another live server's) does not hold it up.
    @Test func aStartingServerWaitsForAnInsertBegunBeforeIt() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("a-1", quantity: 5)])
        try await Self.rollupViews("DETACH", store)
        _ = try await store.ingest([F.event("a-2", quantity: 7)])
        try await Self.rollupViews("ATTACH", store)
        // The stopped writer's last insert, its answer lost, still running when the next server
        // opens: it stores "late" (a day after a-2, in the same write) two seconds later.
        let events = "\(store.location.database).events"
        let lateInsert = Task {
            try await store.shards[0].command(
                """
                INSERT INTO \(events) SELECT account_id, 'late', meter_id, model_id, kind, correction_ref, 4, unit, ts + 86400000000,
                    dim_keys, dim_values, dimensions, content, segment_id, ordinal + 1, post_close, ingested_at
                FROM \(events) WHERE event_id = 'a-2' AND sleep(2) = 0
                """, settings: ["insert_distributed_sync": "1"])
        }
        try await Task.sleep(for: .milliseconds(400))
        try await store.releaseWriterLease()  // the stopped writer's lease has lapsed
        let restarted = try ClickHouseMeterStore(location: store.location)
        try await restarted.recoverOpenSegments()
        #expect(await restarted.writer.lastWritesPending)
        let read = try await restarted.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may))
        #expect(read.source == "raw" && read.groups.first?.aggregate.sum == 12)
        try await Self.expectUnavailable("a write went ahead of the stopped writer's last write", saying: "before this server started") {
            _ = try await restarted.ingest([F.event("a-3", quantity: 1)])
        }
        try await lateInsert.value
        // Its retries back off (1 s, 2 s, 4 s…): within 15 s even on four servers sharing two cores.
        try await Self.poll(150) { await !restarted.writer.anythingToSettle }
        #expect(await !restarted.writer.lastWritesPending, "settled on its own once the insert ended")
        // The client retries the event whose answer was lost: it is there, not stored again.
        let retried = try await restarted.ingest([F.event("late", quantity: 4, at: "2026-05-11T12:00:00Z")])
        #expect(retried.accepted == 0, "\(retried)")
        let count = try await store.shards[0].rows("SELECT count() FROM \(events) WHERE event_id = 'late'").rows.first?.first?.chInt
        #expect(count == 1)
        let report = try await restarted.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(report.ok && report.rawSum == 16 && report.rollupSum == 16, "\(report.mismatches)")

        // Begun by a live writer of other accounts (another place of the same --peers split): it
        // does not hold up a server taking the lease of its own.
        try await restarted.releaseWriterLease()
        let later = try ClickHouseMeterStore(location: store.location, slot: WriterSlot(of: 2, node: 0))
        let peer = try ClickHouseMeterStore(location: store.location, slot: WriterSlot(of: 2, node: 1))
        let during = Task {
            try await store.shards[0].command(
                "INSERT INTO \(events) (account_id, event_id) SELECT 'acct_9', 'none' FROM system.one WHERE sleep(2) = 1",
                settings: ["query_id": peer.insertQueryID])
        }
        try await Task.sleep(for: .milliseconds(300))
        try await later.recoverOpenSegments()
        #expect(await later.writer.leaseRenewedAt != nil)
        #expect(await !later.writer.lastWritesPending)
        try await during.value
    }

    /// A writer that stopped after such a failed insert, before its next write, leaves the
    /// rollups to the next process that writes the account: it settles each account's last write
    /// when it starts (`recoverOpenSegments`, run by `serve`).
    @Test func aRestartedWriterSettlesTheLastWritesRollups() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        _ = try await store.ingest([F.event("a-1", quantity: 5), F.event("b-1", account: "acct_2", quantity: 6)])
        try await Self.rollupViews("DETACH", store)
        _ = try await store.ingest([F.event("a-2", quantity: 7), F.event("a-3", quantity: 9, at: "2026-05-12T01:00:00Z")])
        try await Self.rollupViews("ATTACH", store)
        try await store.releaseWriterLease()  // the stopped writer's lease has lapsed
        let restarted = try ClickHouseMeterStore(location: store.location)
        try await restarted.recoverOpenSegments()
        for (account, sum) in [("acct_1", 21), ("acct_2", 6)] as [(String, Int64)] {
            let report = try await restarted.verify(VerifyRequest(account: account, range: F.may, mode: .deep))
            #expect(report.ok && report.rawSum == sum && report.rollupSum == sum, "\(account): \(report.mismatches)")
        }
        // Starting again adds nothing: the last write's cells are whole.
        try await restarted.releaseWriterLease()
        try await ClickHouseMeterStore(location: store.location).recoverOpenSegments()
        let again = try await restarted.verify(VerifyRequest(account: "acct_1", range: F.may, mode: .deep))
        #expect(again.ok && again.rollupSum == 21)
    }

    /// Ingest keeps meters' units and closed periods for `catalogMaxAge` instead of reading them
    /// per batch: changes through the same store apply at once, changes through another process
    /// (another store on the same database) once the copy is that old.
    @Test func unitsAndClosedPeriodsChangedElsewhereApplyWithinTheirMaxAge() async throws {
        let (store, drop) = try await ClickHouseUnderTest.fresh()
        defer { Task { await drop() } }
        let other = try ClickHouseMeterStore(location: store.location)
        // Without a unit, so the meter's unit may still change (once events carry one, it may not).
        _ = try await store.ingest([F.event("a1", quantity: 1, unit: nil), F.event("j1", quantity: 1, unit: nil, at: "2026-06-02T00:00:00Z")])
        // The same store: at once.
        _ = try await store.closePeriod(account: "acct_1", period: "2026-05")
        var r = try await store.ingest([F.event("a2", quantity: 1)])
        #expect(r.errors.map(\.code) == ["period_closed"])
        _ = try await store.setMeter("tokens", unit: "requests", rollupDimensions: nil)
        r = try await store.ingest([F.event("j2", quantity: 1, at: "2026-06-03T00:00:00Z")])
        #expect(r.errors.map(\.code) == ["unit_mismatch"])
        // Another process: within the max age.
        _ = try await other.closePeriod(account: "acct_1", period: "2026-06")
        _ = try await other.setMeter("tokens", unit: "tokens", rollupDimensions: nil)
        try await Task.sleep(for: ClickHouseMeterStore.catalogMaxAge + .milliseconds(100))
        r = try await store.ingest([
            F.event("j3", quantity: 1, at: "2026-06-04T00:00:00Z"), F.event("c1", kind: .correction, ref: "a1", quantity: -1, at: "2026-06-04T00:00:00Z"),
        ])
        #expect(r.errors.map(\.code) == ["period_closed"], "June closed elsewhere; the unit set back elsewhere is tokens again")
        #expect(r.accepted == 1 && r.postClose == 1)
        // A meter another process recorded is read at once: the batch names a meter the copy lacks.
        _ = try await other.setMeter("gpu", unit: "seconds", rollupDimensions: nil)
        r = try await store.ingest([F.event("g1", meter: "gpu", quantity: 1, unit: "hours", at: "2026-07-01T00:00:00Z")])
        #expect(r.errors.map(\.code) == ["unit_mismatch"])
    }
}
