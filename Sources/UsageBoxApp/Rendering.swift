import ExactJSON
public import Metering

/// Human-readable forms of the store's answers; `--json` prints `jsonValue` instead.
public enum Rendering {
    public static func usage(_ r: UsageResult) -> String {
        let headers = r.groupBy.map(\.name) + r.metrics.map(\.rawValue)
        let rows: [[String]] = r.groups.map { g in
            g.keys.map { $0 ?? "(none)" }
                + r.metrics.map { m in
                    switch m {
                    case .sum: return TextTable.grouped(g.aggregate.sum)
                    case .count: return TextTable.grouped(g.aggregate.count)
                    case .min: return g.aggregate.count == 0 ? "" : TextTable.grouped(g.aggregate.min)
                    case .max: return g.aggregate.count == 0 ? "" : TextTable.grouped(g.aggregate.max)
                    case .avg: return g.aggregate.count == 0 ? "" : UsageResult.average(g.aggregate)
                    }
                }
        }
        let right = Set(r.groupBy.count..<headers.count)
        return TextTable(headers: headers, rows: rows, rightAligned: right).render() + "\n(source: \(r.source))"
    }

    public static func verify(_ v: VerifyReport) -> String {
        var lines = [
            "verify (\(v.mode.rawValue)): \(v.ok ? "OK" : "DRIFT FOUND")",
            "  rollup sum  \(TextTable.grouped(v.rollupSum))",
            "  raw sum     \(TextTable.grouped(v.rawSum))",
            "  drift       \(TextTable.grouped(v.drift))",
            "  segments    \(v.segmentsChecked) checked, \(v.segmentsCorrupt) corrupt",
        ]
        for c in v.corruptSegments { lines.append("  corrupt \(c.segmentID): \(c.reason)") }
        if !v.mismatches.isEmpty {
            lines.append("")
            lines.append(
                TextTable(
                    headers: ["rollup", "hour or day", "meter", "model", "kind", "dimensions", "rollup sum", "raw sum", "rollup count", "raw count"],
                    rows: v.mismatches.map {
                        [
                            $0.rollup.rawValue, $0.rollup == .day ? $0.hour.dayString : $0.hour.rfc3339, $0.meterID, $0.modelID ?? "(none)", $0.kind.rawValue,
                            $0.dimensions, TextTable.grouped($0.rollupSum),
                            TextTable.grouped($0.rawSum), TextTable.grouped($0.rollupCount), TextTable.grouped($0.rawCount),
                        ]
                    }, rightAligned: [6, 7, 8, 9]
                ).render())
        }
        for m in v.mismatches {
            guard let x = m.extrema else { continue }
            lines.append(
                "  \(m.rollup.rawValue) \(m.rollup == .day ? m.hour.dayString : m.hour.rfc3339) \(m.meterID) \(m.modelID ?? "(none)") \(m.dimensions): "
                    + "rollup min \(x.rollupMin) max \(x.rollupMax), raw min \(x.rawMin) max \(x.rawMax)")
        }
        if let days = v.days {
            lines.append("")
            lines.append(
                TextTable(
                    headers: ["day", "rollup sum", "raw sum", "drift"],
                    rows: days.map {
                        [$0.day, TextTable.grouped($0.rollupSum), TextTable.grouped($0.rawSum), TextTable.grouped($0.drift)]
                    }, rightAligned: [1, 2, 3]
                ).render())
        }
        return lines.joined(separator: "\n")
    }

    public static func explain(_ e: ExplainReport) -> String {
        var lines = ["\(e.accountID)  \(e.range.from.rfc3339) – \(e.range.to.rfc3339)", ""]
        // A unit column only where the rows are in more than one unit (the kata's are all tokens).
        let units = Set(e.breakdown.map(\.unit)).count > 1
        let rows =
            e.breakdown.map { b in
                [b.modelID ?? "(none)"] + (units ? [b.unit ?? "(none)"] : [])
                    + [TextTable.grouped(b.usage), TextTable.grouped(b.corrections), TextTable.grouped(b.net), TextTable.grouped(b.count)]
            } + [
                ["TOTAL"] + (units ? ["(every unit)"] : [])
                    + [
                        TextTable.grouped(e.totals.usage), TextTable.grouped(e.totals.corrections), TextTable.grouped(e.totals.net),
                        TextTable.grouped(e.totals.count),
                    ]
            ]
        let numbers: Set<Int> = units ? [2, 3, 4, 5] : [1, 2, 3, 4]
        lines.append(
            TextTable(headers: ["model"] + (units ? ["unit"] : []) + ["usage", "corrections", "net", "count"], rows: rows, rightAligned: numbers).render())
        lines.append("")
        lines.append("segments (provenance)\(e.segmentsOmitted > 0 ? ", the latest \(e.segments.count); \(e.segmentsOmitted) earlier not listed" : ""):")
        lines.append(
            TextTable(
                headers: ["segment", "first", "last", "events", "sum", "sha256", "sealed"],
                rows: e.segments.map {
                    [
                        $0.segmentID, $0.firstTimestamp?.rfc3339 ?? "", $0.lastTimestamp?.rfc3339 ?? "", TextTable.grouped($0.events),
                        TextTable.grouped($0.sum), $0.sha256.map { String($0.prefix(16)) + "…" } ?? "(open)", $0.sealedAt?.rfc3339 ?? "open",
                    ]
                }, rightAligned: [3, 4]
            ).render())
        lines.append("chain head: \(e.chainHead ?? "(none sealed yet)")")
        lines.append("")
        if e.corrections.isEmpty {
            lines.append("corrections: none")
        } else {
            lines.append(
                "corrections\(e.correctionsOmitted > 0 ? ", the latest \(e.corrections.count); \(e.correctionsOmitted) earlier not listed (the totals count them)" : ""):"
            )
            lines.append(
                TextTable(
                    headers: ["event_id", "correction_ref", "model", "quantity", "timestamp", "post_close"],
                    rows: e.corrections.map {
                        [
                            $0.event.eventID, $0.event.correctionRef ?? "", $0.event.modelID ?? "(none)", TextTable.grouped($0.event.quantity),
                            $0.event.timestamp.rfc3339, $0.postClose ? "yes" : "no",
                        ]
                    }, rightAligned: [3]
                ).render())
        }
        if e.postClose.events > 0 {
            lines.append(
                "post-close: \(TextTable.grouped(e.postClose.events)) correction(s) stored after their month closed, net \(TextTable.grouped(e.postClose.sum))"
                    + " (in the totals; listed above with post_close yes unless among the earlier ones not listed)")
        }
        return lines.joined(separator: "\n")
    }

