import Foundation
import Metering

/// What the invoice covers, measured against the period: part of the report.
public struct CoverageSummary: Codable, Equatable, Sendable {
    /// `declared` when the files state their buckets or billing period, `line_span` when only
    /// their lines' dates tell, `none` when there are no usage lines.
    public var basis: String
    /// The ranges the files declare (or their lines span), merged.
    public var covers: [Span]
    public var periodDays: Int
    public var coveredDays: Int
    /// Parts of the period nothing in the invoice covers.
    public var uncovered: [Span]
    public var pages: [Page]
    public var incomplete: [String]
    /// Per model × token type: the days with vendor lines.
    public var models: [ModelDays]

    public struct Span: Codable, Equatable, Sendable {
        public var from: Timestamp
        public var to: Timestamp
    }

    public struct Page: Codable, Equatable, Sendable {
        public var location: String
        public var hasMore: Bool
        public var nextPage: String?
        enum CodingKeys: String, CodingKey { case location, hasMore = "has_more", nextPage = "next_page" }
    }

    public struct ModelDays: Codable, Equatable, Sendable {
        public var modelID: String
        public var tokenType: TokenType?
        public var days: Int
        public var firstDay: String
        public var lastDay: String
        enum CodingKeys: String, CodingKey { case modelID = "model_id", tokenType = "token_type", days, firstDay = "first_day", lastDay = "last_day" }
    }

    enum CodingKeys: String, CodingKey {
        case basis, covers, periodDays = "period_days", coveredDays = "covered_days", uncovered, pages, incomplete, models
    }
}

