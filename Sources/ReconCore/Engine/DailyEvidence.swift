import Foundation
import Metering

/// Stage 7 (continued): the day-by-day evidence a reviewer asks for, and what it changes about
/// the findings:
/// - the daily table (metered, vendor, gap, money, implied price per day × model × token type);
/// - `gap_since`: the day a gap began, per finding;
/// - price steps: the vendor's implied price moving on one day for several models while the
///   meter does not — a pricing gap, never a metering correction, however the traffic is spread;
/// - boundary findings: a gap that is exactly the usage of the first or last hours of the period,
///   or, on a meter carrying part of each day past midnight, no wider than its carries;
/// - cache-lifetime mislabels: equal and opposite 5-minute and 1-hour cache-write gaps.
enum DailyEvidence {
    typealias Finding = ReconciliationReport.Finding

    static let daySeconds: Int64 = 86_400
    static func dayString(_ day: Int64) -> String { Timestamp(seconds: day * daySeconds).dayString }

    static func periodDays(_ range: TimeRange) -> [Int64] {
        Array(range.from.day...Timestamp(microseconds: range.to.microseconds - 1).day)
    }

    /// Vendor figures per model × token type (over accounts) per day; nil when a line bills more than a day.
    static func vendorDaily(_ diff: GapDiff, _ key: CellKey, accountwise: Bool) -> [Int64: BucketSum]? {
        guard accountwise else {
            return diff.undatedModelTypes.contains(key.modelType) ? nil : diff.vendorDailyByModelType[key.modelType] ?? [:]
        }
        guard let cell = diff.vendor[key] else { return [:] }
        return cell.hasUndated ? nil : cell.daily
    }

    static func meteredDaily(_ diff: GapDiff, _ key: CellKey, accountwise: Bool) -> [Int64: Int64] {
        accountwise ? diff.meteredDaily[key] ?? [:] : diff.meteredDailyByModelType[key.modelType] ?? [:]
    }

    static func perMillion(_ amount: Decimal, _ tokens: Int64) -> String? {
        guard tokens != 0 else { return nil }
        return ExactDecimal.format(amount * 1_000_000 / Decimal(exactly: tokens), scale: 6)
    }

    /// The daily table.
    static func rows(_ diff: GapDiff, range: TimeRange) -> [ReconciliationReport.DayRow] {
        var rows: [ReconciliationReport.DayRow] = []
        let modelTypes = Set(diff.vendor.keys.map(\.modelType)).union(diff.metered.keys.map(\.modelType)).sorted()
        for day in periodDays(range) {
            for key in modelTypes {
                let vendorDays = vendorDaily(diff, key, accountwise: false)
                let metered = meteredDaily(diff, key, accountwise: false)[day] ?? 0
                let v = vendorDays?[day]
                guard metered != 0 || v != nil else { continue }
                let vendor = vendorDays.map { _ in v?.tokens ?? 0 }
                rows.append(
                    .init(
                        day: dayString(day), modelID: key.model, tokenType: key.tokenType, metered: metered, vendor: vendor,
                        gap: vendor.map { $0 - metered }, vendorAmount: vendorDays.map { _ in ExactAmount(v?.amount ?? 0) },
                        impliedPerMillion: v.flatMap { perMillion($0.amount, $0.allStated ? $0.stated : metered) }))
            }
        }
        return rows
    }

    /// The first day a finding's daily gap went beyond that day's tolerance, and on how many days.
    static func gapSince(_ f: Finding, _ diff: GapDiff, range: TimeRange) -> (String, Int)? {
        guard let off = offDays(f, diff, range: range) else { return nil }
        return off.first.map { (dayString($0), off.count) }
    }

    /// The days a finding's daily gap goes beyond that day's tolerance; nil without daily lines.
    static func offDays(_ f: Finding, _ diff: GapDiff, range: TimeRange) -> [Int64]? {
        let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
        guard let vendorDays = vendorDaily(diff, key, accountwise: true) else { return nil }
        let metered = meteredDaily(diff, key, accountwise: true)
        return periodDays(range).filter { d in
            let v = vendorDays[d]
            return Self.distance(v?.tokens ?? 0, metered[d] ?? 0) > UInt64(max(v?.toleranceTokens ?? 0, 0))
        }
    }

    /// Whether a day has traffic on either side: a day with none (a weekend, a holiday) says
    /// nothing about a gap, neither ending a run of days nor counting in it.
    static func hasTraffic(_ vendor: BucketSum?, _ metered: Int64?) -> Bool { (metered ?? 0) != 0 || (vendor?.tokens ?? 0) != 0 }

    /// A day's gap, vendor against meter: its sign, its share of the day's traffic (the larger
    /// side), whether it is within the day's tolerance, and whether it is material (beyond the
    /// tolerance and 2 % of the traffic or more).
    static func dayGap(_ vendor: BucketSum?, _ metered: Int64?) -> (positive: Bool, share: Decimal, withinTolerance: Bool, material: Bool) {
        let v = vendor?.tokens ?? 0, m = metered ?? 0
        let distance = Self.distance(v, m), traffic = max(v.magnitude, m.magnitude)
        let share = traffic == 0 ? 0 : Decimal(distance) / Decimal(traffic)
        let within = distance <= UInt64(max(vendor?.toleranceTokens ?? 0, 0))
        return (v > m, share, within, !within && share >= materialShare)
    }
    static let materialShare = Decimal(string: "0.02")!

    /// The vendor's tokens off the meter's as a share of the meter (`m` > 0).
    static func share(_ v: Int64, _ m: Int64) -> Decimal { Decimal(exactly: v - m) / Decimal(exactly: m) }
    /// How far rounding may move that share: twice the day's tolerance, as a share of the meter.
    static func slack(_ tol: Int64, _ m: Int64) -> Decimal { 2 * Decimal(exactly: tol) / Decimal(exactly: m) }
    /// Whether a day's share is `k`: within its rounding and a fiftieth of `k`.
    static func atShare(_ share: Decimal, _ k: Decimal, slack: Decimal) -> Bool { abs(share - k) <= slack + abs(k) / 50 }

    /// How many days at a period's end may still be settling: late events and vendor exports can
    /// lag a weekend (billing systems hold an invoice open up to 72 hours for them), and a gap on
    /// the last three days alone was corrected as metering.
    static let settlingDays = 3

    /// Whether a finding's daily gap at the period's end is unlike the rest of it: a material gap
    /// (beyond the day's tolerance and at least 2 % of its traffic) only on the last `settlingDays`
    /// days or fewer, after a week with traffic; or on the last day a share of its traffic more
    /// than twice the typical share of the run of days it ends (plus 2 points). An export pulled
    /// before the vendor's last hours landed (or a meter still awaiting late events) looks like
    /// that, mixed into a real gap or alone; a steady loss, a month-end batch or midnight jitter do
    /// not. The period ends on its last day with traffic, past up to `settlingDays` idle days;
    /// days with no traffic either side are skipped. Periods of two days or more (a period of six
    /// once proposed what a week held), day-by-day exports only.
    static func endsUnlikeItRan(_ f: Finding, _ diff: GapDiff, range: TimeRange) -> Bool {
        let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
        var days = periodDays(range)
        guard days.count >= 2, let vendorDays = vendorDaily(diff, key, accountwise: true) else { return false }
        let metered = meteredDaily(diff, key, accountwise: true)
        // The period's end is its last day with traffic on either side, past a weekend or a
        // holiday with none (up to `settlingDays`): a rise on the last weekdays before an idle
        // month-end weekend was corrected as usage (tester U). A cell idle for longer stopped
        // earlier, and its gaps are judged as any other's.
        let idleEnd = days.reversed().prefix { !hasTraffic(vendorDays[$0], metered[$0]) }.count
        guard idleEnd <= Self.settlingDays else { return false }
        days.removeLast(idleEnd)
        guard days.count >= 2, let last = days.last else { return false }
        func gap(_ d: Int64) -> (positive: Bool, share: Decimal, withinTolerance: Bool, material: Bool) { dayGap(vendorDays[d], metered[d]) }
        let end = gap(last)
        guard end.material else { return false }
        // The vendor bills none of it from some day to the end while the meter meters it every
        // one of those days, after billing it before: an export cut short (a download that
        // stopped, sorted by model and token type) looks like that at any length; a week of it
        // was corrected as over-metering.
        if !end.positive, billingStopped(key, diff, range: range) != nil { return true }
        // The days from the run's first to the end (the week before it is "the rest").
        var run: [Decimal] = [], spanned = 0
        for (i, d) in days.reversed().enumerated() {
            if !hasTraffic(vendorDays[d], metered[d]) { continue }
            let g = gap(d)
            guard g.material, g.positive == end.positive else { break }
            run.append(g.share)
            spanned = i + 1
        }
        if run.count <= Self.settlingDays {
            // "Unlike the rest" needs a rest: traffic on some of the week before (sparse exports
            // whose days never line up with the meter's say nothing about the last one).
            let before = days.dropLast(spanned).suffix(7)
            return before.contains { hasTraffic(vendorDays[$0], metered[$0]) }
        }
        let earlier = run.dropFirst(2).sorted()
        return end.share > earlier[earlier.count / 2] * 2 + materialShare
    }

    /// The days among a cell's last four with traffic that the vendor bills at the last one's
    /// share of the meter (the last and one more at least), and that share; nil otherwise. A price
    /// change in the period's last days bills like that, and so does a collector that began losing
    /// a fixed share of them; an export pulled early (the last day short) or a meter awaiting late
    /// events (the last day over) does not. Too few days to tell the first two apart
    /// (`one-cell-factor` needs four), so such a hold must not read as a late export.
    static func sameShareAtTheEnd(_ f: Finding, _ diff: GapDiff, range: TimeRange) -> (days: [Int64], share: Decimal)? {
        let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
        guard let cell = diff.vendor[key], !cell.sum.anyStated, let vendorDays = vendorDaily(diff, key, accountwise: true) else { return nil }
        let metered = meteredDaily(diff, key, accountwise: true)
        var traffic: [(day: Int64, share: Decimal, slack: Decimal)] = []
        for d in periodDays(range).reversed() where traffic.count <= settlingDays {
            let m = metered[d] ?? 0, v = vendorDays[d]
            if !hasTraffic(v, m) { continue }
            guard m > 0, let v, !v.anyStated else { break }
            traffic.append((d, share(v.tokens, m), slack(max(v.toleranceTokens, 1), m)))
        }
        guard let last = traffic.first, abs(last.share) >= ReconciliationEngine.leastFactor else { return nil }
        let at = traffic.filter { atShare($0.share, last.share, slack: $0.slack) }
        guard at.count >= 2 else { return nil }
        return (at.map(\.day).sorted(), last.share)
    }

    /// The last day the vendor bills any of a cell on, when that is before the period's last day
    /// and the meter meters the cell on every day after it (the invoice stopped billing it); nil
    /// otherwise, or when it bills none of it.
    static func billingStopped(_ key: CellKey, _ diff: GapDiff, range: TimeRange) -> Int64? {
        guard let vendorDays = vendorDaily(diff, key, accountwise: true) else { return nil }
        let days = periodDays(range), metered = meteredDaily(diff, key, accountwise: true)
        guard let stop = days.last(where: { (vendorDays[$0]?.tokens ?? 0) != 0 }), stop < days.last ?? stop,
            days.filter({ $0 > stop }).allSatisfy({ (metered[$0] ?? 0) > 0 })
        else { return nil }
        return stop
    }

