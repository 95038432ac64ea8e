import ExactJSON
import Foundation
public import Metering

/// The behaviours of docs/events.md and docs/api.md that every `MeterStore` backend must pass. A backend's test
/// target runs `MeterStoreConformance.checks` against fresh stores (in memory and on disk for
/// SQLite; the same list for any later backend).
public enum MeterStoreConformance {
    typealias F = Fixture

    public static let checks: [ConformanceCheck] = [
        ConformanceCheck("an event that would push a sum past 64 bits is rejected alone; the rest of its batch is stored") { store in
            let big = Int64.max - 1000
            _ = try await store.ingest([F.event("huge", quantity: big)])
            let r = try await store.ingest([
                F.event("ok1", quantity: 5, at: "2026-05-11T12:00:00Z"), F.event("over", quantity: 2000),
                F.event("ok2", quantity: 7, at: "2026-05-12T12:00:00Z"),
            ])
            try expectEqual([r.accepted, r.rejected], [2, 1], "counts")
            try expectEqual(r.errors.map(\.code), ["quantity_overflow"], "code")
            try expectEqual(r.errors.map(\.index), [1], "index")
            let hour = try await store.usage(
                UsageQuery(
                    scope: .accounts(["acct_1"]),
                    range: try TimeRange(
                        from: F.ts("2026-05-10T12:00:00Z"),
                        to: F.ts("2026-05-10T13:00:00Z"))))
            try expectEqual(hour.groups.first?.aggregate.sum, big, "the overflowing event left nothing behind")
            let v = try await store.verify(
                VerifyRequest(account: "acct_1", range: try TimeRange(from: F.ts("2026-05-11T00:00:00Z"), to: F.ts("2026-05-13T00:00:00Z"))))
            try expectEqual(v.ok, true, "verify of the other days")
            _ = try await store.ingest([F.event("huge2", account: "acct_2", quantity: big)])
            do {
                _ = try await store.usage(UsageQuery(scope: .all, range: F.may))
                throw ConformanceFailure(message: "a total past 64 bits was answered", file: #fileID, line: #line)
            } catch let e as UsageBoxError {
                try expectEqual(e.code, .invalidArgument, "a total past 64 bits says so")
            }
        },
        ConformanceCheck("accepts, then answers duplicates and conflicts across batches") { store in
            let first = try await store.ingest([F.event("e1", quantity: 10), F.event("e2", quantity: 20)])
            try expectEqual(first.accepted, 2, "accepted")
            let again = try await store.ingest([F.event("e1", quantity: 10), F.event("e2", quantity: 21), F.event("e3", quantity: 5)])
            try expectEqual([again.accepted, again.duplicates, again.conflicts, again.rejected], [1, 1, 1, 0], "counts")
            try expectEqual(again.errors.map(\.index), [1], "error index")
            try expectEqual(again.errors.first?.status, .conflict, "status")
            let sum = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may))
            try expectEqual(sum.groups.first?.aggregate.sum, 35, "the original of a conflict stays")
        },
        ConformanceCheck("concurrent batches are each answered for their own events; one batch's overflow is its own") { store in
            // Eight writers at once, overlapping ids, one batch carrying an overflowing event: with
            // group commit these share transactions, and must still answer exactly as one by one.
            _ = try await store.ingest([F.event("huge", account: "acct_9", quantity: Int64.max - 10)])
            let answers = try await withThrowingTaskGroup(of: (Int, IngestResponse).self) { group in
                for w in 0..<8 {
                    group.addTask {
                        var events = (0..<50).map { F.event("c\(w % 4)-\($0)", account: "acct_\(w % 2)", quantity: Int64(w % 4 + 1)) }
                        if w == 5 { events.append(F.event("over", account: "acct_9", quantity: 100)) }
                        return (w, try await store.ingest(events))
                    }
                }
                var all: [Int: IngestResponse] = [:]
                for try await (w, r) in group { all[w] = r }
                return all
            }
            // Writers w and w+4 send the same 50 events: one is accepted, the other answered duplicate.
            for w in 0..<4 {
                let pair = [answers[w]!, answers[w + 4]!]
                try expectEqual(pair.map(\.accepted).sorted(), [0, 50], "writers \(w) and \(w + 4): one stores the 50")
                try expectEqual(pair.map(\.duplicates).sorted(), [0, 50], "writers \(w) and \(w + 4): the other is told duplicate")
            }
            try expectEqual(answers[5]!.errors.map(\.code), ["quantity_overflow"], "only the overflowing event is refused")
            for account in ["acct_0", "acct_1"] {
                let u = try await store.usage(UsageQuery(scope: .accounts([account]), range: F.may))
                let quantities: Int64 = account == "acct_0" ? 50 * (1 + 3) : 50 * (2 + 4)
                try expectEqual(u.groups.first?.aggregate.sum, quantities, "\(account): every accepted event counted once")
                try expectEqual(try await store.verify(VerifyRequest(account: account, range: F.may)).ok, true, "verify \(account)")
            }
        },
        ConformanceCheck("duplicates and conflicts inside one batch") { store in
            let r = try await store.ingest([F.event("x", quantity: 1), F.event("x", quantity: 1), F.event("x", quantity: 2)])
            try expectEqual([r.accepted, r.duplicates, r.conflicts], [1, 1, 1], "counts")
            try expectEqual(r.errors.map(\.index), [2], "the conflict's index")
        },
        ConformanceCheck("same content is decided on the canonical encoding, not the JSON text") { store in
            let decoder = EventDecoder()
            let a = try JSONParser.parse(
                #"{"event_id":"c1","account_id":"a","meter_id":"m","quantity":5,"timestamp":"2026-05-10T14:00:00+02:00","dimensions":{"b":"2","a":"1"}}"#)
            let b = try JSONParser.parse(
                #"{"dimensions":{"a":"1","b":"2"},"timestamp":"2026-05-10T12:00:00Z","quantity":"5","kind":"Usage","meter_id":"m","account_id":"a","event_id":"c1"}"#
            )
            _ = try await store.ingest([decoder.decode(a)])
            let r = try await store.ingest([decoder.decode(b)])
            try expectEqual(r.duplicates, 1, "duplicate")
        },
        ConformanceCheck("every rejection reason of docs/events.md is named with its index") { store in
            _ = try await store.ingest([F.event("u1", meter: "m_unit", quantity: 1, unit: "tokens")])
            let decoder = EventDecoder()
            let bad: [(String, String)] = [
                (#"[1]"#, "invalid_event"),
                (#"{"account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#, "missing_event_id"),
                (#"{"event_id":"has space","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#, "invalid_event_id"),
                (#"{"event_id":"e","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#, "missing_account_id"),
                (#"{"event_id":"e","account_id":"a","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#, "missing_meter_id"),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","model_id":"bad/model","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#,
                    "invalid_model_id"
                ),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","kind":"Refund","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#, "invalid_kind"),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","kind":"Correction","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#,
                    "missing_correction_ref"
                ),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","correction_ref":"r","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#,
                    "invalid_correction_ref"
                ),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1.5,"timestamp":"2026-05-10T12:00:00Z"}"#, "invalid_quantity"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":"12.0","timestamp":"2026-05-10T12:00:00Z"}"#, "invalid_quantity"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1e3,"timestamp":"2026-05-10T12:00:00Z"}"#, "invalid_quantity"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":99999999999999999999,"timestamp":"2026-05-10T12:00:00Z"}"#, "invalid_quantity"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":-1,"timestamp":"2026-05-10T12:00:00Z"}"#, "invalid_quantity"),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","kind":"Correction","correction_ref":"r","quantity":0,"timestamp":"2026-05-10T12:00:00Z"}"#,
                    "invalid_quantity"
                ),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","timestamp":"2026-05-10T12:00:00Z"}"#, "missing_quantity"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10 12:00:00"}"#, "invalid_timestamp"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-02-30T12:00:00Z"}"#, "invalid_timestamp"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1}"#, "missing_timestamp"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2999-01-01T00:00:00Z"}"#, "timestamp_in_future"),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":{"k":1}}"#,
                    "invalid_dimensions"
                ),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":[]}"#, "invalid_dimensions"),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":{"a\u0000b":"v"}}"#,
                    "invalid_dimensions"
                ),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":{"a\nb":"v"}}"#,
                    "invalid_dimensions"
                ),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":{"k":"v\u0000"}}"#,
                    "invalid_dimensions"
                ),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":{"\#(String(repeating: "k", count: 65))":"v"}}"#,
                    "invalid_dimensions"
                ),
                (
                    #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":{"k":"\#(String(repeating: "v", count: 257))"}}"#,
                    "invalid_dimensions"
                ),
                (#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","extra":"x"}"#, "unknown_field"),
                (#"{"event_id":"e","account_id":"a","meter_id":"m_unit","quantity":1,"unit":"requests","timestamp":"2026-05-10T12:00:00Z"}"#, "unit_mismatch"),
            ]
            let tooMany = (0..<33).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
            let all =
                bad + [
                    (
                        #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z","dimensions":{\#(tooMany)}}"#,
                        "invalid_dimensions"
                    )
                ]
            let items = try all.map { decoder.decode(try JSONParser.parse($0.0)) }
            let r = try await store.ingest(items)
            try expectEqual(r.rejected, all.count, "all rejected")
            try expectEqual(r.accepted, 0, "none accepted")
            for (i, (text, code)) in all.enumerated() {
                let e = r.errors.first { $0.index == i }
                try expectEqual(e?.code, code, "code for \(text)")
                try expectEqual(e?.status, .rejected, "status for \(text)")
            }
            let long = String(repeating: "a", count: 201)
            let r2 = try await store.ingest([
                decoder.decode(
                    try JSONParser.parse(
                        #"{"event_id":"\#(long)","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-10T12:00:00Z"}"#))
            ])
            try expectEqual(r2.errors.first?.code, "invalid_event_id", "201-char id")
        },
        ConformanceCheck("explain breaks a model down by unit: tokens and kTok are rows apart, the totals add both") { store in
            _ = try await store.ingest([
                F.event("t1", quantity: 100), F.event("k1", meter: "ktok", quantity: 5, unit: "kTok"), F.event("n1", meter: "plain", quantity: 1, unit: nil),
            ])
            let explain = try await store.explain(account: "acct_1", range: F.may)
            try expectEqual(explain.breakdown.map { "\($0.modelID ?? "-") \($0.unit ?? "-") \($0.usage)" }, ["m1 - 1", "m1 kTok 5", "m1 tokens 100"], "rows")
            try expectEqual(explain.totals.usage, 106, "totals")
        },
        ConformanceCheck("a closed period rejects Usage, accepts Corrections marked post_close, and never reopens") { store in
            _ = try await store.ingest([F.event("a1", quantity: 100)])
            let closed = try await store.closePeriod(account: "acct_1", period: "2026-05")
            let again = try await store.closePeriod(account: "acct_1", period: "2026-05")
            try expectEqual(closed.closedAt, again.closedAt, "closing twice returns the first closed_at")
            let r = try await store.ingest([
                F.event("late", quantity: 5),
                F.event("fix", kind: .correction, ref: "recon_may", quantity: -30, at: "2026-05-31T23:59:59Z"),
                F.event("a1", quantity: 100),
                F.event("june", quantity: 7, at: "2026-06-01T00:00:00Z"),
            ])
            try expectEqual([r.accepted, r.rejected, r.duplicates], [2, 1, 1], "counts")
            try expectEqual(r.errors.first?.code, "period_closed", "code")
            try expectEqual(r.errors.first?.index, 0, "index")
            let explain = try await store.explain(account: "acct_1", range: F.may)
            try expectEqual(explain.corrections.map(\.postClose), [true], "post_close")
            try expectEqual([explain.postClose.events, explain.postClose.sum], [1, -30], "post_close totals")
            try expectEqual(explain.totals.net, 70, "net")
            // Segments are named alike on every store (ClickHouse said "1" where SQLite said "seg_00000001").
            try expect(
                !explain.segments.isEmpty && explain.segments.allSatisfy { $0.segmentID.hasPrefix("seg_") && $0.segmentID.count >= 12 },
                "segment names: \(explain.segments.map(\.segmentID))")
            let periods = try await store.periods(account: "acct_1")
            try expectEqual(periods.map(\.period), ["2026-05"], "periods")
            try await expectThrows(.invalidArgument, field: "period") { _ = try await store.closePeriod(account: "acct_1", period: "2026-13") }
            // A month that has not ended cannot be closed (there is no reopen).
            try await expectThrows(.invalidArgument, field: "period") { _ = try await store.closePeriod(account: "acct_1", period: "2999-01") }
            // Nor one before 1970, where no event can be dated (it locked a month forever for nothing).
            for period in ["1969-12", "0000-01"] {
                try await expectThrows(.invalidArgument, field: "period") { _ = try await store.closePeriod(account: "acct_1", period: period) }
            }
            try expectEqual(try await store.periods(account: "acct_1").map(\.period), ["2026-05"], "nothing else closed")
        },
        ConformanceCheck("negative and positive corrections net into sums; kind=Usage excludes them") { store in
            _ = try await store.ingest([
                F.event("u1", model: "big", quantity: 1000),
                F.event("c1", model: "big", kind: .correction, ref: "r1", quantity: -250),
                F.event("c2", model: "big", kind: .correction, ref: "r1", quantity: 40),
            ])
            let net = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.modelID]))
            try expectEqual(net.groups.map(\.aggregate.sum), [790], "net")
            try expectEqual(net.groups.map(\.aggregate.count), [3], "count includes corrections")
            let usageOnly = try await store.usage(
                UsageQuery(
                    scope: .accounts(["acct_1"]), range: F.may,
                    filters: [UsageFilter(field: .kind, op: .eq, values: ["Usage"])]))
            try expectEqual(usageOnly.groups.map(\.aggregate.sum), [1000], "usage only")
            // Over every instant a store holds, 1970 to 2100 (how a cell's correction slot is counted).
            let ever = try await store.usage(
                UsageQuery(
                    scope: .accounts(["acct_1"]), range: try TimeRange(from: Timestamp(microseconds: 0), to: F.ts("2100-01-01T00:00:00Z")),
                    groupBy: [.accountID, .modelID], filters: [UsageFilter(field: .kind, op: .eq, values: ["Correction"])]))
            try expectEqual(
                ever.groups.map { "\($0.keys) \($0.aggregate.count) \($0.aggregate.sum)" }, [#"[Optional("acct_1"), Optional("big")] 2 -210"#],
                "corrections over every period")
            let explain = try await store.explain(account: "acct_1", range: F.may)
            try expectEqual([explain.totals.usage, explain.totals.corrections, explain.totals.net, explain.totals.count], [1000, -210, 790, 3], "explain")
            try expectEqual(explain.corrections.map(\.event.eventID), ["c1", "c2"], "corrections listed")
        },
        ConformanceCheck("grouped reads: fields, dimensions, time buckets, null first, byte order") { store in
            _ = try await store.ingest([
                F.event("1", account: "b", model: "sonnet", quantity: 10, at: "2026-05-01T00:10:00Z", dims: ["token_type": "input"]),
                F.event("2", account: "b", model: "sonnet", quantity: 20, at: "2026-05-01T01:10:00Z", dims: ["token_type": "output"]),
                F.event("3", account: "b", model: "Opus", quantity: 5, at: "2026-05-02T00:00:00Z", dims: ["token_type": "input"]),
                F.event("4", account: "b", model: nil, quantity: 1, at: "2026-05-03T00:00:00Z"),
                F.event("5", account: "c", model: "sonnet", quantity: 100, at: "2026-05-03T00:00:00Z", dims: ["token_type": "input"]),
            ])
            let byModel = try await store.usage(UsageQuery(scope: .accounts(["b"]), range: F.may, groupBy: [.modelID]))
            try expectEqual(byModel.groups.map(\.keys), [[nil], ["Opus"], ["sonnet"]], "null first, then byte order")
            try expectEqual(byModel.groups.map(\.aggregate.sum), [1, 5, 30], "sums")
            try expectEqual(byModel.source, "rollup", "source")
            let byType = try await store.usage(
                UsageQuery(
                    scope: .accounts(["b"]), range: F.may, groupBy: [.dimension("token_type")],
                    filters: [UsageFilter(field: .modelID, op: .eq, values: ["sonnet"])]))
            try expectEqual(byType.groups.map(\.keys), [["input"], ["output"]], "token types")
            let byDay = try await store.usage(UsageQuery(scope: .accounts(["b"]), range: F.may, groupBy: [.day]))
            try expectEqual(byDay.groups.map(\.keys), [["2026-05-01"], ["2026-05-02"], ["2026-05-03"]], "days")
            let byHour = try await store.usage(
                UsageQuery(
                    scope: .accounts(["b"]), range: F.may, groupBy: [.hour],
                    filters: [UsageFilter(field: .modelID, op: .eq, values: ["sonnet"])]))
            try expectEqual(byHour.groups.map(\.keys), [["2026-05-01T00:00:00Z"], ["2026-05-01T01:00:00Z"]], "hours")
            let byMonth = try await store.usage(UsageQuery(scope: .all, range: F.may, groupBy: [.month, .accountID]))
            try expectEqual(byMonth.groups.map(\.keys), [["2026-05", "b"], ["2026-05", "c"]], "month × account")
            try expectEqual(byMonth.groups.map(\.aggregate.sum), [36, 100], "month sums")
            let total = try await store.usage(UsageQuery(scope: .all, range: F.may))
            try expectEqual(total.groups.map(\.aggregate.sum), [136], "no group_by: one group")
            let empty = try await store.usage(UsageQuery(scope: .accounts(["nobody"]), range: F.may))
            try expectEqual(empty.groups.map(\.aggregate.count), [0], "an account without events reads zero")
        },
        ConformanceCheck("rollup and raw reads agree, including partial hours at the edges") { store in
            var items: [IngestItem] = []
            for i in 0..<240 {
                let minute = i * 7
                let at = Timestamp(microseconds: F.ts("2026-05-04T00:00:00Z").microseconds + Int64(minute) * 60_000_000).rfc3339
                items.append(
                    F.event(
                        "r\(i)", model: i % 3 == 0 ? "a" : "b", quantity: Int64(i + 1), at: at,
                        dims: ["token_type": i % 2 == 0 ? "input" : "output"]))
            }
            _ = try await store.ingest(items)
            let ranges = [
                try TimeRange(from: F.ts("2026-05-04T00:00:00Z"), to: F.ts("2026-05-05T00:00:00Z")),
                try TimeRange(from: F.ts("2026-05-04T02:13:00Z"), to: F.ts("2026-05-04T19:59:59.5Z")),
                try TimeRange(from: F.ts("2026-05-04T03:10:00Z"), to: F.ts("2026-05-04T03:50:00Z")),
            ]
            for range in ranges {
                for groupBy in [[UsageField](), [.modelID], [.dimension("token_type"), .hour]] {
                    let metrics: [UsageMetric] = [.sum, .count, .min, .max]
                    let rollup = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: range, groupBy: groupBy, metrics: metrics))
                    let raw = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: range, groupBy: groupBy, metrics: metrics, source: .raw))
                    try expectEqual(rollup.groups, raw.groups, "rollup = raw for \(range) by \(groupBy)")
                    try expectEqual(raw.source, "raw", "raw source")
                }
            }
        },
        ConformanceCheck("a group_by or filter naming an unseen dimension is an error, never a zero") { store in
            _ = try await store.ingest([F.event("1", quantity: 1, dims: ["token_type": "input"])])
            try await expectThrows(.invalidArgument, field: "tokn_type") {
                _ = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.dimension("tokn_type")]))
            }
            try await expectThrows(.invalidArgument, field: "feature") {
                _ = try await store.usage(
                    UsageQuery(
                        scope: .accounts(["acct_1"]), range: F.may,
                        filters: [UsageFilter(field: .dimension("feature"), op: .eq, values: ["x"])]))
            }
            // A dimension seen on another account is still unknown on this one.
            _ = try await store.ingest([F.event("2", account: "other", quantity: 1, dims: ["feature": "chat"])])
            try await expectThrows(.invalidArgument, field: "feature") {
                _ = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.dimension("feature")]))
            }
        },
        ConformanceCheck("dimensions named like reserved fields are stored and reached as dim.NAME") { store in
            _ = try await store.ingest([
                F.event("1", quantity: 3, dims: ["source": "vendor_reconciliation", "reason": "retry"]),
                F.event("2", quantity: 4, dims: ["source": "collector"]),
            ])
            let q = try UsageQuery.fromParameters(
                [
                    ("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"),
                    ("group_by", "dim.source"), ("dim.source", "collector"),
                ], scope: .accounts(["acct_1"]))
            let r = try await store.usage(q)
            try expectEqual(r.groups.map(\.keys), [["collector"]], "keys")
            try expectEqual(r.groups.map(\.aggregate.sum), [4], "sum")
            let json = JSONWriter.write(r.jsonValue)
            try expect(json.contains("\"dim.source\":\"collector\""), "the group names dim.source: \(json)")
        },
        ConformanceCheck("a meter's rollup dimensions cap cardinality; other dimensions are read from raw and say so") { store in
            _ = try await store.ingest([
                F.event("1", meter: "calls", quantity: 1, dims: ["token_type": "input", "request_id": "r1"]),
                F.event("2", meter: "calls", quantity: 2, dims: ["token_type": "input", "request_id": "r2"]),
            ])
            let info = try await store.setMeter("calls", unit: nil, rollupDimensions: ["token_type"])
            try expectEqual(info.rollupDimensions, ["token_type"], "kept")
            _ = try await store.ingest([F.event("3", meter: "calls", quantity: 4, dims: ["token_type": "output", "request_id": "r3"])])
            let kept = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.dimension("token_type")]))
            try expectEqual(kept.source, "rollup", "kept dimension from rollups")
            try expectEqual(kept.groups.map(\.aggregate.sum), [3, 4], "sums")
            let other = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.dimension("request_id")]))
            try expectEqual(other.source, "raw", "other dimension from raw")
            try expectEqual(other.groups.map(\.aggregate.sum), [1, 2, 4], "raw sums")
            try await expectThrows(.invalidArgument, field: "source") {
                _ = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.dimension("request_id")], source: .rollup))
            }
            // Another meter's kept dimensions do not decide a read filtered to this one (tester R2:
            // a rollup read of a meter keeping everything was refused because of `calls`).
            _ = try await store.ingest([F.event("4", meter: "chat", quantity: 8, dims: ["token_type": "input", "request_id": "r4"])])
            for source in [SourcePreference.rollup, .auto] {
                let chat = try await store.usage(
                    UsageQuery(
                        scope: .accounts(["acct_1"]), range: F.may, groupBy: [.dimension("request_id")],
                        filters: [UsageFilter(field: .meterID, op: .eq, values: ["chat"])], source: source))
                try expectEqual(chat.source, "rollup", "a meter keeping every dimension is read from its rollups (\(source))")
                try expectEqual(chat.groups.map(\.aggregate.sum), [8], "its sums (\(source))")
            }
            let verify = try await store.verify(VerifyRequest(account: "acct_1", range: F.may))
            try expect(verify.ok, "verify after a rollup rebuild: \(verify)")
            // The segment that was open across the rebuild seals with statistics under the new keys.
            try await store.sealOpenSegments()
            let sealed = try await store.verify(VerifyRequest(account: "acct_1", range: F.may))
            try expect(sealed.ok && sealed.segmentsCorrupt == 0, "verify after sealing across a rollup rebuild: \(sealed)")
            // `["*"]` keeps every dimension again (it was stored as a dimension named `*`); beside
            // names it is refused, and nothing changes.
            try await expectThrows(.invalidArgument, field: "rollup_dimensions") {
                _ = try await store.setMeter("calls", unit: nil, rollupDimensions: ["*", "request_id"])
            }
            try expectEqual(try await store.meters(scope: .all).first { $0.meterID == "calls" }?.rollupDimensions, ["token_type"], "unchanged")
            let every = try await store.setMeter("calls", unit: nil, rollupDimensions: ["*"])
            try expectEqual(every.rollupDimensions, nil, "every dimension kept")
            let again = try await store.usage(
                UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.dimension("request_id")], source: .rollup))
            try expectEqual(again.groups.map(\.aggregate.sum), [1, 2, 4, 8], "read from rollups again")
            try expect(try await store.verify(VerifyRequest(account: "acct_1", range: F.may)).ok, "verify after keeping every dimension again")
            let meters = try await store.meters(scope: .accounts(["acct_1"]))
            try expectEqual(meters.map(\.meterID), ["calls", "chat"], "meters of the account")
            let none = try await store.meters(scope: .accounts(["nobody"]))
            try expectEqual(none.count, 0, "an account sees only its meters")
        },
        ConformanceCheck("reads stop at the request's deadline and answer again without one") { store in
            _ = try await store.ingest([F.event("1", quantity: 5), F.event("2", quantity: 7)])
            let past = WorkDeadline(seconds: 1, hint: " (deadline)", now: Date().addingTimeInterval(-5))
            let q = UsageQuery(scope: .accounts(["acct_1"]), range: F.may, groupBy: [.modelID])
            try await expectThrows(.timeout) { _ = try await past.run { try await store.usage(q) } }
            try await expectThrows(.timeout) { _ = try await past.run { try await store.verify(VerifyRequest(account: "acct_1", range: F.may)) } }
            try await expectThrows(.timeout) { _ = try await past.run { try await store.explain(account: "acct_1", range: F.may) } }
            let within = try await WorkDeadline(seconds: 60).run { try await store.usage(q) }
            try expectEqual(within.groups.map(\.aggregate.sum), [12], "a read within its deadline")
            try expectEqual(try await store.usage(q).groups.map(\.aggregate.sum), [12], "a read without one")
        },
        ConformanceCheck("once a meter has a unit, another unit is rejected") { store in
            let r = try await store.ingest([
                F.event("1", meter: "m", quantity: 1, unit: nil),
                F.event("2", meter: "m", quantity: 1, unit: "tokens"),
                F.event("3", meter: "m", quantity: 1, unit: "requests"),
                F.event("4", meter: "m", quantity: 1, unit: nil),
            ])
            try expectEqual([r.accepted, r.rejected], [3, 1], "counts")
            try expectEqual(r.errors.first?.code, "unit_mismatch", "code")
            // Meters are shared by every account: the refusal does not say what another account's
            // events made the meter count (tester R).
            try expect(r.errors.first.map { !$0.message.contains("tokens") && $0.message.contains("requests") } == true, "message names what was sent only")
            let meters = try await store.meters(scope: .all)
            try expectEqual(meters.first?.unit, "tokens", "unit learned")
            // Nor can the meter be told another unit once events carry this one (on ClickHouse it
            // could: tokens and usd were then summed together).
            try await expectThrows(.conflict, field: "unit") { _ = try await store.setMeter("m", unit: "usd", rollupDimensions: nil) }
            try expectEqual(try await store.meters(scope: .all).first?.unit, "tokens", "unit kept")
        },
        ConformanceCheck("verify is ok on a consistent store, per day too") { store in
            _ = try await store.ingest([
                F.event("1", quantity: 10, at: "2026-05-01T05:00:00Z"),
                F.event("2", quantity: 20, at: "2026-05-03T05:00:00Z"),
                F.event("c", kind: .correction, ref: "r", quantity: -5, at: "2026-05-03T06:00:00Z"),
            ])
            try await store.sealOpenSegments()
            _ = try await store.ingest([F.event("3", quantity: 1, at: "2026-05-03T07:00:00Z")])
            let range = try TimeRange(from: F.ts("2026-05-01T00:00:00Z"), to: F.ts("2026-05-04T00:00:00Z"))
            for mode in [VerifyMode.deep, .incremental, .incremental] {
                let v = try await store.verify(VerifyRequest(account: "acct_1", range: range, mode: mode, byDay: true))
                try expect(v.ok, "ok in \(mode)")
                try expectEqual([v.rawSum, v.rollupSum, v.drift], [26, 26, 0], "sums")
                try expectEqual(v.segmentsChecked, 2, "one sealed and one open segment")
                try expectEqual(v.days?.map(\.day), ["2026-05-01", "2026-05-02", "2026-05-03"], "every day")
                try expectEqual(v.days?.map(\.rawSum), [10, 0, 16], "per day")
            }
            let explain = try await store.explain(account: "acct_1", range: range)
            try expectEqual(explain.segments.count, 2, "segments")
            try expect(explain.segments[0].sealedAt != nil && explain.segments[1].sealedAt == nil, "first sealed, second open")
            try expectEqual(explain.chainHead, explain.segments[0].sha256, "chain head")
        },
        ConformanceCheck("verify of many accounts answers each as verify of one, in the order asked") { store in
            _ = try await store.ingest([
                F.event("1", quantity: 10, at: "2026-05-01T05:00:00Z"), F.event("2", account: "acct_2", quantity: 20, at: "2026-05-03T05:00:00Z"),
                F.event("c", account: "acct_2", kind: .correction, ref: "r", quantity: -5, at: "2026-05-03T06:00:00Z"),
            ])
            try await store.sealOpenSegments()
            _ = try await store.ingest([F.event("3", account: "acct_2", quantity: 1, at: "2026-05-31T23:59:59Z")])
            let accounts = ["acct_2", "acct_1", "acct_none", "acct_1"]
            for mode in [VerifyMode.deep, .incremental] {
                let many = try await store.verify(accounts: accounts, range: F.may, mode: mode)
                var one: [VerifyReport] = []
                for a in accounts { one.append(try await store.verify(VerifyRequest(account: a, range: F.may, mode: mode))) }
                try expectEqual(many, one, "\(mode)")
                try expectEqual(many.map(\.rawSum), [16, 10, 0, 10], "sums in the order asked (\(mode))")
            }
            try expectEqual(try await store.verify(accounts: [], range: F.may, mode: .deep), [], "no accounts")
        },
        ConformanceCheck("verify of an hour whose true total passes 64 bits reports its sums at the largest, clean") { store in
            // Two cells of one hour (other dimensions), each at the largest quantity, in two
            // segments (one would pass 64 bits): no range narrower than the hour exists, so a
            // refusal ("read a shorter range") could never be followed.
            _ = try await store.ingest([F.event("a", quantity: .max, at: "2026-05-10T10:00:00Z", dims: ["f": "a"])])
            try await store.sealOpenSegments()
            let second = try await store.ingest([F.event("b", quantity: .max, at: "2026-05-10T10:30:00Z", dims: ["f": "b"])])
            try expectEqual(second.accepted, 1, "stored in a segment of its own")
            let hour = try TimeRange(from: "2026-05-10T10:00:00Z", to: "2026-05-10T11:00:00Z")
            for mode in [VerifyMode.deep, .incremental] {
                for byDay in [false, true] {
                    let r = try await store.verify(VerifyRequest(account: "acct_1", range: hour, mode: mode, byDay: byDay))
                    try expectEqual([r.rollupSum, r.rawSum, r.drift], [.max, .max, 0], "\(mode) by day \(byDay)")
                    try expectEqual(r.ok, true, "clean (\(mode), by day \(byDay))")
                }
            }
        },
        ConformanceCheck("a deep verify records when it re-hashed each segment: the oldest verification moves on") { store in
            _ = try await store.ingest([F.event("a", quantity: 1)])
            try await store.sealOpenSegments()
            let req = VerifyRequest(account: "acct_1", range: F.may, mode: .deep)
            _ = try await store.verify(req)
            let first = try await store.explain(account: "acct_1", range: F.may).integrity?.oldestVerification
            try await Task.sleep(for: .milliseconds(20))
            _ = try await store.verify(req)
            let second = try await store.explain(account: "acct_1", range: F.may).integrity?.oldestVerification
            guard let first, let second else { return try expect(false, "no oldest verification: \(String(describing: first)), \(String(describing: second))") }
            try expect(second > first, "\(first.rfc3339) then \(second.rfc3339)")
        },
        ConformanceCheck("the scrub re-hashes the sealed segments never checked first, a few at a time, and counts where it stands") { store in
            for (i, account) in ["acct_1", "acct_2", "acct_1"].enumerated() {
                _ = try await store.ingest([F.event("e\(i)", account: account, quantity: Int64(i + 1))])
                try await store.sealOpenSegments()
            }
            let before = try await store.scrub(maxSegments: 0)
            try expectEqual([before.sealed, before.verified, before.pending, before.corrupt], [3, 0, 3, 0], "nothing checked yet")
            try expect(before.oldestVerification == nil, "no verification yet")
            let two = try await store.scrub(maxSegments: 2)
            try expectEqual([two.sealed, two.verified, two.pending], [3, 2, 1], "two checked")
            let all = try await store.scrub(maxSegments: 2)
            try expectEqual([all.sealed, all.verified, all.pending], [3, 3, 0], "the one left first, then the oldest check")
            try expect(all.oldestVerification != nil, "an oldest verification")
            let one = try await store.explain(account: "acct_2", range: F.may).integrity
            try expectEqual([one?.sealed, one?.verified], [1, 1], "one account's")
        },
        ConformanceCheck("explain lists the latest corrections, at most listLimit, and counts the earlier ones") { store in
            let limit = ExplainReport.listLimit
            let corrections = (0..<(limit + 5)).map { i in
                F.event(
                    "c\(i)", kind: .correction, ref: "r", quantity: 1,
                    at: Timestamp(microseconds: F.ts("2026-05-10T00:00:00Z").microseconds + Int64(i) * 1_000_000).rfc3339)
            }
            _ = try await store.ingest(corrections + [F.event("u", quantity: 7)])
            let explain = try await store.explain(account: "acct_1", range: F.may)
            try expectEqual(explain.corrections.count, limit, "listed")
            try expectEqual(explain.correctionsOmitted, 5, "omitted")
            try expectEqual(
                [explain.corrections.first?.event.eventID, explain.corrections.last?.event.eventID], ["c5", "c\(limit + 4)"], "the latest, oldest first")
            try expectEqual(explain.totals.corrections, Int64(limit + 5), "the totals count every one")
        },
        ConformanceCheck("stored events are read back by id, however many share a second, and only the account's") { store in
            let second = "2026-05-31T23:59:59Z"
            let many = (0..<(ExplainReport.listLimit + 5)).map { i in
                F.event("c\(i)", kind: .correction, ref: "r", quantity: i % 2 == 0 ? 1 : -1, at: second, dims: ["reason": "manual"])
            }
            _ = try await store.ingest(many + [F.event("c0", account: "acct_2", quantity: 9, at: second)])
            let found = try await store.storedEvents(account: "acct_1", ids: ["c0", "c1004", "missing", "c1004"])
            try expectEqual(found.map(\.eventID).sorted(), ["c0", "c1004"], "the stored ones, once each")
            guard let c0 = found.first(where: { $0.eventID == "c0" }) else { throw ConformanceFailure(message: "c0", file: #fileID, line: #line) }
            try expectEqual(c0.accountID, "acct_1", "the account's own event, not acct_2's of the same id")
            try expectEqual([c0.quantity, c0.timestamp.microseconds], [1, F.ts(second).microseconds], "as stored")
            try expectEqual(c0.kind, .correction, "kind")
            try expectEqual(c0.dimension("reason"), "manual", "dimensions")
            try expectEqual(try await store.storedEvents(account: "acct_3", ids: ["c0"]).count, 0, "another account holds none")
            try await expectThrows(.invalidArgument, field: "event_id") { _ = try await store.storedEvents(account: "acct_1", ids: ["bad id"]) }
            try await expectThrows(.invalidArgument, field: "event_id") {
                _ = try await store.storedEvents(account: "acct_1", ids: (0...StoredEventLookup.maxIDs).map { "c\($0)" })
            }
        },
        ConformanceCheck("the JSON query: filters with every op, every metric") { store in
            _ = try await store.ingest([
                F.event("1", model: "a", quantity: 10, dims: ["token_type": "input"]),
                F.event("2", model: "a", quantity: 30, dims: ["token_type": "output"]),
                F.event("3", model: "b", quantity: 5, dims: ["token_type": "input"]),
                F.event("4", model: "b", quantity: 6, dims: ["token_type": "cache_read"]),
            ])
            let json = try JSONParser.parse(
                """
                {"account_id": "acct_1", "from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z",
                 "filters": [{"field": "token_type", "op": "in", "value": ["input", "output"]},
                             {"field": "model_id", "op": "neq", "value": "c"}],
                 "group_by": ["model_id"], "metrics": ["sum", "count", "min", "max", "avg"]}
                """)
            let r = try await store.usage(try UsageQuery.fromJSON(json, scope: .accounts(["acct_1"])))
            try expectEqual(
                JSONWriter.write(r.jsonValue),
                #"{"source":"rollup","groups":[{"model_id":"a","sum":40,"count":2,"min":10,"max":30,"avg":20},{"model_id":"b","sum":5,"count":1,"min":5,"max":5,"avg":5}]}"#,
                "json")
            let notIn = try JSONParser.parse(
                """
                {"from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z",
                 "filters": [{"field": "token_type", "op": "not_in", "value": ["input", "output"]}], "metrics": ["sum"]}
                """)
            let r2 = try await store.usage(try UsageQuery.fromJSON(notIn, scope: .all))
            try expectEqual(JSONWriter.write(r2.jsonValue), #"{"source":"rollup","groups":[{"sum":6}]}"#, "not_in")
        },
        ConformanceCheck("read-only SQL over usage_events: a scoped query sees only its accounts, or is refused; never more") { store in
            _ = try await store.ingest([F.event("1", account: "mine", quantity: 7), F.event("2", account: "theirs", quantity: 1000)])
            do {
                let r = try await store.sql(
                    "SELECT account_id, SUM(quantity) FROM usage_events GROUP BY account_id", scope: .accounts(["mine"]),
                    timeLimitSeconds: 10, rowLimit: 10_000)
                try expectEqual(r.rows, [[.string("mine"), .int(7)]], "rows")
            } catch let e as UsageBoxError where e.code == .permissionDenied {
                // A backend that cannot confine a query to accounts says so instead of answering.
            }
            let all = try await store.sql(
                "SELECT account_id, SUM(quantity) FROM usage_events GROUP BY account_id ORDER BY account_id", scope: .all,
                timeLimitSeconds: 10, rowLimit: 10_000)
            try expectEqual(all.rows, [[.string("mine"), .int(7)], [.string("theirs"), .int(1000)]], "an admin sees every account")
            try expectEqual(all.columns.count, 2, "columns")
            let limited = try await store.sql("SELECT event_id, timestamp FROM usage_events ORDER BY event_id", scope: .all, timeLimitSeconds: 10, rowLimit: 1)
            try expect(limited.truncated && limited.rows.count == 1, "row limit truncates")
            try expectEqual(limited.rows.first?.last, .string("2026-05-10T12:00:00Z"), "timestamps are RFC 3339")
            // Only usage_events, and only a SELECT: on ClickHouse an admin key read other
            // databases, the key table and system tables, and ran KILL QUERY.
            for attack in [
                "DELETE FROM usage_events", "SELECT 1; SELECT 2", "DROP TABLE usage_events", "SELECT * FROM system.one", "SHOW TABLES",
                "KILL QUERY WHERE query_id = 'x'", "SELECT key_id FROM api_keys", "SELECT 1 FROM usage_events, api_keys",
                "SELECT 1 FROM usage_events WHERE 1 IN (SELECT 1 FROM system.one)",
            ] {
                try await expectThrows(.invalidArgument, field: "sql") {
                    _ = try await store.sql(attack, scope: .all, timeLimitSeconds: 10, rowLimit: 10)
                }
            }
            let after = try await store.usage(UsageQuery(scope: .all, range: F.may))
            try expectEqual(after.groups.first?.aggregate.sum, 1007, "nothing was changed")
        },
    ]
}