/// Stage 5: how much of the period the invoice covers, and whether the export is whole.
enum CoverageCheck {
    static func assess(_ batch: InvoiceBatch, ledger: VendorLedger, range: TimeRange) -> (CoverageSummary, [EvidenceReason]) {
        var reasons: [EvidenceReason] = []

        // What each file covers: what it declares, else the span of its usage lines.
        var intervals: [(Timestamp, Timestamp)] = []
        var declaredAny = false
        for (i, c) in batch.coverage.enumerated() {
            if !c.declared.isEmpty {
                declaredAny = true
                intervals += c.declared.map { ($0.from, $0.to) }
            } else if let span = ledger.usageSpans[i] {
                intervals.append(span)
            }
        }
        let covers = TimeSpans.merge(intervals)
        var uncovered = TimeSpans.uncovered(by: covers, within: (range.from, range.to))
        uncovered = TimeSpans.merge(uncovered + ledger.straddling.map { ($0.from, $0.to) })
        let periodDays = days(range.from, range.to)
        let uncoveredDays = Set(uncovered.flatMap { dayList($0.0, $0.1) })
        let summaryModels = ledger.cells.reduce(into: [CellKey: Set<Int64>]()) { out, kv in out[kv.key.modelType, default: []].formUnion(kv.value.days) }
            .sorted { $0.key < $1.key }
            .compactMap { key, days -> CoverageSummary.ModelDays? in
                guard let first = days.min(), let last = days.max() else { return nil }
                return .init(
                    modelID: key.model, tokenType: key.tokenType, days: days.count,
                    firstDay: Timestamp(microseconds: first * 86_400_000_000).dayString,
                    lastDay: Timestamp(microseconds: last * 86_400_000_000).dayString)
            }
        let pages = zip(batch.coverage.indices, batch.coverage).flatMap { _, c in c.pages }
        let incomplete = batch.coverage.flatMap(\.incomplete)
        let summary = CoverageSummary(
            basis: declaredAny ? "declared" : (covers.isEmpty ? "none" : "line_span"),
            covers: covers.map { .init(from: $0.0, to: $0.1) }, periodDays: periodDays.count,
            coveredDays: periodDays.count - uncoveredDays.count, uncovered: uncovered.map { .init(from: $0.0, to: $0.1) },
            pages: pages.map { .init(location: $0.location, hasMore: $0.hasMore, nextPage: $0.nextPage) }, incomplete: incomplete,
            models: summaryModels)

        // A paginated export is whole when its chain of pages ends: some page says has_more false.
        if !pages.isEmpty, !pages.contains(where: { !$0.hasMore }) {
            let last = pages.last!
            reasons.append(
                .init(
                    code: "partial_export", effect: .inconclusive,
                    detail: "\(last.location) says has_more\(last.nextPage.map { " (next_page \($0))" } ?? ""): this is one page of a longer export",
                    remedy: "fetch every page (follow next_page until has_more is false) and pass them all as --invoice files"))
        }
        for note in incomplete {
            reasons.append(
                .init(
                    code: "partial_export", effect: .inconclusive, detail: note,
                    remedy: "export the whole document again"))
        }
        if ledger.placedLines == 0, ledger.unplacedLines == 0, ledger.linesForOtherAccounts == 0, let span = ledger.straddlingSpan {
            // Every line in the period crosses one of its bounds (an invoice of April 30 – May 30
            // read for May): "no usage line in the period" sent the reader to the dates it had right.
            let to = span.to.day * 86_400_000_000 == span.to.microseconds ? span.to : Timestamp(microseconds: (span.to.day + 1) * 86_400_000_000)
            reasons.append(
                .init(
                    code: "no_lines_in_period", effect: .inconclusive,
                    detail: "each of the invoice's usage lines in \(range.from.rfc3339) – \(range.to.rfc3339) runs past its bounds "
                        + "(\(ledger.straddling.count) line(s), from \(span.from.rfc3339) to \(span.to.rfc3339)): a line's money cannot be split by hour",
                    remedy:
                        "reconcile the lines' whole span (--from \(Timestamp(microseconds: span.from.day * 86_400_000_000).dayString) --to \(to.dayString)), "
                        + "or use an export that bills by day"))
        } else if ledger.placedLines == 0 {
            let dates = ledger.lineDates.map { " (its usage lines run \($0.first.dayString) to \($0.last.dayString))" } ?? ""
            reasons.append(
                .init(
                    code: "no_lines_in_period", effect: .inconclusive,
                    detail: ledger.unplacedLines > 0
                        ? "none of the invoice's \(ledger.unplacedLines) usage line(s) in the period could be converted to tokens"
                        : ledger.linesForOtherAccounts > 0
                            ? "the account map gives all \(ledger.linesForOtherAccounts) usage line(s) in the period to other accounts, "
                                + "or to accounts this key may not see (their reasons: other_account, account_not_visible)"
                            : "the invoice has no usage line in \(range.from.rfc3339) – \(range.to.rfc3339)\(dates)",
                    remedy: ledger.linesForOtherAccounts > 0 && ledger.unplacedLines == 0
                        ? "check --account-map and --account against the invoice's workspaces or projects"
                        : "check --from/--to against the invoice's dates, and the unmapped lines' reasons"))
        } else if !uncovered.isEmpty {
            let list = uncoveredDays.sorted()
            let monthly =
                ledger.multiDayLines == 0
                ? ""
                : "; \(ledger.multiDayLines) usage line(s) span more than one UTC day (lines longer than a day, or days "
                    + "bucketed at another UTC offset), and such a line cannot show whether its span was complete when the file was exported"
            reasons.append(
                .init(
                    code: "coverage_gap", effect: .inconclusive,
                    detail: "the invoice does not cover \(list.count) of the period's \(periodDays.count) day(s): \(compact(list))\(monthly)",
                    remedy: ledger.multiDayLines == 0
                        ? "add the export for the missing days, or reconcile only the covered days with --from/--to"
                        : "an export with daily (or hourly) rows in UTC, or a final invoice that declares its period",
                    days: list))
        }
        return (summary, reasons)
    }

