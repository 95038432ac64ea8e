public import Foundation
public import Metering

/// Everything a reconciliation run is told, resolved and checked (files read, rules and maps
/// loaded). The CLI and the HTTP API both build it from one `ReconciliationRequest`.
public struct ReconciliationOptions: Sendable {
    public var vendor: String
    public var invoices: [InvoiceFile]
    public var range: TimeRange
    /// The one account the run is for. Without an account map the invoice is compared against
    /// this account's meter, and other accounts metering its models make the run inconclusive
    /// unless `invoiceScope` is `.account`.
    public var account: String?
    /// The caller's assertion that the invoice is `account`'s alone.
    public var invoiceScope: InvoiceScope
    /// The accounts the caller may see.
    public var scope: AccountScope
    /// Overrides the vendor's card in `RateCards/`.
    public var rateCard: (any RateCardConverter)?
    /// A team's rules, consulted after the plugin's classifiers and before the defaults.
    public var teamRules: ClassificationRules?
    /// Code classifiers consulted before everything else.
    public var classifiers: [any GapClassifier]
    /// Vendor attribution value (workspace, project, API key) → account.
    public var accountMap: [String: String]
    /// Model names no card knows (an Azure deployment) → the model they serve, on both sides.
    public var modelMap: [String: String] = [:]
    /// Units of the card currency per unit of another currency (`EUR: 1.0842`).
    public var fx: [String: Decimal]
    public var meterID: String?
    public var deepVerify: Bool
    public var allowDrift: Bool
    public var allowOverlap: Bool
    /// Who ran it: a key id, or `cli`.
    public var runBy: String

    public init(
        vendor: String, invoices: [InvoiceFile], range: TimeRange, account: String? = nil,
        invoiceScope: InvoiceScope = .asGiven, scope: AccountScope = .all, rateCard: (any RateCardConverter)? = nil,
        teamRules: ClassificationRules? = nil, classifiers: [any GapClassifier] = [], accountMap: [String: String] = [:],
        fx: [String: Decimal] = [:], meterID: String? = nil, deepVerify: Bool = false, allowDrift: Bool = false,
        allowOverlap: Bool = false, runBy: String = "cli"
    ) {
        self.vendor = vendor
        self.invoices = invoices
        self.range = range
        self.account = account
        self.invoiceScope = invoiceScope
        self.scope = scope
        self.rateCard = rateCard
        self.teamRules = teamRules
        self.classifiers = classifiers
        self.accountMap = accountMap
        self.fx = fx
        self.meterID = meterID
        self.deepVerify = deepVerify
        self.allowDrift = allowDrift
        self.allowOverlap = allowOverlap
        self.runBy = runBy
    }

    /// How invoice lines find their account.
    var attribution: Attribution {
        if !accountMap.isEmpty { return .mapped(accountMap, only: account) }
        if let account { return .single(account) }
        return .none
    }
}

/// How invoice lines are put on accounts.
enum Attribution: Sendable {
    /// `--account A` with no map: every line is A's.
    case single(String)
    /// An account map; with `only`, lines of other accounts are out of scope.
    case mapped([String: String], only: String?)
    /// Neither: gaps are across every visible account and belong to none.
    case none

    /// The accounts whose meter is read, when the run is for specific ones.
    var account: String? {
        switch self {
        case let .single(a): return a
        case let .mapped(_, only): return only
        case .none: return nil
        }
    }

    var isPerAccount: Bool {
        if case .none = self { return false }
        return true
    }
}

/// The run stopped because the meter does not agree with itself (exit 3, HTTP 409).
public struct VerifyDrift: Error, Sendable, CustomStringConvertible {
    public var reports: [(account: String, report: VerifyReport)]
    public var description: String {
        let drift = reports.reduce(Int64(0)) { $0 + $1.report.drift }
        let corrupt = reports.reduce(0) { $0 + $1.report.segmentsCorrupt }
        return "verify found drift \(drift) and \(corrupt) corrupt segment(s) in \(reports.map(\.account).joined(separator: ", ")): "
            + "the problem is on our side; fix it (or pass --allow-drift) before comparing with the vendor"
    }
}
