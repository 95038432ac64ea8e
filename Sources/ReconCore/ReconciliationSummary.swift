public import Metering

/// What a list of runs shows of one run, and what deciding who may see it needs, stored beside
/// its report (`ReconciliationLog`): the `/ui/` index decoded each of its 200 runs' whole reports,
/// so an account's own very large runs could time its page out (tester S2).
///
/// `account_id` is its first member and no other member is named so: a store may find a run's
/// account by that key in the text, as ClickHouse's `visitParamExtractString` does.
public struct ReconciliationSummary: WireShape, Equatable {
    public var accountID: String?
    public var id: String
    public var vendor: String
    public var from: Timestamp
    public var verdict: ReconciliationReport.Verdict
    /// The run's total gap (vendor − meter), in the invoice's units.
    public var gap: Int64
    /// Proposed corrections (not those held for review).
    public var corrections: Int
    /// Every account a correction of the run, proposed or held, would post to: a scoped key sees
    /// the run only when it may see all of them, as it may read the report.
    public var correctedAccounts: [String]
    public var applied: Bool
    /// When the run's corrections were undone (`revert`); an applied run stays applied.
    public var revertedAt: Timestamp?
    public var createdAt: Timestamp

    enum CodingKeys: String, CodingKey {
        case accountID = "account_id", id, vendor, from, verdict, gap, corrections, correctedAccounts = "corrected_accounts", applied
        case revertedAt = "reverted_at", createdAt = "created_at"
    }

    public init(_ r: ReconciliationReport) {
        accountID = r.accountID
        id = r.id
        vendor = r.vendor
        from = r.from
        verdict = r.verdict
        gap = r.total.gap
        corrections = r.corrections.count
        correctedAccounts = Array(Set(r.everyCorrection.map(\.accountID))).sorted()
        applied = r.applied
        revertedAt = r.revertedAt
        createdAt = r.createdAt
    }

    /// The run's month (`YYYY-MM` of its period's start), and its account as a list names it.
    public var month: String { from.monthString }
    public var accountLabel: String { accountID ?? "(all accounts)" }

    /// Whether its corrections were posted, as a list says it: yes, no, or reverted.
    public var appliedState: String { revertedAt != nil ? "reverted" : applied ? "yes" : "no" }

    /// The summary's JSON text, as the log keeps it.
    public var jsonText: String {
        // Every member is a plain value with a total encoding; failing here would be a programming error.
        try! ReconciliationJSON.encode(self)
    }
}

/// `GET /v1/reconciliations`: the runs a key may see, newest first (by time recorded, then id),
/// and where the next page starts when more may follow.
public struct ReconciliationList: WireShape, Equatable {
    public var reconciliations: [ReconciliationSummary]
    /// Nil when the store had no more runs; else the last run the page read, listed or not (a
    /// run the key may not see still moves the page on: a page can be short, or empty, with more
    /// behind it).
    public var next: Cursor?

    public init(_ reconciliations: [ReconciliationSummary], next: Cursor? = nil) {
        self.reconciliations = reconciliations
        self.next = next
    }

    /// Where a list goes on: the runs after this one in its order. Runs can share a time, so the
    /// time alone would skip some (review 58); with no id, every run recorded before the time.
    public struct Cursor: Codable, Equatable, Sendable {
        public var before: Timestamp
        public var beforeID: String
        enum CodingKeys: String, CodingKey { case before, beforeID = "before_id" }

        public init(before: Timestamp, beforeID: String = "") {
            self.before = before
            self.beforeID = beforeID
        }

        /// A list's `before` and `before_id` as given (`fields` name them in errors: the API's
        /// query, the CLI's flags). `before` is a date (its 00:00 UTC) or an RFC 3339 time.
        public static func parse(before: String?, beforeID: String?, fields: (String, String)) throws -> Cursor? {
            guard let before else {
                if beforeID != nil {
                    throw UsageBoxError.invalidArgument("\(fields.1) goes with \(fields.0): the last listed run's id and created_at", field: fields.1)
                }
                return nil
            }
            guard let t = Timestamp(date: before) ?? Timestamp(rfc3339: before) else {
                throw UsageBoxError.invalidArgument(
                    "\(fields.0) is a date (2026-06-01) or an RFC 3339 time, such as a listed run's created_at", field: fields.0)
            }
            if let beforeID, !EventDecoder.isValidIdentifier(beforeID) { throw UsageBoxError.invalidArgument("not a run id", field: fields.1) }
            return Cursor(before: t, beforeID: beforeID ?? "")
        }
    }

    /// How many runs one list may ask for, and how many it gets when it names no number.
    public static let limits = 1...200
    public static let defaultLimit = 50

    /// A list's `account` as given (`field` names it in the error: the API's query, the CLI's flag).
    public static func account(_ text: String?, field: String) throws -> String? {
        if let text, !EventDecoder.isValidIdentifier(text) { throw UsageBoxError.invalidArgument("not an account id", field: field) }
        return text
    }

    /// A list's `limit` as given (`field` names it in the error: the API's query, the CLI's flag).
    public static func limit(_ text: String?, field: String) throws -> Int {
        guard let text else { return defaultLimit }
        // Digits as written, no sign and no leading zero.
        guard text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), !text.hasPrefix("0"), let n = Int(text), limits.contains(n) else {
            throw UsageBoxError.invalidArgument("\(field) is a whole number from \(limits.lowerBound) to \(limits.upperBound)", field: field)
        }
        return n
    }
}