    /// A coverage gap at the period's start or end whose every day the meter is silent on too (no
    /// usage of the invoice's models in the scope read): an account idle over the month's last
    /// weekend, with an export that states no period. The contract ties a conclusive run to an
    /// invoice covering the whole period, so it stays `coverage_gap`; the remedy names the
    /// `--from`/`--to` that reconciles the rest, which the generic one left to the reader.
    static func quietUncoveredDays(_ reasons: [EvidenceReason], diff: GapDiff, meter: MeterLedger, range: TimeRange) -> [EvidenceReason] {
        // Usage the run could not place (another spelling, a vendor label it does not know) may be
        // on those days: no "nothing was used" hint then.
        guard meter.outOfScope.isEmpty else { return reasons }
        var metered = Set<String>()
        for days in diff.meteredDaily.values {
            for (d, q) in days where q != 0 { metered.insert(Timestamp(microseconds: d * 86_400_000_000).dayString) }
        }
        let period = days(range.from, range.to)
        return reasons.map { reason in
            guard reason.code == "coverage_gap", let gap = reason.days, !gap.isEmpty, !metered.isEmpty, metered.isDisjoint(with: gap) else { return reason }
            // Only a run at the start and one at the end: the covered days between are one range.
            let head = period.prefix { gap.contains($0) }, tail = period.reversed().prefix { gap.contains($0) }
            guard head.count + tail.count == gap.count, head.count < period.count else { return reason }
            // --to is exclusive: the first uncovered day of the tail.
            // Both bounds (the CLI needs both), the unchanged one as the run gave it.
            func text(_ t: Timestamp) -> String { t.microseconds % 86_400_000_000 == 0 ? t.dayString : t.rfc3339 }
            let bounds = ["--from \(head.isEmpty ? text(range.from) : period[head.count])", "--to \(tail.last ?? text(range.to))"]
            var r = reason
            r.detail += "; the meter has no usage of the invoice's models on those days either"
            r.remedy =
                "if nothing was used on them, reconcile the covered days alone (\(bounds.joined(separator: " "))); "
                + "an export pulled before the vendor billed them looks the same: add the later export if so"
            return r
        }
    }

