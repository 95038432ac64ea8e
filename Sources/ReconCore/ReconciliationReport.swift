public import ExactJSON
public import Foundation
public import Metering

/// The result of a reconciliation run (CONTRACT §5): what the JSON, table and Markdown show.
public struct ReconciliationReport: Sendable {
    public var id: String
    public var vendor: String
    public var accountID: String?
    public var range: TimeRange
    public var invoice: InvoiceSummary
    public var rateCard: (vendor: String, version: String, sha256: String)
    public var rules: (file: String, sha256: String)
    public var verify: (ok: Bool, mode: VerifyMode, drift: Int64)
    public var models: [ModelRow]
    public var total: (metered: Int64, vendor: Int64, gap: Int64)
    public var shape: GapShape
    public var impliedFactor: Decimal?
    public var unmeteredTokenTypes: [TokenType]
    public var findings: [Finding]
    public var unmapped: [Unmapped]
    public var corrections: [UsageEvent]
    public var applied: Bool
    public var runBy: String
    public var createdAt: Timestamp

    public struct InvoiceSummary: Sendable {
        public var sha256: String
        public var files: [(name: String, sha256: String, parser: String)]
        public var format: String
        public var currency: String
        public var lines: Int
        public var amount: Decimal
        public var unmappedAmount: Decimal
    }

    public struct TokenTypeRow: Sendable {
        public var tokenType: TokenType?
        public var metered: Int64
        public var vendor: Int64
        public var tolerance: Int64
        public var vendorAmount: Decimal
        public var gapAmount: Decimal
        public var gap: Int64 { vendor - metered }
    }

    public struct ModelRow: Sendable {
        public var modelID: String
        public var tokenTypes: [TokenTypeRow]
        public var metered: Int64 { tokenTypes.reduce(0) { $0 + $1.metered } }
        public var vendor: Int64 { tokenTypes.reduce(0) { $0 + $1.vendor } }
        public var gap: Int64 { vendor - metered }
        public var tolerance: Int64 { tokenTypes.reduce(0) { $0 + $1.tolerance } }
        public var vendorAmount: Decimal { tokenTypes.reduce(Decimal(0)) { $0 + $1.vendorAmount } }
        public var gapAmount: Decimal { tokenTypes.reduce(Decimal(0)) { $0 + $1.gapAmount } }
        public var beyondTolerance: Bool { gap.magnitude > UInt64(tolerance) }
    }

    public struct Finding: Sendable {
        public var modelID: String
        public var tokenType: TokenType?
        public var accountID: String?
        public var quantity: Int64
        public var amount: Decimal
        public var gapClass: GapClass
        public var rule: String
        public var reason: String
    }

    public struct Unmapped: Sendable {
        public var location: String
        public var description: String?
        public var vendorModel: String?
        public var vendorTokenType: String?
        public var amount: Decimal?
        public var currency: String
        public var reason: String
    }

    /// `gap / metered × 100` with two decimals; nil when nothing was metered.
    public static func gapPercent(gap: Int64, metered: Int64) -> String? {
        guard metered != 0 else { return nil }
        return ExactDecimal.format(Decimal(exactly: gap) * 100 / Decimal(exactly: metered), scale: 2)
    }

    public var jsonValue: JSONValue {
        func money(_ d: Decimal) -> JSONValue { .string(ExactDecimal.format(d)) }
        let modelsJSON: [JSONValue] = models.map { m in
            .object([
                ("model_id", .string(m.modelID)), ("metered", .int(m.metered)), ("vendor", .int(m.vendor)), ("gap", .int(m.gap)),
                ("gap_pct", Self.gapPercent(gap: m.gap, metered: m.metered).map(JSONValue.string) ?? .null),
                ("tolerance", .int(m.tolerance)), ("vendor_amount", money(m.vendorAmount)), ("gap_amount", money(m.gapAmount)),
                ("token_types", .array(m.tokenTypes.map { t in
                    .object([
                        ("token_type", .optionalString(t.tokenType?.rawValue)), ("metered", .int(t.metered)), ("vendor", .int(t.vendor)),
                        ("gap", .int(t.gap)), ("gap_pct", Self.gapPercent(gap: t.gap, metered: t.metered).map(JSONValue.string) ?? .null),
                        ("tolerance", .int(t.tolerance)), ("vendor_amount", money(t.vendorAmount)), ("gap_amount", money(t.gapAmount)),
                    ])
                })),
            ])
        }
        var members: [(String, JSONValue)] = [
            ("id", .string(id)), ("vendor", .string(vendor)), ("account_id", .optionalString(accountID)),
            ("from", .string(range.from.rfc3339)), ("to", .string(range.to.rfc3339)),
            ("invoice", .object([
                ("sha256", .string(invoice.sha256)), ("format", .string(invoice.format)), ("currency", .string(invoice.currency)),
                ("lines", .int(invoice.lines)), ("amount", .string(ExactDecimal.text(invoice.amount))),
                ("unmapped_amount", .string(ExactDecimal.text(invoice.unmappedAmount))),
                ("files", .array(invoice.files.map {
                    .object([("name", .string($0.name)), ("sha256", .string($0.sha256)), ("parser", .string($0.parser))])
                })),
            ])),
            ("rate_card", .object([("vendor", .string(rateCard.vendor)), ("version", .string(rateCard.version)),
                                   ("sha256", .string(rateCard.sha256))])),
            ("rules", .object([("file", .string(rules.file)), ("sha256", .string(rules.sha256))])),
            ("verify", .object([("ok", .bool(verify.ok)), ("mode", .string(verify.mode.rawValue)), ("drift", .int(verify.drift))])),
            ("models", .array(modelsJSON)),
            ("total", .object([("metered", .int(total.metered)), ("vendor", .int(total.vendor)), ("gap", .int(total.gap))])),
            ("shape", .string(shape.rawValue)),
        ]
        if let impliedFactor { members.append(("implied_factor", .string(ExactDecimal.format(impliedFactor, scale: 4)))) }
        members += [
            ("unmetered_token_types", .array(unmeteredTokenTypes.map { .string($0.rawValue) })),
            ("findings", .array(findings.map { f in
                .object([
                    ("model_id", .string(f.modelID)), ("token_type", .optionalString(f.tokenType?.rawValue)),
                    ("account_id", .optionalString(f.accountID)), ("quantity", .int(f.quantity)), ("amount", money(f.amount)),
                    ("class", .string(f.gapClass.rawValue)), ("rule", .string(f.rule)), ("reason", .string(f.reason)),
                ])
            })),
            ("unmapped", .array(unmapped.map { u in
                .object([
                    ("location", .string(u.location)), ("description", .optionalString(u.description)),
                    ("vendor_model", .optionalString(u.vendorModel)), ("vendor_token_type", .optionalString(u.vendorTokenType)),
                    ("amount", u.amount.map { .string(ExactDecimal.text($0)) } ?? .null), ("currency", .string(u.currency)),
                    ("reason", .string(u.reason)),
                ])
            })),
            ("corrections", .array(corrections.map(\.jsonValue))),
            ("applied", .bool(applied)),
            ("run_by", .string(runBy)), ("created_at", .string(createdAt.rfc3339)),
        ]
        return .object(members)
    }
}
