import ExactJSON
public import Metering
import SegmentChain

extension ClickHouseMeterStore {
    /// A segment as its latest row and its latest check describe it.
    struct SegmentRecord {
        var id: UInt64
        var sealedAt: Int64?
        var sha: String?
        var prev: String?
        var count: Int64
        var sum: Int64
        var firstTs: Int64?
        var lastTs: Int64?
        var running: String
        /// The rule it was sealed under (`SegmentHash.currentRule`, or 1 before post-close marks: a
        /// row from before migration 4 reads the column's default, one an older writer still
        /// running inserts reads 0 on 18.16, which fills omitted JSONEachRow fields with zeros).
        var rule: Int
        var checkedAt: Int64?
        var corruptReason: String?
    }

    func segmentRecords(_ account: String? = nil) async throws -> [String: [SegmentRecord]] {
        let filter = account.map { "WHERE account_id = \(ClickHouseClient.quote($0))" } ?? ""
        let segs = try await rows(
            """
            SELECT account_id, segment_id, argMax(sealed_at, version), argMax(sha256, version), argMax(prev_sha256, version),
                   argMax(event_count, version), argMax(sum, version), argMax(first_ts, version), argMax(last_ts, version), argMax(running_hash, version),
                   argMax(hash_rule, version)
            FROM \(t("segments")) \(filter) GROUP BY account_id, segment_id ORDER BY account_id, segment_id
            """)
        // The newest check's reason, NULL (clean) included: `argMax(corrupt_reason, …)` skips
        // NULLs, so a segment once found corrupt stayed corrupt after re-hashing clean.
        let checks = try await rows(
            """
            SELECT account_id, segment_id, max(checked_at), tupleElement(argMax(tuple(corrupt_reason), checked_at), 1)
            FROM \(t("segment_checks")) \(filter) GROUP BY account_id, segment_id
            """)
        var latest: [String: (Int64, String?)] = [:]
        for c in checks {
            latest["\(c[0].chString ?? "")\u{0}\(c[1].chInt ?? 0)"] = (c[2].chInt ?? 0, c[3].chString)
        }
        var out: [String: [SegmentRecord]] = [:]
        for r in segs {
            let account = r[0].chString ?? ""
            let id = UInt64(r[1].chInt ?? 0)
            let check = latest["\(account)\u{0}\(id)"]
            out[account, default: []].append(
                SegmentRecord(
                    id: id, sealedAt: r[2].chInt, sha: r[3].chString, prev: r[4].chString, count: r[5].chInt ?? 0, sum: r[6].chInt ?? 0,
                    firstTs: r[7].chInt, lastTs: r[8].chInt, running: r[9].chString ?? "", rule: max(1, Int(r[10].chInt ?? 1)), checkedAt: check?.0,
                    corruptReason: check?.1))
        }
        return out
    }

    /// What an independent re-hash of a segment finds wrong with it, if anything.
    func rehash(_ account: String, _ seg: SegmentRecord, previous: String?) async throws -> String? {
        let d = try await digest(account, segment: seg.id, previous: previous, rule: seg.rule)
        if d.unreadable > 0 { return "\(d.unreadable) stored event(s) cannot be read back as events" }
        if seg.sealedAt != nil {
            if seg.rule > SegmentHash.currentRule { return "it names hash rule \(seg.rule), which no usagebox seals under" }
            if seg.prev != previous { return "its chain link does not name the previous sealed segment" }
            if d.hash.finalize() != seg.sha { return "its events no longer hash to the SHA-256 recorded when it sealed" }
            if Int64(d.count) != seg.count || d.sum != seg.sum { return "its count or sum differs from the ones recorded when it sealed" }
            return nil
        }
        if Int64(d.count) != seg.count { return "the running hash covers \(seg.count) events, the segment holds \(d.count)" }
        if d.multiset.hex != seg.running { return "its events do not match the running hash kept while it is open" }
        return nil
    }

    func recordCheck(_ account: String, _ id: UInt64, _ reason: String?) async throws {
        try await insert(
            "segment_checks",
            [
                .object([
                    ("account_id", .string(account)), ("segment_id", .number(String(id))), ("checked_at", .int(clock().microseconds)),
                    ("corrupt_reason", reason.map(JSONValue.string) ?? .null),
                ])
            ], anyReplica: true)
    }