    /// Whether a finding's daily gap is a step that lasts to the end: the days at the step's share
    /// (within half of it) that run to the end, two days or more; before them, days within half of
    /// the share of zero, or losses (the vendor above the meter, by any share).
    /// `.some(day)` it is, from that day; `.some(nil)` it is not (an outage, a loss that stopped);
    /// nil when the bill has no days to tell.
    static func stepToTheEnd(_ f: Finding, _ diff: GapDiff, range: TimeRange) -> Int64?? {
        let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
        guard let vendorDays = vendorDaily(diff, key, accountwise: true) else { return nil }
        let metered = meteredDaily(diff, key, accountwise: true)
        var shares: [(day: Int64, share: Decimal?)] = []
        for d in periodDays(range) where hasTraffic(vendorDays[d], metered[d]) {
            let v = vendorDays[d]?.tokens ?? 0, m = metered[d] ?? 0
            shares.append((d, m > 0 ? share(v, m) : nil))
        }
        // The step's share: the median of the last days' (the end is where it must hold).
        let tail = shares.suffix(max(2, shares.count / 4)).compactMap(\.share).sorted()
        guard tail.count >= 2 else { return .some(nil) }
        let k = tail[tail.count / 2]
        let tol = abs(k) / 2
        // Half a point at least: below it, rounding, and "the meter lost more" means nothing.
        guard abs(k) >= ReconciliationEngine.leastFactor else { return .some(nil) }
        // Days the meter lost more than the step (billed with nothing metered, or the vendor
        // above both levels: an outage) witness neither side. Taken as breaking the step, one lost
        // day on a model billed 10 % above its card made the whole factor a correction (+16,603,051
        // for 8,372,392 lost); the step must still show on most days from its start.
        func lost(_ share: Decimal?) -> Bool { share.map { $0 > max(k, 0) + tol } ?? true }
        let telling = shares.filter { !lost($0.share) }
        // The step: the days at its share that last to the end. Before it, a day the meter lost
        // part of (the vendor above it) is a loss too: a tenth lost on May 5, near a 10 % step's
        // share, was the step's start, the clean days after it broke the step, and the month was
        // corrected as the loss plus the factor.
        var start = telling.endIndex
        while start > telling.startIndex, abs(telling[start - 1].share! - k) <= tol { start -= 1 }
        let before = telling[..<start], after = telling[start...]
        guard after.count >= 2, before.allSatisfy({ abs($0.share!) <= tol || $0.share! > 0 }),
            after.count * 2 >= shares.filter({ $0.day >= after.first!.day }).count
        else { return .some(nil) }
        return .some(after.first!.day)
    }

    /// A price per token as a step lists it, per million to 6 decimals, at the nearest price of 2
    /// to 4 decimals within 10 parts per million (rounding in the money made Sonnet output
    /// 14.250002 and gpt-4o output 10.499999, for a person to mend by hand: tester T2).
    static func perMillion(_ perToken: Decimal) -> String {
        ExactDecimal.format((listedPrice(near: perToken, within: nil, part: 100_000) ?? perToken) * 1_000_000, scale: 6)
    }

    /// Whether a run's metered volumes differ by 2 % or more: on a steadier volume a steady number
    /// of tokens lost a day is one share of it too, and says nothing of a price.
    static func varies(_ volumes: [Int64]) -> Bool {
        guard let low = volumes.min(), let high = volumes.max() else { return false }
        return Decimal(exactly: high) >= Decimal(exactly: low) * Decimal(string: "1.02")!
    }

    /// A run of days on which the cell's vendor volume, read from money, is off the meter by one
    /// share (half a point at least, either way), nil if there is none: its first and last day,
    /// whether it lasts to the period's end, and the share. A day is at the share to its rounding
    /// and a fiftieth of the share, alone or with a neighbour (a request counted on the other side
    /// of midnight nets across the pair: one such request brought the correction back, tester Q2).
    /// The run needs four such days or more whose rounding is under a fifth of the share
    /// (cent-rounded money on small days fits any share: a random loss was dated a week early;
    /// under a tenth, price rises on days a little coarser were corrected as usage: tester W2),
    /// half its days; it may hold a tenth of days off both ways (a price changed at 17:00 makes its
    /// day half of it), and days the meter lost more than the share (an outage on top) witness
    /// neither way. The latest such run is taken, wherever it ends: a price the vendor fixed
    /// after some days, or charged on weekdays only, has the same signature (tester T2: +14.4M
    /// and +35.0M proposed), and so does one beside another day off the meter (a one-day
    /// over-count on May 10 made a month-end rise a +6.7M correction of a −2M cell). The run's
    /// volumes differ by 2 % or more (on a steady volume a steady loss is one share too).
    /// `carried`: read net of midnight (`carriedShareRun`), its share then only as good as the
    /// carries into and out of the run allow.
    /// `besideASteadyLoss`: the run is read net of a number of tokens lost every day beside it
    /// (below).
    static func exactShareRun(
        _ f: Finding, _ diff: GapDiff, range: TimeRange
    ) -> (first: Int64, last: Int64, toTheEnd: Bool, share: Decimal, carried: Bool, besideASteadyLoss: Bool)? {
        let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
        guard let cell = diff.vendor[key], !cell.sum.anyStated, let vendorDays = vendorDaily(diff, key, accountwise: true) else { return nil }
        let metered = meteredDaily(diff, key, accountwise: true)
        var days: [ShareDay] = []
        for d in periodDays(range) {
            let m = metered[d] ?? 0
            guard m > 0, let v = vendorDays[d], !v.anyStated else { continue }
            days.append((d, v.tokens, m, max(v.toleranceTokens, 1)))
        }
        let lastDay = periodDays(range).last
        if let run = shareRun(days, lastDay: lastDay) { return (run.first, run.last, run.toTheEnd, run.share, run.carried, false) }
        return shareRunBesideASteadyLoss(days, lastDay: lastDay, positive: f.quantity > 0).map {
            ($0.first, $0.last, $0.toTheEnd, $0.share, $0.carried, true)
        }
    }

    typealias ShareDay = (day: Int64, v: Int64, m: Int64, tol: Int64)

    /// The same share run read net of a steady loss: a collector losing 2,000,000 tokens a day
    /// from May 8 beside a 5 % rise from May 10 leaves 2,000,000 + 5 % of the day off on the
    /// rise's days, which is neither one share nor one number a day, and the rise was corrected
    /// as usage with the loss (+39.1M for a true 26M, tester X2). The steady number is read from
    /// the first two days off or the last two (the loss's days beyond the price's), which agree
    /// within a quarter of it; the days off, less that number (days on the meter stay as they
    /// are: the days between two windows of one loss would read as a share the other way), must
    /// then read one share as above on days other than those two. Held as the price and the
    /// loss together: which tokens are usage the days cannot say to the token.
    static func shareRunBesideASteadyLoss(
        _ days: [ShareDay], lastDay: Int64?, positive: Bool
    ) -> (first: Int64, last: Int64, toTheEnd: Bool, share: Decimal, carried: Bool)? {
        // Days off the loss's way beyond their rounding (a tolerance of one token at least) and
        // by 2 % of the meter or more.
        let off = days.indices.filter { i in
            (days[i].v > days[i].m) == positive && Self.distance(days[i].v, days[i].m) > UInt64(days[i].tol)
                && abs(share(days[i].v, days[i].m)) >= materialShare
        }
        guard off.count >= 8 else { return nil }
        for pair in [Array(off.prefix(2)), Array(off.suffix(2))] {
            let (a, b) = (pair[0], pair[1])
            guard days[b].day - days[a].day == 1 else { continue }
            let ga = days[a].v - days[a].m, gb = days[b].v - days[b].m
            guard Self.distance(ga, gb) <= min(ga.magnitude, gb.magnitude) / 4 else { continue }
            let steady = ga / 2 + gb / 2
            var shifted = days, wraps = false
            for i in off {
                let (v, overflow) = days[i].v.subtractingReportingOverflow(steady)
                shifted[i].v = v
                wraps = wraps || overflow
            }
            // A share the same way as the loss (a rise beside a loss, a cut beside an over-count):
            // the other way, a loss that changed level reads as one when carries or cents blur
            // its days (review AB), and a cut beside a loss is corrected short, not over.
            guard !wraps, let run = shareRun(shifted, lastDay: lastDay), abs(run.share) >= materialShare, (run.share > 0) == positive,
                run.last < days[a].day || run.first > days[b].day
            else { continue }
            // And money fine enough to read the share, to a fifth of it, on half the run's days
            // at least (cents on a dollar a day of gpt-4o-mini output fit any share of 3 %).
            let runDays = days.filter { (run.first...run.last).contains($0.day) }
            guard runDays.filter({ slack($0.tol, $0.m) <= abs(run.share) / 5 }).count * 2 >= runDays.count else { continue }
            return run
        }
        return nil
    }