    public static func ingest(_ r: IngestResponse) -> String {
        var lines = [
            "accepted \(TextTable.grouped(Int64(r.accepted)))  duplicates \(TextTable.grouped(Int64(r.duplicates)))  "
                + "conflicts \(TextTable.grouped(Int64(r.conflicts)))  rejected \(TextTable.grouped(Int64(r.rejected)))"
        ]
        if r.postClose > 0 { lines.append("\(r.postClose) correction(s) landed in closed periods (post_close)") }
        for e in r.errors.prefix(50) {
            var place = e.file.map { "\($0):" } ?? ""
            if let l = e.line { place += "\(l): " } else { place += "#\(e.index): " }
            lines.append("  \(place)\(e.status.rawValue) \(e.code)\(e.eventID.map { " (\($0))" } ?? ""): \(e.message)")
        }
        // --json lists the ingest's first errors only (FileIngestor.errorLimit): say so when more were seen.
        let problems = max(r.rejected + r.conflicts, r.errors.count)
        if problems > 50 {
            lines.append("  … \(problems - 50) more (" + (problems > r.errors.count ? "--json lists the first \(r.errors.count))" : "use --json for all)"))
        }
        return lines.joined(separator: "\n")
    }

    public static func sql(_ r: SQLResult) -> String {
        let rows = r.rows.map { row in
            row.map { v -> String in
                switch v {
                case .null: return "NULL"
                case let .string(s): return s
                case let .number(n): return n
                default: return JSONWriter.write(v)  // arrays and objects (ClickHouse's Array, Tuple) as JSON
                }
            }
        }
        var right = Set<Int>()
        for (i, v) in (r.rows.first ?? []).enumerated() { if case .number = v { right.insert(i) } }
        var out = TextTable(headers: r.columns, rows: rows, rightAligned: right).render()
        if r.truncated { out += "\n(truncated)" }
        return out
    }

    /// Metered tokens per day × model × token type (the daily view of `explain --by day`), from the
    /// daily rollups; a meter without token types is shown per model.
    public static func dailyUsage(_ store: any MeterStore, account: String, range: TimeRange) async throws -> String {
        var result: UsageResult
        var hasType = true
        do {
            result = try await store.usage(
                UsageQuery(scope: .accounts([account]), range: range, groupBy: [.day, .modelID, .dimension("token_type"), .unit]))
        } catch let e as UsageBoxError where e.field == "token_type" {
            hasType = false
            result = try await store.usage(UsageQuery(scope: .accounts([account]), range: range, groupBy: [.day, .modelID, .unit]))
        }
        let unitAt = hasType ? 3 : 2
        // A unit column only where the events are in more than one (tokens and kTok were added
        // together in one day's line: tester O2), as explain's breakdown shows them.
        let units = Set(result.groups.map { $0.keys[unitAt] }).count > 1
        let rows = result.groups.map { g in
            [g.keys[0] ?? "", g.keys[1] ?? "(none)", hasType ? (g.keys[2] ?? "(none)") : "(all)"] + (units ? [g.keys[unitAt] ?? "(none)"] : [])
                + [TextTable.grouped(g.aggregate.sum), TextTable.grouped(g.aggregate.count)]
        }
        return "by day (UTC, \(result.source)):\n"
            + TextTable(
                headers: ["day", "model", "token type"] + (units ? ["unit"] : []) + ["usage + corrections", "events"], rows: rows,
                rightAligned: units ? [4, 5] : [3, 4]
            ).render()
    }
}