    public func verify(_ req: VerifyRequest) async throws -> VerifyReport {
        let h = Timestamp.microsPerHour
        let fromHour = floorDiv(req.range.from.microseconds, h)
        let toHour = floorDiv(req.range.to.microseconds + h - 1, h)
        let all = try await segmentRecords(req.account)[req.account] ?? []
        var checked = 0
        var corrupt: [VerifyReport.CorruptSegment] = []
        var previous: String?
        for seg in all {
            defer { if seg.sealedAt != nil { previous = seg.sha } }
            guard let first = seg.firstTs, let last = seg.lastTs, first < toHour * h, last >= fromHour * h else { continue }
            checked += 1
            let trusted = req.mode == .incremental && seg.sealedAt != nil && seg.checkedAt != nil && seg.corruptReason == nil
            var reason: String?
            if trusted {
                reason = nil
            } else if req.mode == .incremental, seg.sealedAt != nil, let known = seg.corruptReason {
                reason = known
            } else {
                reason = try await rehash(req.account, seg, previous: previous)
                if seg.sealedAt != nil { try await recordCheck(req.account, seg.id, reason) }
            }
            if let reason { corrupt.append(.init(segmentID: ExplainReport.SegmentInfo.name(seg.id), reason: reason)) }
        }
        // Rollups against raw events, per rollup key and hour, and per key and day. A cell's
        // dimensions come back only where its two sides differ (a mismatch names them): every
        // cell's, of an account with thousands of keys of long dimensions, was a response of
        // hundreds of megabytes held in this process.
        var drift: Int64 = 0
        var totals = VerifyTotals()
        var mismatches: [VerifyReport.Mismatch] = []
        var extremaMismatch = false
        var days: [Int64: (rollup: Int64, raw: Int64, drift: Int64)] = [:]
        for level in ClickHouseSchema.rollups {
            let from = floorDiv(fromHour, level.hours)
            let to = floorDiv(toHour + level.hours - 1, level.hours)
            let a = ClickHouseClient.quote(req.account)
            let cells = try await rows(
                """
                SELECT meter_id, model_id, kind, unit,
                       if(r_hi = e_hi AND r_lo = e_lo AND r_count = e_count AND r_min = e_min AND r_max = e_max, '', dimensions) AS shown,
                       bucket, r_hi, r_lo, r_count, e_hi, e_lo, e_count, r_min, e_min, r_max, e_max FROM
                (SELECT meter_id, model_id, kind, unit, dimensions, \(level.bucket) AS bucket,
                        sumMerge(sum_hi) AS r_hi, sumMerge(sum_lo) AS r_lo, countMerge(count) AS r_count,
                        minMerge(min) AS r_min, maxMerge(max) AS r_max
                 FROM \(t(level.table)) WHERE account_id = \(a) AND \(level.bucket) >= \(from) AND \(level.bucket) < \(to)
                 GROUP BY meter_id, model_id, kind, unit, dimensions, bucket)
                ALL FULL OUTER JOIN
                (SELECT meter_id, ifNull(model_id, '') AS model_id, kind, ifNull(unit, '') AS unit, dimensions, intDiv(ts, \(level.micros)) AS bucket,
                        sum(intDiv(quantity, \(ClickHouseSchema.half))) AS e_hi, sum(quantity % \(ClickHouseSchema.half)) AS e_lo, count() AS e_count,
                        min(quantity) AS e_min, max(quantity) AS e_max
                 FROM \(t("events")) WHERE account_id = \(a) AND ts >= \(from * level.micros) AND ts < \(to * level.micros)
                 GROUP BY meter_id, model_id, kind, unit, dimensions, bucket)
                USING (meter_id, model_id, kind, unit, dimensions, bucket)
                ORDER BY meter_id, model_id, kind, unit, dimensions, bucket
                """)
            for c in cells {
                let rollup = try Self.combine(hi: c[6].chInt ?? 0, lo: c[7].chInt ?? 0, "a rollup cell")
                let raw = try Self.combine(hi: c[9].chInt ?? 0, lo: c[10].chInt ?? 0, "a raw cell")
                let (rc, ec) = (c[8].chInt ?? 0, c[11].chInt ?? 0)
                let bucket = c[5].chInt ?? 0
                let (diff, o) = raw.subtractingReportingOverflow(rollup)
                let cellDrift = o ? Int64.max : diff.magnitude > UInt64(Int64.max) ? Int64.max : Int64(diff.magnitude)
                drift = VerifyTotals.saturating(drift, cellDrift)
                // A day's sums are its hours'; its drift is its hourly and its daily cells', so
                // the days add up to `drift`.
                if req.byDay {
                    let day = level.hours == 1 ? floorDiv(bucket, 24) : bucket
                    var d = days[day] ?? (0, 0, 0)
                    if level.hours == 1 {
                        d.rollup = VerifyTotals.saturating(d.rollup, rollup)
                        d.raw = VerifyTotals.saturating(d.raw, raw)
                    }
                    d.drift = VerifyTotals.saturating(d.drift, cellDrift)
                    days[day] = d
                }
                if level.hours == 1 {
                    totals.add(rollup: rollup, raw: raw)
                }
                // Reads of min and max are answered from the rollups too: their extrema must be the events'.
                let differing =
                    rc > 0 && ec > 0
                    ? VerifyReport.Mismatch.Extrema.differing(
                        rollup: (c[12].chInt ?? 0, c[14].chInt ?? 0), raw: (c[13].chInt ?? 0, c[15].chInt ?? 0)) : nil
                if differing != nil { extremaMismatch = true }
                if rollup != raw || rc != ec || differing != nil, mismatches.count < 100 {
                    let model = c[1].chString ?? ""
                    var m = VerifyReport.Mismatch(
                        meterID: c[0].chString ?? "", modelID: model.isEmpty ? nil : model, kind: EventKind(rawValue: c[2].chString ?? "") ?? .usage,
                        dimensions: c[4].chString ?? "{}", hour: Timestamp(microseconds: bucket * level.micros), rollupSum: rollup, rawSum: raw,
                        rollupCount: rc, rawCount: ec, rollup: level.hours == 1 ? .hour : .day)
                    m.extrema = differing
                    mismatches.append(m)
                }
            }
        }
        if req.byDay {
            // Every day of the period is listed, days without events too.
            var day = floorDiv(fromHour, 24)
            while day * 24 < toHour {
                if days[day] == nil { days[day] = (0, 0, 0) }
                day += 1
            }
        }
        let (rollupSum, rawSum) = try totals.reported()
        var report = VerifyReport(
            ok: drift == 0 && corrupt.isEmpty && mismatches.isEmpty && !extremaMismatch, mode: req.mode, rollupSum: rollupSum, rawSum: rawSum, drift: drift,
            segmentsChecked: checked, segmentsCorrupt: corrupt.count, mismatches: mismatches,
            days: req.byDay
                ? days.sorted { $0.key < $1.key }.map {
                    .init(day: Timestamp(microseconds: $0.key * h * 24).dayString, rollupSum: $0.value.rollup, rawSum: $0.value.raw, drift: $0.value.drift)
                } : nil)
        report.corruptSegments = corrupt
        return report
    }

