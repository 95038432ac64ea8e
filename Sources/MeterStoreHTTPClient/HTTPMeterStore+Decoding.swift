import ExactJSON
import Metering

/// Reading the API's JSON back into the store's value types.
extension HTTPMeterStore {
    static func int(_ v: JSONValue?, _ name: String) throws -> Int64 {
        guard let n = v?.exactInt64 else { throw UsageBoxError(.internal, "the server's answer lacks the integer '\(name)'") }
        return n
    }

    static func string(_ v: JSONValue?, _ name: String) throws -> String {
        guard let s = v?.stringValue else { throw UsageBoxError(.internal, "the server's answer lacks the string '\(name)'") }
        return s
    }

    static func timestamp(_ v: JSONValue?) -> Timestamp? { v?.stringValue.flatMap(Timestamp.init(rfc3339:)) }

    static func decodeIngest(_ v: JSONValue) throws -> IngestResponse {
        var r = IngestResponse()
        r.accepted = Int(try int(v["accepted"], "accepted"))
        r.duplicates = Int(try int(v["duplicates"], "duplicates"))
        r.conflicts = Int(try int(v["conflicts"], "conflicts"))
        r.rejected = Int(try int(v["rejected"], "rejected"))
        r.errors = try (v["errors"]?.arrayValue ?? []).map { e in
            IngestResponse.Problem(index: Int(try int(e["index"], "index")), eventID: e["event_id"]?.stringValue,
                                   status: e["status"]?.stringValue == "conflict" ? .conflict : .rejected,
                                   code: e["code"]?.stringValue ?? "", message: e["message"]?.stringValue ?? "", field: e["field"]?.stringValue)
        }
        return r
    }

    static func decodeUsage(_ v: JSONValue, groupBy: [UsageField], metrics: [UsageMetric]) throws -> UsageResult {
        let groups = try (v["groups"]?.arrayValue ?? []).map { g -> UsageGroup in
            var agg = UsageAggregate()
            agg.sum = g["sum"]?.exactInt64 ?? 0
            agg.count = g["count"]?.exactInt64 ?? 0
            if let m = g["min"]?.exactInt64 { agg.min = m }
            if let m = g["max"]?.exactInt64 { agg.max = m }
            guard case .object = g else { throw UsageBoxError(.internal, "a group is not an object") }
            return UsageGroup(keys: groupBy.map { g[$0.name]?.stringValue }, aggregate: agg)
        }
        return UsageResult(source: v["source"]?.stringValue ?? "", groupBy: groupBy, metrics: metrics, groups: groups)
    }

    static func decodeVerify(_ v: JSONValue) throws -> VerifyReport {
        var report = VerifyReport(
            ok: v["ok"] == .bool(true), mode: VerifyMode(rawValue: v["mode"]?.stringValue ?? "") ?? .deep,
            rollupSum: try int(v["rollup_sum"], "rollup_sum"), rawSum: try int(v["raw_sum"], "raw_sum"), drift: try int(v["drift"], "drift"),
            segmentsChecked: Int(try int(v["segments_checked"], "segments_checked")),
            segmentsCorrupt: Int(try int(v["segments_corrupt"], "segments_corrupt")),
            mismatches: try (v["mismatches"]?.arrayValue ?? []).map { m in
                VerifyReport.Mismatch(
                    meterID: m["meter_id"]?.stringValue ?? "", modelID: m["model_id"]?.stringValue,
                    kind: EventKind(rawValue: m["kind"]?.stringValue ?? "") ?? .usage,
                    dimensions: m["dimensions"].map { JSONWriter.write($0) } ?? "{}", hour: timestamp(m["hour"]) ?? Timestamp(microseconds: 0),
                    rollupSum: try int(m["rollup_sum"], "rollup_sum"), rawSum: try int(m["raw_sum"], "raw_sum"),
                    rollupCount: try int(m["rollup_count"], "rollup_count"), rawCount: try int(m["raw_count"], "raw_count"))
            },
            days: try v["days"]?.arrayValue.map { days in
                try days.map { d in
                    VerifyReport.Day(day: try string(d["day"], "day"), rollupSum: try int(d["rollup_sum"], "rollup_sum"),
                                     rawSum: try int(d["raw_sum"], "raw_sum"), drift: try int(d["drift"], "drift"))
                }
            })
        report.corruptSegments = (v["corrupt_segments"]?.arrayValue ?? []).map {
            .init(segmentID: $0["segment_id"]?.stringValue ?? "", reason: $0["reason"]?.stringValue ?? "")
        }
        return report
    }

    static func decodeExplain(_ v: JSONValue, range: TimeRange) throws -> ExplainReport {
        func breakdown(_ b: JSONValue) throws -> ExplainReport.Breakdown {
            var out = ExplainReport.Breakdown(modelID: b["model_id"]?.stringValue)
            out.usage = try int(b["usage"], "usage")
            out.corrections = try int(b["corrections"], "corrections")
            out.count = try int(b["count"], "count")
            return out
        }
        var report = ExplainReport(
            accountID: try string(v["account_id"], "account_id"), range: range, totals: try breakdown(v["totals"] ?? .null),
            breakdown: try (v["breakdown"]?.arrayValue ?? []).map(breakdown),
            segments: try (v["segments"]?.arrayValue ?? []).map { s in
                ExplainReport.SegmentInfo(segmentID: try string(s["segment_id"], "segment_id"), firstTimestamp: timestamp(s["first_timestamp"]),
                                          lastTimestamp: timestamp(s["last_timestamp"]), events: try int(s["events"], "events"),
                                          sum: try int(s["sum"], "sum"), sha256: s["sha256"]?.stringValue, sealedAt: timestamp(s["sealed_at"]))
            },
            chainHead: v["chain_head"]?.stringValue,
            corrections: try (v["corrections"]?.arrayValue ?? []).map { c in
                var dims: [String: String] = [:]
                for (k, d) in c["dimensions"]?.objectValue ?? [] { dims[k] = d.stringValue }
                let event = UsageEvent(
                    eventID: try string(c["event_id"], "event_id"), accountID: try string(v["account_id"], "account_id"),
                    meterID: c["meter_id"]?.stringValue ?? "", modelID: c["model_id"]?.stringValue, kind: .correction,
                    correctionRef: c["correction_ref"]?.stringValue, quantity: try int(c["quantity"], "quantity"), unit: nil,
                    timestamp: timestamp(c["timestamp"]) ?? range.from, dimensions: dims)
                return ExplainReport.CorrectionInfo(event: event, postClose: c["post_close"] == .bool(true))
            })
        if let i = v["integrity"], i != .null {
            var p = ScrubProgress()
            p.sealed = try int(i["sealed_segments"], "sealed_segments")
            p.verified = try int(i["verified"], "verified")
            p.corrupt = try int(i["corrupt"], "corrupt")
            p.pending = try int(i["pending"], "pending")
            p.oldestVerification = timestamp(i["oldest_verification"])
            report.integrity = p
        }
        return report
    }

    static func decodePeriod(_ v: JSONValue) throws -> PeriodRecord {
        PeriodRecord(accountID: try string(v["account_id"], "account_id"), period: try string(v["period"], "period"),
                     closedAt: timestamp(v["closed_at"]) ?? Timestamp(microseconds: 0))
    }

    static func decodeMeter(_ v: JSONValue) -> MeterInfo {
        MeterInfo(meterID: v["meter_id"]?.stringValue ?? "", unit: v["unit"]?.stringValue,
                  rollupDimensions: v["rollup_dimensions"]?.arrayValue?.compactMap(\.stringValue))
    }
}