    /// Per model: days inside the line span of an export that declares nothing, on which it has
    /// no line billing that model while the meter has a material share of the model's usage (a
    /// tenth of its median metered day or more). Nine empty days in the middle of a cost export
    /// (two pulls joined into one file) under steady traffic were read as covered and proposed as
    /// over-metering (the same rows in two files were a coverage gap); a filler line of another
    /// model, or a zero row, on those days hid them. Such days block the model's negative
    /// corrections (`export_silent_days`). A weekend's stray tokens are not material, and a day
    /// an export that declares its period covers is evidence. Not judged when a line bills more
    /// than a day (it may cover the empty days).
    static func silentDayReasons(_ batch: InvoiceBatch, ledger: VendorLedger, diff: GapDiff, range: TimeRange) -> [EvidenceReason] {
        guard ledger.multiDayLines == 0 else { return [] }
        let declared = batch.coverage.flatMap { $0.declared.map { ($0.from, $0.to) } }
        var spanDays = Set<Int64>()
        for (i, c) in batch.coverage.enumerated() where c.declared.isEmpty {
            guard let span = ledger.usageSpans[i], span.from < span.to else { continue }
            for day in span.from.day...Timestamp(microseconds: span.to.microseconds - 1).day
            where range.from <= start(of: day) && start(of: day + 1) <= range.to
                && !declared.contains(where: { $0.0 < start(of: day + 1) && start(of: day) < $0.1 })
            {
                spanDays.insert(day)
            }
        }
        guard !spanDays.isEmpty else { return [] }
        var billedTokens: [String: [Int64: Int64]] = [:]
        for (key, cell) in diff.vendor {
            for (k, b) in cell.clustered where b.stated != 0 || b.exactTokens != 0 || b.amount != 0 {
                let day = Timestamp(microseconds: k.from).day
                billedTokens[key.model, default: [:]][day, default: 0] &+= BucketSum([b]).tokens
            }
        }
        var metered: [String: [Int64: Int64]] = [:]
        for (key, days) in diff.meteredDaily {
            for (d, q) in days { metered[key.model, default: [:]][d, default: 0] &+= q }
        }
        var reasons: [EvidenceReason] = []
        for (model, daily) in metered.sorted(by: { $0.key < $1.key }) {
            let positive = daily.values.filter { $0 > 0 }.sorted()
            guard !positive.isEmpty else { continue }
            let median = positive[positive.count / 2]
            // What the vendor billed a neighbouring day beyond the meter: a request metered at
            // 23:59:58 and billed in the next day's first hour is no missing day.
            func excess(_ d: Int64) -> Int64 { max((billedTokens[model]?[d] ?? 0) &- (daily[d] ?? 0), 0) }
            let silent = spanDays.filter { d in
                let q = daily[d] ?? 0
                // Billed on the day, or beyond the meter the day before or after, a tenth of it at
                // least: a line of a millionth of a dollar on each missing day hid them.
                let covered = max(billedTokens[model]?[d] ?? 0, 0) &+ excess(d - 1) &+ excess(d + 1)
                return q > 0 && q >= median / 10 && covered < q / 10
            }.sorted().map { start(of: $0).dayString }
            guard !silent.isEmpty else { continue }
            reasons.append(
                .init(
                    code: "export_silent_days", effect: .blocksNegative, modelID: model,
                    detail: "the export states no period, and on \(silent.count) day(s) inside the days its lines span it bills no \(model) "
                        + "while the meter has a material share of its usage: \(compact(silent)). Its volume may be short by those days "
                        + "(a file joined from partial pulls can miss days in the middle), so it cannot show \(model)'s over-metering",
                    remedy: "export those days again (or the whole month in one pull) and pass every file, or reconcile around them with --from/--to",
                    days: silent))
        }
        return reasons
    }