    /// Re-hashes up to `maxSegments` sealed segments, least recently checked first.
    public func scrub(maxSegments: Int) async throws -> ScrubProgress {
        let records = try await segmentRecords()
        var candidates: [(String, SegmentRecord, String?)] = []
        for (account, segs) in records {
            var previous: String?
            for seg in segs {
                if seg.sealedAt != nil {
                    candidates.append((account, seg, previous))
                    previous = seg.sha
                }
            }
        }
        candidates.sort { ($0.1.checkedAt ?? .min, $0.0, $0.1.id) < ($1.1.checkedAt ?? .min, $1.0, $1.1.id) }
        for (account, seg, previous) in candidates.prefix(maxSegments) {
            try await recordCheck(account, seg.id, try await rehash(account, seg, previous: previous))
        }
        return try await integrity(account: nil)
    }

    /// Where the re-hashing of sealed segments stands, for one account or the whole store.
    func integrity(account: String?) async throws -> ScrubProgress {
        var p = ScrubProgress()
        let records = try await segmentRecords(account)
        for seg in records.values.joined() where seg.sealedAt != nil {
            p.sealed += 1
            if seg.corruptReason != nil {
                p.corrupt += 1
            } else if let at = seg.checkedAt {
                p.verified += 1
                p.oldestVerification = min(p.oldestVerification ?? Timestamp(microseconds: at), Timestamp(microseconds: at))
            } else {
                p.pending += 1
            }
        }
        return p
    }
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