    static func shareRun(
        _ days: [ShareDay], lastDay: Int64?
    ) -> (first: Int64, last: Int64, toTheEnd: Bool, share: Decimal, carried: Bool)? {
        var end = days.endIndex
        while end >= days.startIndex + 4 {
            defer { end -= 1 }
            // The share of the run ending here: the median of its last five days (four, at the
            // period's start), at least four of which are the run's.
            let window = days[max(days.startIndex, end - 5)..<end].map { share($0.v, $0.m) }.sorted()
            let k = window[window.count / 2]
            guard abs(k) >= ReconciliationEngine.leastFactor else { continue }
            func atShare(_ v: Int64, _ m: Int64, _ tol: Int64) -> Bool { Self.atShare(share(v, m), k, slack: slack(tol, m)) }
            // With a neighbour only for a carry: each day within a tenth of the share (a day at 8 %
            // and one at 10 % around 9 % are two levels of loss, not a carry).
            func near(_ i: Int) -> Bool { abs(share(days[i].v, days[i].m) - k) <= slack(days[i].tol, days[i].m) + abs(k) / 10 }
            func exact(_ i: Int) -> Bool {
                let d = days[i]
                if atShare(d.v, d.m, d.tol) { return true }
                return near(i)
                    && [i - 1, i + 1].contains { j in
                        guard days.indices.contains(j), abs(days[j].day - d.day) == 1, near(j) else { return false }
                        return atShare(d.v + days[j].v, d.m + days[j].m, d.tol + days[j].tol)
                    }
            }
            func informative(_ i: Int) -> Bool { slack(days[i].tol, days[i].m) <= abs(k) / 5 }
            // More lost than the share on top (the vendor beyond both): no witness either way.
            func lostMore(_ i: Int) -> Bool {
                let x = share(days[i].v, days[i].m), margin = slack(days[i].tol, days[i].m) + abs(k) / 2
                return k > 0 ? x > k + margin : x < k - margin
            }
            func onTheMeter(_ i: Int) -> Bool { abs(share(days[i].v, days[i].m)) <= slack(days[i].tol, days[i].m) + abs(k) / 10 }
            // The run ends on a day at the share.
            guard exact(end - 1) else { continue }
            var start = end, stray = 0
            let strayBudget = max(1, days.count / 10)
            while start > days.startIndex {
                let i = start - 1
                if exact(i) || lostMore(i) {
                    start = i
                } else if !onTheMeter(i), stray < strayBudget, i > days.startIndex, exact(i - 1) {
                    stray += 1
                    start = i
                } else {
                    break
                }
            }
            // A price starts and ends against the meter: a short run beside days off the same
            // way by about the share (within half of it) is a loss of varying share, a few days of
            // which agreed by chance (a fixed 2,000,000 a day lost May 20–31 was held as a price
            // window of May 26–29: tester U). A long one is the price, a loss beside it or not:
            // no chance keeps a loss at one share for a week and more (a day lost before a rise
            // from May 16 to the end made the whole gap a +38.7M correction: tester U2).
            func alike(_ i: Int) -> Bool {
                let x = share(days[i].v, days[i].m)
                return (x > 0) == (k > 0) && abs(x - k) <= abs(k) / 2
            }
            // Two such days at least on one side: the day a price changes mid-day reads part of
            // the share, alone (a rise from 10:00 on May 16 was corrected as usage: review V).
            let crowded =
                start - 2 >= days.startIndex && alike(start - 1) && alike(start - 2) || end + 1 < days.endIndex && alike(end) && alike(end + 1)
            let run = Array(days.indices[start..<end])
            let witnesses = run.filter { exact($0) && informative($0) }
            guard witnesses.count >= (crowded ? 8 : 4), witnesses.count * 2 >= run.count else { continue }
            // One share on a volume that varies is the money following the volume, as a price
            // does; on a steady volume a steady number of tokens lost a day is one share too, and
            // says nothing either way (the meter's, as before: the kata's loss is one).
            guard varies(witnesses.map { days[$0].m }) else { continue }
            // And it follows the volume better than one number of tokens a day does: a fixed
            // 2,000,000 lost a day May 20–26 before an idle month-end read one share on six days
            // by chance (pairs of days netting as carries) and was held as a price (tester W).
            // A price leaves the tokens off varying with the volume; a fixed loss, the share.
            let telling = run.filter { !lostMore($0) }
            let gaps = telling.map { days[$0].v - days[$0].m }.sorted()
            let typical = gaps[gaps.count / 2]
            let offShare = telling.reduce(Decimal(0)) { $0 + abs(Decimal(exactly: days[$1].v - days[$1].m) - k * Decimal(exactly: days[$1].m)) }
            let offCount = telling.reduce(UInt64(0)) { $0 + Self.distance(days[$1].v - days[$1].m, typical) }
            // Markedly (twice): rounding on a price whose volume barely varies fits both alike.
            guard offShare <= 2 * Decimal(offCount) else { continue }
            return (days[start].day, days[end - 1].day, days[end - 1].day == lastDay, k, false)
        }
        return carriedShareRun(days, lastDay: lastDay).map { ($0.first, $0.last, $0.toTheEnd, $0.share, true) }
    }

    /// The same, read net of midnight: a meter that stamps part of each day's traffic on the next
    /// day (a batch flushed after midnight, 1–2 % a day) puts every day off a price's share by
    /// what it carried in less what it carried out, so no day reads the share and a rise was
    /// corrected as usage (Azure gpt-4o input 8 % up from May 5: +48,972,900 on a true 0, tester
    /// W2). Carries net out in the running sum: over a run, the gap summed day by day stays
    /// within a carry or two of one share of the volume summed alike, while a number of tokens
    /// lost a day drifts from it as the volume varies (and the other way round for a price).
    /// So: six days or more each within half of the share (the median of the last five) between
    /// days on the meter or the period's bounds, whose running sum fits one share of the volume
    /// at least as well as one number of tokens a day (its spread no wider: a fixed loss under
    /// carries mostly reads 1.3–3 times wider as a share). When neither fits better the days
    /// cannot tell a price from a loss, and a wrong correction is worse than none; asking for a
    /// markedly better fit (four fifths) left 5–10 % rises on volumes varying 10–30 % corrected
    /// as usage (tester X2). On a volume that barely varies (under 2 %) the gap stays the meter's.
    static func carriedShareRun(
        _ days: [ShareDay], lastDay: Int64?
    ) -> (first: Int64, last: Int64, toTheEnd: Bool, share: Decimal)? {
        var end = days.endIndex
        while end >= days.startIndex + 6 {
            defer { end -= 1 }
            let window = days[(end - 5)..<end].map { share($0.v, $0.m) }.sorted()
            let k = window[window.count / 2]
            guard abs(k) >= ReconciliationEngine.leastFactor else { continue }
            // Within half the share of it, or of zero (a day on the meter, bounding the run).
            func near(_ i: Int, _ level: Decimal) -> Bool { abs(share(days[i].v, days[i].m) - level) <= slack(days[i].tol, days[i].m) + abs(k) / 2 }
            func loose(_ i: Int) -> Bool { near(i, k) }
            guard loose(end - 1), end == days.endIndex || near(end, 0) else { continue }
            var start = end - 1
            while start > days.startIndex, loose(start - 1) { start -= 1 }
            guard end - start >= 6, start == days.startIndex || near(start - 1, 0) else { continue }
            let run = days[start..<end]
            guard varies(run.map(\.m)) else { continue }
            let gaps = run.map { Decimal(exactly: $0.v - $0.m) }, volumes = run.map { Decimal(exactly: $0.m) }
            let total = gaps.reduce(0, +), n = Decimal(run.count)
            let asShare = total / volumes.reduce(0, +), asCount = total / n
            // Values' spread about their mean, squared and summed; and a running sum's.
            func spread(_ values: [Decimal]) -> Decimal {
                let mean = values.reduce(0, +) / n
                return values.reduce(Decimal(0)) { $0 + ($1 - mean) * ($1 - mean) }
            }
            func running(_ values: [Decimal]) -> [Decimal] {
                var sum = Decimal(0)
                return values.map {
                    sum += $0; return sum
                }
            }
            let offShare = zip(gaps, volumes).map { $0 - asShare * $1 }
            let byShare = spread(running(offShare)), byCount = spread(running(gaps.map { $0 - asCount }))
            // Carries net out: what a day carried in, the next carried out. A share that merely
            // wanders (a collector losing 8 % one day, 10 % the next) adds up instead, and its
            // running sum spreads wider than its days do.
            guard byShare <= byCount, byShare <= spread(offShare) else { continue }
            return (run.first!.day, run.last!.day, run.last!.day == lastDay, asShare)
        }
        return nil
    }

    /// A price-list figure near a price per token read from money: the first price per million
    /// of 2, 3 or 4 decimals within `1/part` of it (and within `allowed`), nil if none is (cent
    /// rounding left 1.099989 for a $1.10 price).
    static func listedPrice(near price: Decimal, within allowed: (low: Decimal, high: Decimal)? = nil, part: Decimal = 1_000) -> Decimal? {
        var value = price * 1_000_000
        for places in 2...4 {
            var rounded = Decimal()
            NSDecimalRound(&rounded, &value, places, .plain)
            let figure = rounded / 1_000_000
            if abs(figure - price) <= abs(price) / part, allowed.map({ figure >= $0.low && figure <= $0.high }) ?? true { return figure }
        }
        return nil
    }

    /// Per model × token type, the day its implied price (vendor money ÷ metered tokens) changed
    /// from one steady value to another, with both values.
    /// `through`: the step's first priced day (after `day` when days billed with nothing metered
    /// came first).
    static func priceStep(
        _ diff: GapDiff, _ key: CellKey, range: TimeRange, cardPrice: ((CellKey, Timestamp) -> Decimal?)? = nil
    ) -> (day: Int64, through: Int64, before: Decimal, after: Decimal)? {
        let runs = readPrices(diff, key, range: range, cardPrice: cardPrice).runs
        guard runs.count == 2 else { return nil }
        return (runs[1].start, runs[1].priced, runs[0].price, runs[1].price)
    }

    /// Per model × token type, each steady run of its implied price: the day it began, the price.
    static func priceRuns(_ diff: GapDiff, _ key: CellKey, range: TimeRange) -> [(start: Int64, price: Decimal)] {
        readPrices(diff, key, range: range).runs.map { ($0.start, $0.price) }
    }

    /// The steady runs of a cell's implied price, and whether a loss interrupted them: days billed
    /// with nothing metered (skipped: they have no price), or a run of three days or fewer between
    /// two of one price (a collector down that kept a residue). Neither breaks a run, so a step
    /// stays found across an outage (a sentinel run there hid price rises the card lacked, and
    /// they were corrected as usage); a stepped cell so interrupted holds a loss beside the step.
    /// A run begins on the first of the unmetered days before it: an outage on the step's day does
    /// not move the step.
    static func readPrices(
        _ diff: GapDiff, _ key: CellKey, range: TimeRange, cardPrice: ((CellKey, Timestamp) -> Decimal?)? = nil
    ) -> (runs: [(start: Int64, price: Decimal, priced: Int64)], interrupted: Bool) {
        guard let vendorDays = vendorDaily(diff, key, accountwise: false) else { return ([], false) }
        let metered = meteredDaily(diff, key, accountwise: false)
        var runs: [(start: Int64, price: Decimal, priced: Int64)] = []
        // The prices the last run's days all allow, each to its rounding and a token's worth; its
        // money and tokens.
        var allowed: (low: Decimal, high: Decimal) = (0, 0), summed: (money: Decimal, tokens: Decimal) = (0, 0)
        var interrupted = false
        var unmeteredSince: Int64?
        let usual = cardPrice.flatMap { usualMixDays(vendorDays, key, range: range, cardPrice: $0) }
        for d in periodDays(range) {
            guard let v = vendorDays[d], !v.anyStated, v.amount > 0 else { continue }
            // A day billed at another mix of tiers than most days tells the mix, not the price.
            if let usual, !usual.contains(d), (metered[d] ?? 0) > 0 { continue }
            guard let m = metered[d], m > 0 else {
                interrupted = true
                unmeteredSince = unmeteredSince ?? d
                continue
            }
            let tokens = Decimal(exactly: m)
            defer { unmeteredSince = nil }
            let price = v.amount / tokens, width = (v.amountHalfUnits + price) / tokens
            // The same price when one price fits this day and every day of the run, each to its
            // rounding: read against the first day's quotient alone, cent-rounded days broke a
            // rise on every model into runs of a day or two, and no step was found (tester W).
            let low = max(allowed.low, price - width), high = min(allowed.high, price + width)
            if !runs.isEmpty, low <= high {
                allowed = (low, high)
                summed = (summed.money + v.amount, summed.tokens + tokens)
                // The run's price: a price-list figure every day allows, else its money over its tokens.
                let quotient = summed.money / summed.tokens
                runs[runs.count - 1].price = listedPrice(near: quotient, within: allowed) ?? quotient
                continue
            }
            allowed = (price - width, price + width)
            summed = (v.amount, tokens)
            runs.append((unmeteredSince ?? d, price, d))
        }
        // Runs of three days or fewer in all between two of one price (a residue kept on two
        // or three days, each billed otherwise) are one interruption.
        var i = 1
        scan: while i < runs.count {
            var j = i + 1
            while j < runs.count, runs[j].start - runs[i].start <= 3 {
                let (a, b) = (runs[i - 1].price, runs[j].price)
                if abs(a - b) <= max(abs(a), abs(b)) / 100 {
                    runs.removeSubrange(i...j)
                    interrupted = true
                    continue scan
                }
                j += 1
            }
            i += 1
        }
        return (runs, interrupted)
    }