    /// Per model × token type: days the export bills the model (another of its token types) but
    /// no line of this one, while the meter has a material share of it (a tenth of its median
    /// metered day or more), on a cell it bills on other days. A row lost at a line boundary (a
    /// download cut short, a query's row limit; CUR and BigQuery rows come in no order, and a
    /// Console CSV newest first loses the month's start) read as over-metering: −1,089,501 of a
    /// model's output on an exact meter. No request bills input without output; a day with none
    /// is a missing row, so it cannot show that cell's over-metering. Whatever the export
    /// declares: a declared period says what the file was for, not that every row of it arrived.
    static func silentCellDayReasons(ledger: VendorLedger, diff: GapDiff, range: TimeRange) -> [EvidenceReason] {
        guard ledger.multiDayLines == 0 else { return [] }
        var billed: [CellKey: [Int64: Int64]] = [:], modelDays: [String: Set<Int64>] = [:]
        // Exports in windows shorter than a day (Vertex's six hours): the windows billed per day.
        var windows: [CellKey: [Int64: Set<Int64>]] = [:]
        // And the tenants (workspaces, projects) billed per day: an export of a row per workspace
        // that lost one workspace's row still bills the cell that day.
        var tenants: [CellKey: [Int64: Set<String>]] = [:]
        // And the rows per day, for a split the export names no tenant by (resource groups,
        // IAM principals, credentials): a day one row short of the usual is a row lost.
        var rows: [CellKey: [Int64: Int]] = [:]
        for (key, cell) in diff.vendor where key.tokenType != nil {
            for (k, b) in cell.clustered where b.stated != 0 || b.exactTokens != 0 || b.amount != 0 {
                let day = Timestamp(microseconds: k.from).day
                rows[key.modelType, default: [:]][day, default: 0] += b.rows
                billed[key.modelType, default: [:]][day, default: 0] &+= BucketSum([b]).tokens
                modelDays[key.model, default: []].insert(day)
                let named = b.moneyTenants.union(b.statedTenants)
                tenants[key.modelType, default: [:]][day, default: []].formUnion(named)
                if VendorCell.isOneDay(k), k.to - k.from < 86_400_000_000 {
                    // By its start within the day, so that windows compare across days.
                    windows[key.modelType, default: [:]][day, default: []].insert(k.from - day * 86_400_000_000)
                }
            }
        }
        var metered: [CellKey: [Int64: Int64]] = [:], modelMetered: [String: [Int64: Int64]] = [:]
        for (key, days) in diff.meteredDaily {
            for (d, q) in days {
                modelMetered[key.model, default: [:]][d, default: 0] &+= q
                if key.tokenType != nil { metered[key.modelType, default: [:]][d, default: 0] &+= q }
            }
        }
        var reasons: [EvidenceReason] = []
        for (key, daily) in metered.sorted(by: { $0.key < $1.key }) {
            guard let days = billed[key], days.values.contains(where: { $0 > 0 }), let modelBilled = modelDays[key.model] else { continue }
            let positive = daily.values.filter { $0 > 0 }.sorted()
            guard !positive.isEmpty else { continue }
            let median = positive[positive.count / 2]
            func excess(_ d: Int64) -> Int64 { max((days[d] ?? 0) &- (daily[d] ?? 0), 0) }
            // After the cell's last billed day the export stopped billing it: held as such where a
            // correction is proposed (`last_day_unlike_the_rest`), which says where it stops.
            let last = days.filter { $0.value > 0 }.keys.max()!
            // Input and output go together: every request has both. A window, a tenant or a day the
            // other of the two is billed for and this one not, where this one is usually billed
            // beside it (three times in four), is a row lost; cache reads and writes come and go
            // (a workspace reading cache on 24 days of 30 held its cell), so they are not judged so.
            let partner: TokenType? = key.tokenType == .input ? .output : key.tokenType == .output ? .input : nil
            let pair = partner.map { CellKey(model: key.model, tokenType: $0, account: nil) }
            // The days of `days` each value (window, tenant) is billed for, where `also` holds.
            func daysPerValue<T: Hashable>(_ values: [Int64: Set<T>], on days: some Sequence<Int64>, also: (Int64, T) -> Bool = { _, _ in true }) -> [T: Int] {
                var count: [T: Int] = [:]
                for d in days { for v in values[d] ?? [] where also(d, v) { count[v, default: 0] += 1 } }
                return count
            }
            func usually<T: Hashable>(_ own: [Int64: Set<T>], _ other: [Int64: Set<T>]) -> Set<T> {
                // The values (windows, tenants) this cell is billed for on three days in four of the
                // other's, four days at least.
                let otherDays = daysPerValue(other, on: other.keys)
                let together = daysPerValue(other, on: other.keys) { d, v in own[d]?.contains(v) == true }
                return Set(otherDays.filter { $0.value >= 4 && (together[$0.key] ?? 0) * 4 >= $0.value * 3 }.keys)
            }
            let ownWindows = windows[key] ?? [:], pairWindows = pair.flatMap { windows[$0] } ?? [:]
            let ownTenants = tenants[key] ?? [:], pairTenants = pair.flatMap { tenants[$0] } ?? [:]
            let usualWindows = usually(ownWindows, pairWindows), usualTenants = usually(ownTenants, pairTenants)
            func windowMissing(_ d: Int64) -> Bool {
                (pairWindows[d] ?? []).subtracting(ownWindows[d] ?? []).contains(where: usualWindows.contains)
            }
            func tenantMissing(_ d: Int64) -> Bool { (pairTenants[d] ?? []).subtracting(ownTenants[d] ?? []).contains(where: usualTenants.contains) }
            // Whatever the token type, against the cell's own days: a window or tenant it is billed
            // for on nine of its billed days in ten (eight at least), missing on a day it is billed
            // short of the meter, though billed on the nearest billed days before and after (a
            // deployment retired or added mid-month is no row lost). A cache read, an embedding
            // model (no partner) or a workspace whose input and output rows were both lost read the
            // lost row as over-metering.
            func inPeriod(_ d: Int64) -> Bool { range.from <= start(of: d) && start(of: d + 1) <= range.to }
            let billedDays = days.filter { $0.value > 0 && inPeriod($0.key) }.keys.sorted()
            func neighbours(_ d: Int64) -> [Int64] {
                let i = billedDays.firstIndex { $0 >= d } ?? billedDays.count
                let before = i > 0 ? billedDays[i - 1] : nil
                let after = billedDays[(i < billedDays.count && billedDays[i] == d ? i + 1 : i)...].first
                return [before, after].compactMap { $0 }
            }
            func habitual<T: Hashable>(_ own: [Int64: Set<T>]) -> Set<T> {
                guard billedDays.count >= 8 else { return [] }
                return Set(daysPerValue(own, on: billedDays).filter { $0.value * 10 >= billedDays.count * 9 }.keys)
            }
            let habitWindows = habitual(ownWindows), habitTenants = habitual(ownTenants)
            // Rows: fewer than the other of input and output has that day, where this cell has as
            // many as it on three days in four (four at least), or fewer than the count it has on
            // nine billed days in ten where that is most days' count too (an hourly export's rows
            // vary with the traffic, and its quiet days are no rows lost), its neighbours having it.
            let ownRows = rows[key] ?? [:], pairRows = pair.flatMap { rows[$0] } ?? [:]
            let rowsMatchPair = pairRows.count >= 4 && pairRows.filter { (ownRows[$0.key] ?? 0) >= $0.value }.count * 4 >= pairRows.count * 3
            let counts = billedDays.map { ownRows[$0] ?? 0 }.sorted()
            let usualRows = counts.count >= 8 && counts[counts.count / 10] == counts[counts.count / 2] ? counts[counts.count / 10] : 0
            // A row's worth short at least (half of one of the day's rows): money rounding and a
            // request billed across midnight leave a day a few tokens short, and a window or an idle
            // workspace missing then is no row lost.
            func rowShort(_ d: Int64) -> Bool {
                let billed = days[d] ?? 0, q = daily[d] ?? 0, n = ownRows[d] ?? 0
                guard billed > 0, billed < q, n > 0 else { return false }
                let (twice, overflow) = (q &- billed).multipliedReportingOverflow(by: Int64(2 * n))
                return overflow || twice >= billed
            }
            func fewerRowsThanPair(_ d: Int64) -> Bool { rowsMatchPair && rowShort(d) && (ownRows[d] ?? 0) < (pairRows[d] ?? 0) }
            // Fewer than its own usual (the weaker sign: a workspace idle on a holiday looks so): a
            // day reading short then holds the cell's over-metering only.
            func fewerThanUsual(_ d: Int64) -> Bool {
                guard rowShort(d) else { return false }
                let near = neighbours(d)
                func kept<T: Hashable>(_ habit: Set<T>, _ own: [Int64: Set<T>]) -> Bool {
                    habit.subtracting(own[d] ?? []).contains { v in near.allSatisfy { own[$0]?.contains(v) == true } }
                }
                return kept(habitWindows, ownWindows) || kept(habitTenants, ownTenants)
                    || ((ownRows[d] ?? 0) < usualRows && near.allSatisfy { (ownRows[$0] ?? 0) >= usualRows })
            }
            // A day the collector lost the whole model, billed by the export for the other of input
            // and output but not this one, which it bills on three days in four of the other's: the
            // row is as likely lost as the usage absent, and the loss's correction was short by it.
            let pairDays = Set(pair.flatMap { billed[$0] }?.filter { $0.value > 0 }.keys.map { $0 } ?? [])
            let usual = pairDays.count >= 4 && pairDays.filter { (days[$0] ?? 0) > 0 }.count * 4 >= pairDays.count * 3
            func lostBeside(_ d: Int64) -> Bool {
                usual && pairDays.contains(d) && (modelMetered[key.model]?[d] ?? 0) == 0 && (days[d] ?? 0) == 0
            }
            // Only days the export bills the model (another token type) are judged.
            let judged = modelBilled.filter { d in inPeriod(d) && d < last }
            func material(_ d: Int64) -> Bool { let q = daily[d] ?? 0; return q > 0 && q >= median / 10 }
            let silent = judged.filter { d in
                let covered = max(days[d] ?? 0, 0) &+ excess(d - 1) &+ excess(d + 1)
                return material(d) && (covered < (daily[d] ?? 0) / 10 || windowMissing(d) || tenantMissing(d) || fewerRowsThanPair(d)) || lostBeside(d)
            }.sorted().map { start(of: $0).dayString }
            let fewer = judged.filter { d in material(d) && fewerThanUsual(d) }.sorted().map { start(of: $0).dayString }.filter { !silent.contains($0) }
            guard let type = key.tokenType else { continue }
            if !fewer.isEmpty {
                reasons.append(
                    .init(
                        code: "export_rows_fewer_than_usual", effect: .blocksNegative, modelID: key.model, tokenType: type,
                        detail: "on \(fewer.count) day(s) the export bills \(key.named) in fewer rows than on nine of its days in ten (a time "
                            + "window, workspace, project or deployment billed the days around them is missing), and the day reads short of the "
                            + "meter by a row's worth: \(compact(fewer)). A row lost at a line boundary looks so, and so does a group idle that "
                            + "day beside a meter that counted twice, so it is no evidence of over-metering; a loss on other days is corrected "
                            + "(at most the loss: never more than the vendor billed)",
                        remedy: "export those days again (or the whole month in one pull) and pass every file, or reconcile around them with --from/--to",
                        days: fewer))
            }
            guard !silent.isEmpty else { continue }
            reasons.append(
                .init(
                    code: "export_rows_missing", effect: .blocksCell, modelID: key.model, tokenType: type,
                    detail: "on \(silent.count) day(s) the export bills \(key.model) but no \(type.rawValue) (or in fewer of its rows: time windows, "
                        + "workspaces, projects, deployments), which it bills on other days, while the meter has a material share "
                        + "of it (or lost the whole model that day): \(compact(silent)). A row lost at a line boundary (a download cut short, "
                        + "a row limit) looks so, and then \(key.named) reads short by those days, so neither its over-metering nor the size "
                        + "of a loss beside it can be told",
                    remedy: "export those days again (or the whole month in one pull) and pass every file, or reconcile around them with --from/--to",
                    days: silent))
        }
        return reasons
    }

    static func start(of day: Int64) -> Timestamp { Timestamp(microseconds: day * 86_400_000_000) }

    /// The UTC days (`YYYY-MM-DD`) that `[from, to)` touches.
    static func dayList(_ from: Timestamp, _ to: Timestamp) -> [String] {
        guard from < to else { return [] }
        return (from.day...Timestamp(microseconds: to.microseconds - 1).day).map { Timestamp(microseconds: $0 * 86_400_000_000).dayString }
    }

    static func days(_ from: Timestamp, _ to: Timestamp) -> [String] { dayList(from, to) }

    /// `2026-05-16 … 2026-05-31 (16 days)` for runs of consecutive days.
    static func compact(_ days: [String]) -> String {
        var runs: [[String]] = []
        for d in days {
            if let last = runs.last?.last, let t = Timestamp(date: last), Timestamp.startOfDay(after: t).dayString == d {
                runs[runs.count - 1].append(d)
            } else {
                runs.append([d])
            }
        }
        return runs.map { $0.count == 1 ? $0[0] : "\($0.first!) … \($0.last!) (\($0.count) days)" }.joined(separator: ", ")
    }
}