    /// The days whose mix of tiers (money per vendor token, each line's volume read at its own
    /// tier's price, over the card's base price that day) is the one most days have, when more
    /// than half do: money per metered token moves with the mix a day bills (OpenAI's flex on
    /// Tuesdays and Thursdays, priced by the card), and the three days before a model's first full
    /// week, two of them flex, read as a price step that held an outage anywhere in the month
    /// (tester H). A price the vendor changes and the card lacks moves no day's mix (the volume is
    /// read at the card's price), nor does one the card changes (review 7: read as money per vendor
    /// token alone, a card's own change split the month, and a vendor step in the smaller part
    /// went unseen). Nil when no mix is most days', or a day has no card price.
    static func usualMixDays(
        _ vendorDays: [Int64: BucketSum], _ key: CellKey, range: TimeRange, cardPrice: (CellKey, Timestamp) -> Decimal?
    ) -> Set<Int64>? {
        var priced: [(day: Int64, price: Decimal)] = []
        for d in periodDays(range) {
            guard let v = vendorDays[d], !v.anyStated, v.amount > 0, v.tokens > 0 else { continue }
            guard let base = cardPrice(key, CoverageCheck.start(of: d)), base > 0 else { return nil }
            priced.append((d, v.amount / Decimal(exactly: v.tokens) / base))
        }
        priced.sort { $0.price < $1.price }
        guard priced.count >= 4 else { return nil }
        // Alike within a thousandth: a token's rounding is far less, a tier's price far more.
        var best: ArraySlice<(day: Int64, price: Decimal)> = [], start = 0
        for i in priced.indices where i == priced.count - 1 || priced[i + 1].price - priced[i].price > priced[i].price / 1000 {
            if i + 1 - start > best.count { best = priced[start...i] }
            start = i + 1
        }
        return best.count * 2 > priced.count ? Set(best.map(\.day)) : nil
    }

    /// A model × token type's days (over accounts) off the meter — beyond the day's tolerance and
    /// by 2 % of its traffic or more — and its days with traffic on it (within a hundredth of it,
    /// or within the tolerance); nil without daily lines.
    static func offAndOnDays(_ key: CellKey, _ diff: GapDiff, range: TimeRange) -> (off: Set<Int64>, on: Set<Int64>)? {
        guard let vendorDays = vendorDaily(diff, key, accountwise: false) else { return nil }
        let metered = meteredDaily(diff, key, accountwise: false)
        var off = Set<Int64>(), on = Set<Int64>()
        for d in periodDays(range) where hasTraffic(vendorDays[d], metered[d]) {
            let g = dayGap(vendorDays[d], metered[d])
            if g.material {
                off.insert(d)
            } else if g.withinTolerance || g.share * 100 <= 1 {
                on.insert(d)
            }
        }
        return (off, on)
    }

    /// Whether every gapped model × token type is off the meter on the period's last
    /// `settlingDays` days alone (and on some day): an export pulled before the vendor's last
    /// hours landed reads so on every model at once, as one factor would.
    static func gapsOnlyOnTheLastDays(_ diff: GapDiff, range: TimeRange) -> Bool {
        let keys = diff.gappedRows.map(\.key)
        let last = Set(periodDays(range).suffix(settlingDays))
        return !keys.isEmpty && keys.allSatisfy { key in offAndOnDays(key, diff, range: range).map { !$0.off.isEmpty && $0.off.isSubset(of: last) } ?? false }
    }

    /// Whether two of these cells' gaps are two things, not one factor: each is on the meter,
    /// with traffic, on a day the other is off (one off from May 27 to the end and on it May
    /// 10–12, the other off May 10–12 and on it from May 27). One factor — a price, a currency, a
    /// discount — moves every cell it touches on the same days; a rise on one model and a real
    /// loss on another at a like share of the month were both held as `uniform_gap`, the loss
    /// called a pricing gap (tester T2 M3). Cells whose traffic never meets say nothing either
    /// way (a model used on May 1 only, or in the month's other half): a markup on every line was
    /// corrected as usage on them (tester U).
    static func gapsOnDaysApart(_ keys: [CellKey], _ diff: GapDiff, range: TimeRange) -> Bool {
        let cells = keys.compactMap { offAndOnDays($0, diff, range: range) }
        return cells.indices.contains { i in
            cells[(i + 1)...].contains { other in !cells[i].on.isDisjoint(with: other.off) && !other.on.isDisjoint(with: cells[i].off) }
        }
    }

    /// Whether every gapped model × token type's gap is the vendor billing more on a run of days
    /// inside the period only: days where the month's share would have shown beyond the day's
    /// tolerance match instead, both before the first day off and after the last. A factor (a
    /// card, a currency) shows on every day, and a price that ends or starts mid-month on one side
    /// only; a collector down May 10–12 for every model looks `uniform` over the month, and its
    /// days say otherwise. Quiet days, where the factor would hide in the rounding, say nothing
    /// either way. A meter above the bill on some days (a promotion? a replayed batch?) stays as
    /// it reads, and so does an outage at the period's very start or end.
    static func gapsConfinedToSomeDays(_ diff: GapDiff, range: TimeRange) -> Bool {
        let rows = diff.gappedRows
        return !rows.isEmpty
            && rows.allSatisfy { key, row in
                guard row.gap > 0, row.metered > 0, let vendorDays = vendorDaily(diff, key, accountwise: false) else { return false }
                let metered = meteredDaily(diff, key, accountwise: false)
                let share = Decimal(exactly: row.gap) / Decimal(exactly: row.metered)
                // A day off by less than half a point (and well under the month's share) matched:
                // money read exactly has no rounding to absorb a meter's 0.2 % of midnight jitter,
                // and a collector's outage on every model was held as a price factor for it. No
                // factor below half a point is taken anywhere (`leastFactor`).
                let noise = min(ReconciliationEngine.leastFactor, abs(share) / 4)
                // Per day: whether it matched (within its rounding, or only within the noise),
                // whether the month's share would show there, and how far off it was.
                // The noise is a share of a typical day, not of the day itself: jitter is requests
                // crossing midnight from a full neighbour (a holiday at 1 % of the traffic was 20 %
                // off for it, and held a real outage).
                let volumes = periodDays(range).compactMap { metered[$0] }.filter { $0 > 0 }.sorted()
                let typical = volumes.isEmpty ? Decimal(0) : Decimal(exactly: volumes[volumes.count / 2])
                var days: [(matches: Bool, exact: Bool, telling: Bool, off: Decimal)] = []
                for d in periodDays(range) {
                    let m = metered[d] ?? 0, v = vendorDays[d]?.tokens ?? 0
                    let rounding = Decimal(max(vendorDays[d]?.toleranceTokens ?? 0, 0))
                    let tolerance = max(rounding, typical * noise)
                    let distance = Decimal(Self.distance(v, m))
                    days.append(
                        (distance <= tolerance, distance <= rounding, Decimal(exactly: m) * share > tolerance * 2, Decimal(exactly: v) - Decimal(exactly: m)))
                }
                // Matching days that would have shown the share, before the first day off and after
                // the last: a price that ends (or starts) mid-month is off on one side only. A side
                // that matched only within the noise needs two such days (a short last day of a
                // month whose price rose on the 16th matched alone), and what the matching days are
                // off by must net out (jitter does; a 1 % markup under 0.8 % jitter matched every
                // other day, all of them the same way).
                guard let firstOff = days.firstIndex(where: { !$0.matches }), let lastOff = days.lastIndex(where: { !$0.matches }) else { return false }
                func shows(_ side: ArraySlice<(matches: Bool, exact: Bool, telling: Bool, off: Decimal)>) -> Bool {
                    side.contains { $0.exact && $0.telling } || side.filter { $0.matches && $0.telling }.count >= 2
                }
                let drift = days.filter(\.matches).reduce(Decimal(0)) { $0 + $1.off }
                // One run, or two (an outage on every model and a day more on one was held as a
                // price factor), off on a third of the days at most, and the way of the gap: a
                // surcharge on weekdays matched on every weekend inside it, and a day billed below
                // the meter (a promotion) netted against a loss.
                var runs = 1, between = false
                for day in days[firstOff...lastOff] {
                    if day.matches {
                        between = between || day.telling
                    } else if between {
                        runs += 1
                        between = false
                    }
                }
                let oneRun = runs <= 2 && days.filter({ !$0.matches }).count * 3 <= days.count
                let oneWay = days.allSatisfy { $0.matches || ($0.off > 0) == (row.gap > 0) }
                return shows(days[..<firstOff]) && shows(days[(lastOff + 1)...]) && abs(drift) * 20 <= Decimal(exactly: row.gap) && oneRun && oneWay
            }
    }

    /// The day of a change of the card's price of a finding's model × token type (inside the
    /// period, or at its start) that the vendor's money does not show, or nil. Money per metered
    /// token (volume read from money), the median of the days after the change up to the next: had
    /// the vendor changed its price as the card says, it would have moved from the days before by
    /// the card's ratio; it is taken to have stayed when it is nearer no move than that ratio. A
    /// change with no day of traffic before it (at the period's start, or before the model's first
    /// use) compares with the card's two prices: the money nearer the old one. Medians, so midnight
    /// jitter and odd days do not decide it.
    static func cardChangeTheMoneyDoesNotShow(
        _ f: Finding, _ diff: GapDiff, range: TimeRange, cardPrice: (CellKey, Timestamp) -> Decimal?, cardChanges: (String) -> [Timestamp]
    ) -> Int64? {
        guard let tokenType = f.tokenType else { return nil }
        let key = CellKey(model: f.modelID, tokenType: tokenType)
        guard diff.vendor[CellKey(model: f.modelID, tokenType: tokenType, account: f.accountID)].map({ !$0.sum.allStated }) ?? false,
            let vendorDays = vendorDaily(diff, key, accountwise: false)
        else { return nil }
        let metered = meteredDaily(diff, key, accountwise: false)
        var implied: [Int64: Decimal] = [:]
        for d in periodDays(range) {
            guard let v = vendorDays[d], !v.anyStated, v.amount > 0, let m = metered[d], m > 0 else { continue }
            implied[d] = v.amount * 1_000_000 / Decimal(exactly: m)
        }
        func median(_ days: ClosedRange<Int64>) -> Decimal? {
            let values = implied.filter { days.contains($0.key) }.values.sorted()
            return values.isEmpty ? nil : values[values.count / 2]
        }
        let first = range.from.day, last = Timestamp(microseconds: range.to.microseconds - 1).day
        let changes = cardChanges(f.modelID).filter { $0.microseconds >= range.from.microseconds && $0.microseconds < range.to.microseconds }
        for (i, t) in changes.enumerated() {
            guard let before = cardPrice(key, Timestamp(microseconds: t.microseconds - 1)), let after = cardPrice(key, t), before != after, before > 0
            else { continue }
            // The change's own day mixes both prices unless it changed at midnight.
            let day = t.day, from = t.microseconds % (daySeconds * 1_000_000) == 0 ? day : day + 1
            let until = i + 1 < changes.count ? changes[i + 1].day - 1 : last
            let previous = i > 0 ? max(changes[i - 1].day, first) : first
            guard from <= until, let moneyAfter = median(from...until) else { continue }
            if day > previous, let moneyBefore = median(previous...(day - 1)), moneyBefore > 0 {
                let moved = moneyAfter / moneyBefore, card = after / before
                if abs(moved - 1) < abs(moved - card) { return day }
                // The bill stepped by the card's ratio, on another day: the gap that lies only
                // between the two dates is the card's date, not the meter (a card dated two days
                // early proposed +50,000,000 for them).
                if let steps = Self.stepDays(implied, within: max(previous, first)...until, old: moneyBefore, new: moneyBefore * card),
                    !steps.contains(from), case let billDay = from < steps.lowerBound ? steps.lowerBound : steps.upperBound,
                    Self.gapIsTheCardsDate(
                        f, diff, range: range, days: min(billDay, from)...(max(billDay, from) - 1),
                        share: billDay > from ? before / after - 1 : after / before - 1)
                {
                    return day
                }
            } else if abs(moneyAfter - before) < abs(moneyAfter - after) {
                // No day of traffic before it (the period's start, or a model first used after
                // the change: only the period's start was compared, and the old price proposed).
                return day
            }
        }
        return nil
    }

    /// The first day in `bounds` from which the money per metered token is nearer `new` than
    /// `old` on every day with traffic to the end of `bounds` but a tenth of them, or nil; with
    /// the days right before it far from both prices, on any of which the step may lie.
    static func stepDays(_ implied: [Int64: Decimal], within bounds: ClosedRange<Int64>, old: Decimal, new: Decimal) -> ClosedRange<Int64>? {
        // At one of the two prices, within their distance of it; a day far from both (an outage
        // on May 15 read three times the old price, "nearer" the new one, and made a correctly
        // dated card look two days off) says nothing.
        let band = abs(new - old)
        func isNew(_ d: Int64) -> Bool? {
            guard let v = implied[d] else { return nil }
            let toNew = abs(v - new), toOld = abs(v - old)
            if toNew < toOld { return toNew <= band ? true : nil }
            return toOld <= band ? false : nil
        }
        // From the step on, every day with traffic: an outage a week before a real change that
        // mimicked the new price for four days, then read the old price again, was taken for it.
        // A stray day (a quiet day's rounding, midnight jitter) may read otherwise: a tenth.
        for d in bounds where isNew(d) == true {
            let after = implied.keys.filter { $0 > d && $0 <= bounds.upperBound }
            guard after.filter({ isNew($0) == false }).count * 10 <= after.count else { continue }
            // Days right before it far from both prices (a collector that kept a residue on the
            // step's days) may be its first: the card's May 15 read as a bill stepping on the
            // 17th, and a clean outage was held as the card's wrong date.
            var start = d
            while start - 1 >= bounds.lowerBound, implied[start - 1] != nil, isNew(start - 1) == nil { start -= 1 }
            return start...d
        }
        return nil
    }

    /// Whether a finding's daily gap (beyond each day's tolerance) lies on at least one of `days`
    /// and is there, on each of them, the share of the meter a card price on the wrong side of its
    /// date makes (vendor ÷ meter − 1 = `share`, within a tenth of it or one point), or past it, or
    /// off the other way (a loss inside the card's days): a meter that
    /// over-counted the days before a real cut also moves the money per metered token, but by
    /// its own share, and stays a metering gap. Days off outside `days` (a real loss later in the
    /// month) do not undo it: the whole gap was proposed, the card's days with it, so the finding
    /// is held until the card's date is fixed and the run repeated.
    static func gapIsTheCardsDate(_ f: Finding, _ diff: GapDiff, range: TimeRange, days: ClosedRange<Int64>, share: Decimal) -> Bool {
        let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
        guard let inside = offDays(f, diff, range: range)?.filter(days.contains), !inside.isEmpty,
            let vendorDays = vendorDaily(diff, key, accountwise: true)
        else { return false }
        let metered = meteredDaily(diff, key, accountwise: true)
        let slack = max(Decimal(string: "0.01")!, abs(share) / 10)
        return inside.allSatisfy { d in
            guard let m = metered[d], m > 0 else { return false }
            let v = vendorDays[d]?.tokens ?? 0
            // At the share, past it, or the other way: a day that also lost usage (an outage on
            // May 17, inside the card's days) carries the card's share and its own, and proposing
            // it carries the card's share with it. Short of the share the same way (between no
            // gap and it) is the meter's own story: an over-count before a real cut.
            let day = Decimal(exactly: v - m) / Decimal(exactly: m)
            return share > 0 ? !(day > 0 && day < share - slack) : !(day < 0 && day > share + slack)
        }
    }

    /// A gap equal to the usage of the first or last one to three hours at a bound: the meter and
    /// the vendor put those hours on different sides of it.
    /// Where the bill has days and the whole gap lies on one day away from both edges (a batch
    /// sent twice on May 10), or on two running into each other (a collector down across an inner
    /// midnight), an edge hour of the same size explains nothing: no boundary. A gap spread over
    /// the days (a clock skew moving each night's batch across midnight) or on an edge day still
    /// may be one. On a meter carrying part of each day past midnight, a metering gap no wider than
    /// its inner days' carries go apart is what the window's bounds carried (see the end).
    static func boundary(_ f: Finding, _ diff: GapDiff, tolerance: Int64, range: TimeRange) -> String? {
        let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
        guard let e = diff.edges[key], f.quantity != 0 else { return nil }
        var carrySwing: UInt64?, onInnerDays = false
        if let vendorDays = vendorDaily(diff, key, accountwise: true) {
            let metered = meteredDaily(diff, key, accountwise: true)
            let inner = Array(periodDays(range).dropFirst().dropLast())
            func gap(_ d: Int64) -> Int64? {
                let (g, overflow) = (vendorDays[d]?.tokens ?? 0).subtractingReportingOverflow(metered[d] ?? 0)
                return overflow ? nil : g
            }
            func isTheFinding(_ g: Int64?) -> Bool { g.map { $0 != 0 && Self.distance($0, f.quantity) <= UInt64(max(tolerance, 0)) } ?? false }
            // One inner day, or two running into each other (a collector down across an inner midnight).
            onInnerDays = inner.indices.contains { i in
                isTheFinding(gap(inner[i]))
                    || (i + 1 < inner.count && isTheFinding(gap(inner[i]).flatMap { a in gap(inner[i + 1]).map { a &+ $0 } }))
            }
            // A meter stamping part of each day after midnight puts every day off by what it
            // carried in less what it carried out: four inner days or more, and half of them at
            // least, off both ways beyond their rounding (a day lost beside a day counted twice is
            // not that: review Z). Each such gap is one carry less another, as the window's is; the
            // second largest shows how far apart two carries go, one lost day aside, unless it
            // stands out itself (twice the third: a day counted twice beside a lost one, review AA).
            if f.gapClass == .meteringGap {
                let innerGaps = inner.compactMap { d in gap(d).map { (g: $0, tol: UInt64(max(vendorDays[d]?.toleranceTokens ?? 0, 0))) } }
                let offBy = innerGaps.filter { Self.distance($0.g, 0) > $0.tol }.map { $0.g.signum() }
                let swings = innerGaps.map { Self.distance($0.g, 0) }.sorted(by: >)
                if offBy.count >= max(4, (inner.count + 1) / 2), offBy.contains(1), offBy.contains(-1), swings.count >= 3, swings[1] / 2 <= swings[2] {
                    carrySwing = swings[1]
                }
            }
        }
        // A window's usage may be larger or smaller than the gap, and windows of huge cells may not
        // fit 64 bits: neither is a match, and neither may trap.
        func matches(_ hours: Range<Int>, _ window: [Int: Int64]) -> Bool {
            var tokens: Int64 = 0
            for h in hours {
                let (sum, overflow) = tokens.addingReportingOverflow(window[h] ?? 0)
                if overflow { return false }
                tokens = sum
            }
            return tokens != 0 && Self.distance(f.quantity.magnitude, tokens.magnitude) <= UInt64(max(tolerance, 0))
        }
        for hours in 1...MeterLedger.edgeHours where !onInnerDays {
            if f.quantity < 0 {
                // Metered inside the period, billed by the vendor outside it.
                if matches(-hours..<0, e.end) { return "usage_in_last_\(hours)h_of_period" }
                if matches(0..<hours, e.start) { return "usage_in_first_\(hours)h_of_period" }
            } else {
                // Metered just outside the period, billed by the vendor inside it.
                if matches(-hours..<0, e.start) { return "usage_in_\(hours)h_before_period" }
                if matches(0..<hours, e.end) { return "usage_in_\(hours)h_after_period" }
            }
        }
        // Under such carries a window's gap is what its last day carried out less what the day
        // before it carried in, and was corrected on cells that lost nothing (+277,042 on Haiku
        // input over a week: tester X2). A gap no wider than two carries go apart on the inner
        // days, and inside the hour the carry is metered in (after the window, or its first hour
        // the other way), cannot be told from them. The hour alone is no bound: it holds that
        // hour's own traffic (beside a nightly job at 00:20 it hid a loss of 19 % of a day:
        // review Z). Metering gaps only: a hold stays a hold.
        if let swing = carrySwing {
            let hour = UInt64(max(f.quantity > 0 ? e.end[0] ?? 0 : e.start[0] ?? 0, 0))
            if f.quantity.magnitude <= min(swing, hour) { return "carried_across_midnight_at_the_bounds" }
        }
        return nil
    }

    /// |a − b| without trapping, whatever the two are.
    static func distance(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }
    static func distance(_ a: Int64, _ b: Int64) -> UInt64 {
        a >= b ? UInt64(bitPattern: a) &- UInt64(bitPattern: b) : UInt64(bitPattern: b) &- UInt64(bitPattern: a)
    }

    /// Token types a collector commonly confuses: a 5-minute and a 1-hour cache write.
    static let mislabelPairs: [(TokenType, TokenType)] = [(.cacheWrite5m, .cacheWrite1h)]

    /// Applies the day-by-day evidence to the findings and returns the price steps.
    /// `cardPrice`: the card's base price per million of a model × token type at an instant (nil:
    /// none); `cardChanges`: the instants a model's card prices may change.
    static func apply(
        to findings: inout [Finding], _ diff: GapDiff, range: TimeRange, cardPrice: @escaping (CellKey, Timestamp) -> Decimal? = { _, _ in nil },
        cardChanges: (String) -> [Timestamp] = { _ in [] }
    ) -> [ReconciliationReport.PriceStep] {
        for i in findings.indices where findings[i].gapClass != .withinTolerance && !findings[i].isEngine("stated-quantity") {
            if let (since, days) = gapSince(findings[i], diff, range: range) {
                findings[i].gapSince = since
                findings[i].gapDays = days
            }
        }

        // Price steps: the same day for at least two models, where the card does not already follow
        // the vendor (a step the card prices leaves no gap).
        var steps: [Int64: [(CellKey, Decimal, Decimal)]] = [:]
        let gapped = Set(findings.filter { $0.gapClass != .withinTolerance }.map { CellKey(model: $0.modelID, tokenType: $0.tokenType) })
        // A step the card itself makes that day, by the same ratio, is no change the card lacks:
        // an outage elsewhere in the month (a day with nothing metered) gapped the model, and the
        // card's own May 16 rise was then taken for a step and held the outage.
        // A step found on unmetered days may lie on any of them, through its first priced day
        // (`through`): the card changing on one of them makes it too (a card's May 15 rise over a
        // collector down May 14–16 read as a step of the 14th the card lacked, and held the outage).
        func cardMakes(_ key: CellKey, _ day: Int64, through: Int64, ratio: Decimal) -> Bool {
            guard let before = cardPrice(key, CoverageCheck.start(of: day - 1)), before > 0,
                let after = cardPrice(key, Timestamp(microseconds: CoverageCheck.start(of: max(day, through) + 1).microseconds - 1)), after != before
            else { return false }
            return abs(after / before - ratio) <= ratio / 100
        }
        var found: [(key: CellKey, days: ClosedRange<Int64>, priced: ClosedRange<Int64>, before: Decimal, after: Decimal)] = []
        // A new price seen on the cell's last day with traffic alone is an export pulled before
        // that day landed as much as a price: every model billed at 75 % on May 31 was proposed
        // as a 25 % price cut (tester U). The period-end hold judges it instead.
        // Only on the period's last days: a model retired mid-month, last billed on the day
        // every price rose, steps with the others (it was corrected as usage: tester U2). And a
        // cut only: an export pulled early bills less, never more (every price up on Friday May
        // 29 before an idle weekend was held as a late export: review V).
        let settling = Set(periodDays(range).suffix(settlingDays))
        // Days both billed (money) and metered, not merely with traffic: a day the price shows on.
        func billedDays(_ key: CellKey, from day: Int64, cut: Bool) -> Int {
            guard cut, settling.contains(day), let vendorDays = vendorDaily(diff, key, accountwise: false) else { return .max }
            let metered = meteredDaily(diff, key, accountwise: false)
            return periodDays(range).filter { $0 >= day && (vendorDays[$0]?.amount ?? 0) > 0 && (metered[$0] ?? 0) > 0 }.count
        }
        // Days with no traffic on either side just before a new price shows (a model idle May
        // 16–18 whose new price shows from the 19th) may hold the step too: every input price
        // rose on May 16, and a model used only until May 18 was corrected as usage beside a step
        // filed on the 19th (tester U2). A week at most: longer, the step is another's.
        func firstIdleDay(_ key: CellKey, before day: Int64) -> Int64 {
            var first = day
            let (vendorDays, metered) = (vendorDaily(diff, key, accountwise: false) ?? [:], meteredDaily(diff, key, accountwise: false))
            while first > max(range.from.day, day - 7), !hasTraffic(vendorDays[first - 1], metered[first - 1]), (vendorDays[first - 1]?.amount ?? 0) == 0 {
                first -= 1
            }
            return first
        }
        for key in Set(diff.vendor.keys.map(\.modelType)).intersection(gapped).sorted() {
            guard let s = priceStep(diff, key, range: range, cardPrice: cardPrice) else { continue }
            let days = firstIdleDay(key, before: s.day)...max(s.day, s.through)
            // The card's own change on any of those days is the step (compared on the day the
            // price shows alone, a card's May 16 rise over a model idle May 16–18 read as a step
            // the card lacked, and held an outage: review V).
            if !(s.before > 0 && cardMakes(key, days.lowerBound, through: days.upperBound, ratio: s.after / s.before)),
                billedDays(key, from: s.day, cut: s.after < s.before) >= 2
            {
                found.append((key, days, s.day...days.upperBound, s.before, s.after))
            }
        }
        // A step read across unmetered days may lie on any of them: filed under the day most other
        // steps may lie on too (the earliest among as many), so Haiku down May 15–16 steps with
        // Sonnet on the 16th (filed under the 15th, neither stepped, and Sonnet's rise was
        // corrected as usage).
        // A model's step no other model's may lie with is filed among the days its price shows
        // on, not the idle days before them (the earliest of those dated a lone step up to a week
        // early in a proposed card: review V, X).
        func mostShared(_ days: ClosedRange<Int64>) -> Int64 {
            days.max { a, b in
                let (na, nb) = (found.filter { $0.days.contains(a) }.count, found.filter { $0.days.contains(b) }.count)
                return na != nb ? na < nb : a > b
            }!
        }
        for f in found {
            let day = mostShared(f.days)
            let alone = Set(found.filter { $0.days.contains(day) }.map(\.key.model)) == [f.key.model]
            steps[alone ? mostShared(f.priced) : day, default: []].append((f.key, f.before, f.after))
        }
        // Whether a model × token type's implied price moved on `day` too, by one of `ratios`, and
        // moved again (a metering gap on top of the price change, or a second change): its gap
        // mixes the two, and what part is metering cannot be told, so it is held rather than
        // corrected. A price that moves every day (a gap whose share of the traffic varies) is
        // not taken for the step: the runs around the day must each last two days or more.
        // `runsExactly`: how many runs the price must have in all, every priced day within 1 % of
        // its run's price (nil: any number, however the days wander: a run read across days
        // moving 3 % each way, usage crossing midnight, stands at one of those days' prices).
        // The prices before and after the move, or nil when it did not move so.
        let lastDay = periodDays(range).last ?? range.from.day
        func move(_ key: CellKey, on day: Int64, byOneOf ratios: [Decimal], runsExactly: Int? = nil) -> (before: Decimal, after: Decimal)? {
            let runs = readPrices(diff, key, range: range, cardPrice: cardPrice).runs
            if let runsExactly {
                guard runs.count == runsExactly, let vendorDays = vendorDaily(diff, key, accountwise: false) else { return nil }
                let metered = meteredDaily(diff, key, accountwise: false)
                for (k, run) in runs.enumerated() {
                    let ends = k + 1 < runs.count ? runs[k + 1].start : lastDay + 1
                    for d in run.start..<ends {
                        guard let v = vendorDays[d], !v.anyStated, v.amount > 0, let m = metered[d], m > 0 else { continue }
                        if abs(v.amount / Decimal(exactly: m) - run.price) > run.price / 100 { return nil }
                    }
                }
            }
            // On the day, or across unmetered days that hold it, or idle days before it (the
            // day the step is filed under may be one of them: review V).
            guard
                let k = runs.indices.first(where: {
                    $0 > 0 && firstIdleDay(key, before: runs[$0].start) <= day && day <= max(runs[$0].start, runs[$0].priced)
                })
            else {
                return nil
            }
            let before = runs[k - 1], after = runs[k]
            let afterEnds = k + 1 < runs.count ? runs[k + 1].start : lastDay + 1
            guard after.start - before.start >= 2, afterEnds - after.start >= 2, before.price > 0 else { return nil }
            let ratio = after.price / before.price
            return ratios.contains { abs(ratio - $0) <= $0 / 100 } ? (before.price, after.price) : nil
        }
        // A finding the price steps decide, as the engine's `price-step`.
        func holdAsStep(_ i: Int, _ gapClass: GapClass, _ reason: String) {
            findings[i].gapClass = gapClass
            findings[i].rule = "price-step"
            findings[i].classifier = "engine"
            findings[i].reason = reason
        }
        var priceSteps: [ReconciliationReport.PriceStep] = []
        func step(_ day: Int64, kind: ReconciliationReport.PriceStep.Kind, _ cells: [(CellKey, Decimal, Decimal)]) -> ReconciliationReport.PriceStep {
            .init(
                date: dayString(day), kind: kind,
                rates: cells.map { key, before, after in
                    .init(
                        modelID: key.model, tokenType: key.tokenType, beforePerMillion: perMillion(before), afterPerMillion: perMillion(after))
                })
        }
        for (day, cells) in steps.sorted(by: { $0.key < $1.key }) where Set(cells.map(\.0.model)).count >= 2 {
            let date = dayString(day)
            priceSteps.append(step(day, kind: .severalModels, cells))
            let stepped = Set(cells.map(\.0))
            for i in findings.indices
            where stepped.contains(CellKey(model: findings[i].modelID, tokenType: findings[i].tokenType))
                && findings[i].gapClass != .withinTolerance
            {
                // Days the collector lost (or kept a residue of) inside the step's runs: its gap is
                // the step and a loss, and which part is which cannot be told (a Sonnet outage of
                // May 10–12 was read as the price change of the 16th).
                let lost = readPrices(diff, CellKey(model: findings[i].modelID, tokenType: findings[i].tokenType), range: range, cardPrice: cardPrice)
                    .interrupted
                holdAsStep(i, lost ? .unexplained : .pricingGap, "vendor_price_changed_on_\(date)\(lost ? "_among_other_changes" : "")")
            }
            // A model × token type whose implied price moved that day too, by the step's ratio, and
            // moved again: held beside it (`move`).
            let ratios = cells.map { $0.2 / $0.1 }
            for i in findings.indices where findings[i].gapClass == .meteringGap {
                let key = CellKey(model: findings[i].modelID, tokenType: findings[i].tokenType)
                guard !stepped.contains(key), move(key, on: day, byOneOf: ratios) != nil else { continue }
                holdAsStep(i, .unexplained, "vendor_price_changed_on_\(date)_among_other_changes")
            }
        }

        // One model whose token types' implied prices all stepped on one day by one ratio (within
        // 1 %), the other models steady: a price change of that model the card lacks, or the meter
        // losing a steady share of that model's requests from that day. The gap cannot say which,
        // so it is held rather than corrected. One token type stepping alone is a metering gap.
        let multiModel = Set(priceSteps.flatMap { step in step.rates.map { CellKey(model: $0.modelID, tokenType: $0.tokenType) } })
        var oneModel: [String: [(key: CellKey, day: Int64, before: Decimal, after: Decimal)]] = [:]
        // Each price must hold two days or more (a last day unlike the rest is a late export's).
        let days = periodDays(range)
        for (day, cells) in steps where day >= (days.first ?? day) + 2 && day <= (days.last ?? day) - 1 {
            for (cell, before, after) in cells where !multiModel.contains(cell) && before > 0 {
                oneModel[cell.model, default: []].append((cell, day, before, after))
            }
        }
        for (model, cells) in oneModel.sorted(by: { $0.key < $1.key }) {
            for (day, same) in Dictionary(grouping: cells, by: \.day).sorted(by: { $0.key < $1.key }) {
                let ratio = same[0].after / same[0].before
                guard same.allSatisfy({ abs($0.after / $0.before - ratio) <= ratio / 100 }) else { continue }
                // Another token type of the model whose price moved that day by the same ratio and
                // moved once more, before or after (a loss of its own): the model's step all the
                // same. Output alone read as stepping (input's price stepped, then a loss moved it
                // once more), and a 10 % Sonnet rise was corrected as usage on both (tester Z). Once
                // more only, and no day read across: a price moving every few days (usage moving
                // across midnight) meets the ratio somewhere by chance.
                // Listed in the step with the prices around its move: `ratecards propose` wrote
                // output's new price alone, and input's rise was then corrected as usage (review Z3).
                var movedCells: [CellKey: (before: Decimal, after: Decimal)] = [:]
                for i in findings.indices where findings[i].modelID == model && findings[i].gapClass == .meteringGap {
                    let key = CellKey(model: model, tokenType: findings[i].tokenType)
                    guard !same.contains(where: { $0.key == key }), movedCells[key] == nil else { continue }
                    // Three runs: before, the step, and the move of its own.
                    if let prices = move(key, on: day, byOneOf: [ratio], runsExactly: 3) { movedCells[key] = prices }
                }
                let alsoMoved = findings.indices.filter { i in
                    findings[i].modelID == model && findings[i].gapClass == .meteringGap
                        && movedCells[CellKey(model: model, tokenType: findings[i].tokenType)] != nil
                }
                guard same.count + movedCells.count >= 2 else { continue }
                for i in alsoMoved { holdAsStep(i, .unexplained, "implied_price_of_\(model)_changed_on_\(dayString(day))_among_other_changes") }
                let held = Set(same.map(\.key))
                // Listed, so `ratecards propose` can write the card once a person has confirmed the
                // vendor's price list moved (the gaps stay held: a steady loss looks the same).
                priceSteps.append(
                    step(
                        day, kind: .oneModel,
                        (same.map { ($0.key, $0.before, $0.after) } + movedCells.map { ($0.key, $0.value.before, $0.value.after) }).sorted { $0.0 < $1.0 }))
                for i in findings.indices
                where findings[i].modelID == model && findings[i].gapClass == .meteringGap
                    && held.contains(CellKey(model: model, tokenType: findings[i].tokenType))
                {
                    holdAsStep(i, .unexplained, "implied_price_of_\(model)_changed_on_\(dayString(day))")
                }
            }
        }

        // The same over a whole period: every gapped token type of one model off by one share of
        // its metered tokens (within 5 % of each other), the vendor's volume read from money, and
        // day by day a step that lasts to the period's end (clean before, that share after; or a
        // bill with no days to say otherwise) — a card stale for that model from that day, or its
        // requests lost at one rate from then on. A gap confined to some days (an outage, a loss
        // that stopped) is the meter's. Day-by-day noise hides an exact step; shares do not.
        // Which of `group` share one factor (every one, or two or more with the rest past it the
        // same way: the factor plus a loss of their own — every price 5 % above the card on a
        // one-model bill, input short besides, proposed 5 % of the month with the loss); nil if
        // none do.
        func oneFactor(_ group: [Int]) -> [Int]? {
            guard group.count >= 2 else { return nil }
            let fromMoney = group.allSatisfy { i in
                let key = CellKey(model: findings[i].modelID, tokenType: findings[i].tokenType, account: findings[i].accountID)
                return diff.vendor[key].map { !$0.sum.allStated } ?? false
            }
            let shares = group.map { Decimal(exactly: findings[$0].quantity) / Decimal(exactly: findings[$0].metered) }
            // A gap only at the period's end is a late export's (held as such when proposed).
            guard fromMoney, !group.contains(where: { endsUnlikeItRan(findings[$0], diff, range: range) }),
                Set(shares.map { $0 > 0 }).count == 1, let first = shares.first
            else { return nil }
            var agreeing = Array(group.indices)
            if !shares.allSatisfy({ abs($0 - first) <= abs(first) / 20 }) {
                // The factor is the share nearest zero (a loss only adds to it): the median missed
                // it when half the token types had losses of their own.
                let factor = shares.min { abs($0) < abs($1) }!
                // Half a point at least: 0.05 % of steady drift on output and cache reads is no
                // price factor beneath a Sonnet input outage.
                guard abs(factor) >= ReconciliationEngine.leastFactor else { return nil }
                agreeing = group.indices.filter { abs(shares[$0] - factor) <= abs(factor) / 20 }
                guard agreeing.count >= 2, group.indices.allSatisfy({ agreeing.contains($0) || abs(shares[$0]) > abs(factor) }) else { return nil }
            }
            let starts = agreeing.map { stepToTheEnd(findings[group[$0]], diff, range: range) }
            guard !starts.contains(where: { $0 == .some(nil) }) else { return nil }
            let days = starts.compactMap { $0 ?? nil }
            guard (days.max() ?? 0) - (days.min() ?? 0) <= 1 else { return nil }
            return agreeing.map { group[$0] }
        }
        var byModel: [String: (gaps: [Int], gapped: [Int])] = [:]
        for i in findings.indices where findings[i].gapClass != .withinTolerance && findings[i].tokenType != nil && findings[i].metered > 0 {
            let key = "\(findings[i].modelID)|\(findings[i].accountID ?? "")"
            if findings[i].gapClass == .meteringGap { byModel[key, default: ([], [])].gaps.append(i) }
            byModel[key, default: ([], [])].gapped.append(i)
        }
        for (_, cells) in byModel.sorted(by: { $0.key < $1.key }) where !cells.gaps.isEmpty {
            // The metering gaps alone; else every gapped token type (a rule's class of one of them,
            // cache reads as pass-through, does not make its share less of a witness to the factor).
            guard let agreeing = oneFactor(cells.gaps) ?? oneFactor(cells.gapped) else { continue }
            let every = Set(agreeing) == Set(cells.gaps) || Set(agreeing) == Set(cells.gapped)
            for i in cells.gaps {
                findings[i].gapClass = .unexplained
                findings[i].rule = "one-model-factor"
                findings[i].classifier = "engine"
                findings[i].reason = "same_share_on_\(every ? "every_token_type" : "most_token_types")_of_\(findings[i].modelID)"
            }
        }

        // The card's price changes on a day inside the period and the vendor's money per metered
        // token does not move that day: had the vendor changed its price as the card says, the
        // money would have stepped with it. The card (or its date) is wrong for this bill, and the
        // gap it makes from that day is no lost usage, so it is held rather than corrected. A card
        // step on every token type of a model reads as one factor on the model too, held above:
        // the card's day is named instead, since it says where to look (tester N).
        for i in findings.indices where findings[i].gapClass == .meteringGap || findings[i].isEngine("one-model-factor") {
            guard let card = cardChangeTheMoneyDoesNotShow(findings[i], diff, range: range, cardPrice: cardPrice, cardChanges: cardChanges)
            else { continue }
            findings[i].gapClass = .unexplained
            findings[i].rule = "card-step"
            findings[i].classifier = "engine"
            findings[i].reason = "card_price_changed_on_\(dayString(card))_the_bill_did_not"
        }

        // One token type of one model whose volume money gives, off the meter by the same share on
        // every day it is off, to its rounding: a price the card lacks (or a discount) on that
        // token type. A collector losing part of the traffic does not lose one share to the
        // millionth day after day. Sonnet input billed at $3.30 against a $3 card proposed
        // +6,095,444 for the month, and +3,126,261 from a step on May 16 (tester Q). Held, with
        // a loss on top of it (the gap is then the loss and the factor); a factor the other way
        // from the gap (a discount beside an outage) leaves the gap as it was.
        // Listed as a step of one token type (the card's price times one plus the share), so
        // `ratecards propose` can write it once the vendor's price list confirms it (tester Q2).
        var oneCell: [String: ReconciliationReport.PriceStep] = [:]
        for i in findings.indices where findings[i].gapClass == .meteringGap && findings[i].tokenType != nil {
            guard let run = exactShareRun(findings[i], diff, range: range) else { continue }
            let day = run.first, share = run.share
            // Read net of midnight, no one day is at the share: the reason says so (review Y, M5).
            let reason = run.carried ? "same_share_net_of_midnight_carries" : "same_share_every_day"
            findings[i].gapClass = .unexplained
            findings[i].rule = "one-cell-factor"
            findings[i].classifier = "engine"
            // Beside a steady loss neither the number (two days give it) nor the run's dates are
            // sure enough to name, nor to list a card row from (review AB: a "to" day on a price
            // still in force, a price read as the loss when it came first); the finding's first
            // day off (`gap_since`) says when it began.
            if run.besideASteadyLoss {
                findings[i].reason = "same_share_beside_a_steady_loss"
                continue
            }
            // A window that ends before the period does is no card row from a day on.
            guard run.toTheEnd else {
                findings[i].reason = "\(reason)_from_\(dayString(day))_to_\(dayString(run.last))"
                continue
            }
            findings[i].reason = "\(reason)_from_\(dayString(day))"
            let key = CellKey(model: findings[i].modelID, tokenType: findings[i].tokenType)
            let id = "\(dayString(day)) \(key.model) \(key.tokenType?.rawValue ?? "")"
            if oneCell[id] == nil, let perMillion = cardPrice(key, CoverageCheck.start(of: day)), perMillion > 0 {
                let before = perMillion / 1_000_000  // a step's prices are per token
                // Net of midnight the share holds the carry into the run's first day: only a
                // price-list figure near it is listed, or no card row (3.238107 proposed for $3.24
                // left +355k of gap on a re-run, corrected as usage: review Y).
                let after = run.carried ? listedPrice(near: before * (1 + share)) : before * (1 + share)
                if let after { oneCell[id] = step(day, kind: .oneTokenType, [(key, before, after)]) }
            }
        }
        priceSteps += oneCell.sorted { $0.key < $1.key }.map(\.value)

        for i in findings.indices where ![.withinTolerance, .pricingGap].contains(findings[i].gapClass) {
            let key = CellKey(model: findings[i].modelID, tokenType: findings[i].tokenType, account: findings[i].accountID)
            if let where_ = boundary(findings[i], diff, tolerance: diff.vendor[key]?.toleranceTokens ?? 0, range: range) {
                findings[i].gapClass = .boundary
                findings[i].rule = "period-boundary"
                findings[i].classifier = "engine"
                findings[i].reason = where_
            }
        }

        // A gap that takes back all or part of what earlier corrections put in the cell: the
        // usage they stood for has since reached the meter (late events, some or all), and both
        // count. Reverting that run and reconciling again is the remedy, not a second correction
        // the other way (which would call served tokens unserved); nor is it a boundary
        // (corrections are dated in the period's last second).
        // When a day's usage is off the other way instead (over the bill on May 20 after a loss was
        // corrected), the late events were dated when they came — or a batch was replayed: the
        // days cannot tell which, so it is held under a name that says what is seen.
        for i in findings.indices where [.meteringGap, .boundary].contains(findings[i].gapClass) {
            let key = CellKey(model: findings[i].modelID, tokenType: findings[i].tokenType, account: findings[i].accountID)
            guard let c = diff.corrected[key], c != 0, (c > 0) != (findings[i].quantity > 0),
                findings[i].quantity.magnitude <= c.magnitude + UInt64(max(diff.vendor[key]?.toleranceTokens ?? 0, 0))
            else { continue }
            if let vendorDays = vendorDaily(diff, key, accountwise: true) {
                let metered = meteredDaily(diff, key, accountwise: true)
                let newGapOnADay = periodDays(range).contains { d in
                    let v = vendorDays[d]?.tokens ?? 0, m = metered[d] ?? 0
                    return (c > 0 ? m > v : v > m) && Self.distance(v, m) > UInt64(max(vendorDays[d]?.toleranceTokens ?? 0, 0))
                }
                if newGapOnADay {
                    findings[i].gapClass = .unexplained
                    findings[i].rule = "earlier-correction"
                    findings[i].classifier = "engine"
                    findings[i].reason = "usage_off_the_bill_on_a_day_after_earlier_corrections"
                    continue
                }
            }
            findings[i].gapClass = .unexplained
            findings[i].rule = "earlier-correction"
            findings[i].classifier = "engine"
            findings[i].reason = "earlier_corrections_now_metered"
        }

        // Only sides that would be corrected, absorbed or priced: a side held (by the engine — a
        // price step among other changes, a count its money does not pay for —, or a team's rule
        // classing it unexplained) or at a period boundary stays so; paired, it came back as a
        // relabel correction.
        func pairable(_ f: Finding) -> Bool { [.meteringGap, .passThrough, .pricingGap].contains(f.gapClass) }
        for (a, b) in mislabelPairs {
            for i in findings.indices where findings[i].tokenType == a && pairable(findings[i]) {
                guard
                    let j = findings.indices.first(where: {
                        findings[$0].tokenType == b && findings[$0].modelID == findings[i].modelID && findings[$0].accountID == findings[i].accountID
                            && pairable(findings[$0])
                    })
                else { continue }
                let (x, y) = (findings[i].quantity, findings[j].quantity)
                let tolerance =
                    (diff.vendor[CellKey(model: findings[i].modelID, tokenType: a, account: findings[i].accountID)]?.toleranceTokens ?? 0)
                    &+ (diff.vendor[CellKey(model: findings[j].modelID, tokenType: b, account: findings[j].accountID)]?.toleranceTokens ?? 0)
                guard (x > 0) != (y > 0), (x + y).magnitude <= UInt64(max(tolerance, 0)) else { continue }
                let net = ExactAmount(findings[i].amount.value + findings[j].amount.value)
                for (k, other) in [(i, b), (j, a)] {
                    findings[k].gapClass = .meteringGap
                    findings[k].rule = "cache-lifetime-mislabel"
                    findings[k].classifier = "engine"
                    findings[k].reason = "token_type_mislabel"
                    findings[k].pairedWith = other
                    findings[k].pairAmount = net
                }
            }
        }
        // The same tokens under two labels: input off one way and the cache token types off the
        // other by about as much (a collector folding cache reads, or reads and writes, into input;
        // a usage report that does not split cached input out) — within a tenth, since a collector
        // also loses a little —, or any two other token types off by equal and opposite amounts.
        // Correcting one side while the other reads as pass-through drops those tokens from the
        // bill (or counts them twice), so every side is held.
        func tolerance(_ f: Finding) -> UInt64 {
            UInt64(max(diff.vendor[CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)]?.toleranceTokens ?? 0, 0))
        }
        func offsets(_ sides: [Int], within share: UInt64) -> Bool {
            let negative = sides.filter { findings[$0].quantity < 0 }, positive = sides.filter { findings[$0].quantity > 0 }
            guard !negative.isEmpty, !positive.isEmpty else { return false }
            let down = negative.reduce(UInt64(0)) { $0 &+ findings[$1].quantity.magnitude }
            let up = positive.reduce(UInt64(0)) { $0 &+ findings[$1].quantity.magnitude }
            let slack = sides.reduce(UInt64(0)) { $0 &+ tolerance(findings[$1]) } &+ max(down, up) / share
            return Self.distance(down, up) <= slack
        }
        // Over-metering of one token type beside other types of the same model and account billed
        // beyond the meter on the same days: a collector recording one type under another (cache
        // reads or writes folded into input, every cache write as 5-minute) shows so whatever else
        // the month holds — an outage on other days, a steady loss, the fold fixed mid-month —, and
        // backing the first out while the others read as pass-through or are corrected drops those
        // tokens from the bill or counts them twice (tester L: input −6,130,000 where +1,680,000
        // was lost; tester M: −24,180,000 beside a 2 % loss, −4,000,000 beside a fold fixed on
        // May 8, −107,200,000 on a monthly invoice). Held when the others' excess on the days the
        // first is over covers more than half of its excess (half exactly, beside an unrelated loss,
        // is corrected); an other counts when half its own excess (days the first is under the
        // bill too left out: an outage of every type) lies on those days and goes to cover it
        // (cache never metered, billed every day, is no fold of input replayed on one day; an
        // outage's loss on a relabelled pair's day is no part of the relabel). Without days, the
        // month's figures stand in for one day.
        // Types one collector may record under another: input and the cache types, output and reasoning.
        func mayStandFor(_ a: TokenType?, _ b: TokenType?) -> Bool {
            func family(_ t: TokenType?) -> Int? {
                guard let t else { return nil }
                if t == .input || t.rawValue.hasPrefix("cache") { return 0 }
                return t == .output || t == .reasoning ? 1 : nil
            }
            return a != b && family(a) != nil && family(a) == family(b)
        }
        func offsetOnTheSameDays(_ x: Int, _ group: [Int]) -> [Int]? {
            let others = group.filter {
                findings[$0].quantity > 0 && mayStandFor(findings[x].tokenType, findings[$0].tokenType) && !findings[$0].isEngine("token-type-swap")
            }
            guard findings[x].quantity < 0, !others.isEmpty else { return nil }
            func key(_ k: Int) -> CellKey { CellKey(model: findings[k].modelID, tokenType: findings[k].tokenType, account: findings[k].accountID) }
            // Each side's material excess by day (the month as one day when a side has no days).
            func excess(_ k: Int, over: Bool) -> [Int64: UInt64]? {
                guard let vendor = vendorDaily(diff, key(k), accountwise: true) else { return nil }
                let metered = meteredDaily(diff, key(k), accountwise: true)
                var out: [Int64: UInt64] = [:]
                for d in Set(vendor.keys).union(metered.keys) {
                    let gap = (vendor[d]?.tokens ?? 0) &- (metered[d] ?? 0)
                    if (gap < 0) == over, gap != 0, gap.magnitude > UInt64(max(vendor[d]?.toleranceTokens ?? 0, 0)) { out[d] = gap.magnitude }
                }
                return out
            }
            var sides = others.map { ($0, excess($0, over: false)) }
            var residual = excess(x, over: true) ?? [:]
            // Days the first is itself under the bill (an outage of every type) say nothing of a fold.
            var lost = Set(excess(x, over: false)?.keys.map { $0 } ?? [])
            if residual.isEmpty || sides.contains(where: { $0.1 == nil }) {
                guard tolerance(findings[x]) < findings[x].quantity.magnitude else { return nil }
                residual = [0: findings[x].quantity.magnitude]
                lost = []
                sides = others.map { ($0, tolerance(findings[$0]) < findings[$0].quantity.magnitude ? [0: findings[$0].quantity.magnitude] : [:]) }
            }
            let total = residual.values.reduce(UInt64(0), &+)
            guard total > 0 else { return nil }
            // The others that cover the most first: a pair relabelled every day before a type an
            // outage touched on two of those days.
            let ordered = sides.map { y, e -> (y: Int, e: [Int64: UInt64], cover: UInt64) in
                let e = e ?? [:]
                return (y, e, residual.reduce(UInt64(0)) { $0 &+ min(e[$1.key] ?? 0, $1.value) })
            }.sorted { $0.cover > $1.cover || ($0.cover == $1.cover && $0.y < $1.y) }
            var taken: [Int] = [], covered = UInt64(0)
            for (y, e, _) in ordered {
                let own = e.filter { !lost.contains($0.key) }.values.reduce(UInt64(0), &+)
                let inside = residual.keys.reduce(UInt64(0)) { $0 &+ (e[$1] ?? 0) }
                var covers = UInt64(0), after = residual
                for (d, r) in residual {
                    let c = min(r, e[d] ?? 0)
                    covers &+= c
                    after[d] = r - c
                }
                // Half its own excess on those days, half of that covering (no products: no wrap).
                guard own > 0, own - min(own, inside) <= inside, inside - covers <= covers else { continue }
                taken.append(y)
                covered &+= covers
                residual = after
            }
            // More than half of the first's excess covered: the rest is as likely a fold as not.
            return !taken.isEmpty && total - covered < covered ? [x] + taken : nil
        }
        // Every side is a partner, whatever its class: a team's rule classing the cache side
        // `unexplained` (a more cautious rule) left the input side alone, and its correction was
        // proposed and posted. Only sides that would be corrected, absorbed or priced are marked (a
        // held side keeps its own reason), and no partner is used up: a cache write held for earlier
        // corrections took input's offset, and output's equal and opposite gap was proposed.
        func holdAsSwap(_ sides: [Int], as prefix: String = "equal_and_opposite_gaps_of_") {
            let types = Set(sides.compactMap { findings[$0].tokenType?.rawValue }).sorted()
            // A pricing side too: "fix the card" on half of a swap invites a card edit on it.
            for k in sides where [.meteringGap, .passThrough, .pricingGap].contains(findings[k].gapClass) || findings[k].isEngine("token-type-swap") {
                findings[k].gapClass = .unexplained
                findings[k].rule = "token-type-swap"
                findings[k].classifier = "engine"
                findings[k].reason = prefix + types.joined(separator: "_and_")
            }
        }
        // A line's money against its own stated quantity (`stated-quantity`) is no token type's side.
        let open = findings.indices.filter {
            findings[$0].pairedWith == nil && findings[$0].gapClass != .withinTolerance && !findings[$0].isEngine("stated-quantity")
        }
        for (_, group) in Dictionary(grouping: open, by: { "\(findings[$0].modelID)|\(findings[$0].accountID ?? "")" }).sorted(by: { $0.key < $1.key }) {
            if let input = group.first(where: { findings[$0].tokenType == .input }) {
                let cache = group.filter {
                    findings[$0].tokenType?.rawValue.hasPrefix("cache") == true && (findings[$0].quantity > 0) != (findings[input].quantity > 0)
                }
                if !cache.isEmpty, offsets([input] + cache, within: 10) { holdAsSwap([input] + cache) }
            }
            for (n, i) in group.enumerated() {
                for j in group[(n + 1)...] where findings[j].tokenType != findings[i].tokenType && offsets([i, j], within: 1000) {
                    holdAsSwap([i, j])
                }
            }
            for x in group where findings[x].quantity < 0 && pairable(findings[x]) && !findings[x].isEngine("token-type-swap") {
                if let sides = offsetOnTheSameDays(x, group) { holdAsSwap(sides, as: "opposite_gaps_on_the_same_days_of_") }
            }
        }
        return priceSteps.sorted { ($0.date, $0.kind.rawValue) < ($1.date, $1.kind.rawValue) }
    }
}
