/// What a meter change asks of the dimensions its rollups keep (`PUT /v1/meters/{meter_id}`,
/// `usagebox meters set --rollup-dimensions`), read in one place for every store.
public enum KeptDimensionsChange: Sendable, Equatable {
    /// The member was left out: the kept dimensions stay as they are.
    case unchanged
    /// `["*"]`: rollups keep every dimension again.
    case all
    /// Only these names (NFC).
    case only(Set<String>)

    /// The one name that means every dimension.
    public static let every = "*"

    /// `nil` leaves the kept dimensions as they are; `["*"]` keeps every one; otherwise the names,
    /// 1–64 characters each. `*` beside names is refused: it was stored as a dimension named `*`,
    /// and the meter kept none of the dimensions its events carry.
    public init(_ names: [String]?) throws {
        guard let names else {
            self = .unchanged
            return
        }
        if names.contains(Self.every) {
            guard names.allSatisfy({ $0 == Self.every }) else {
                throw UsageBoxError.invalidArgument(
                    "rollup_dimensions is [\"*\"] (keep every dimension) or a list of names, not both", field: "rollup_dimensions")
            }
            self = .all
            return
        }
        let nfc = names.map(EventDecoder.nfc)
        guard !nfc.contains(where: { $0.isEmpty || $0.unicodeScalars.count > EventDecoder.maxDimensionKeyLength }) else {
            throw UsageBoxError.invalidArgument("rollup dimension names must be 1–64 characters", field: "rollup_dimensions")
        }
        self = .only(Set(nfc))
    }

    /// The kept names as stored (sorted), nil for every dimension; `current` when unchanged.
    public func applied(to current: Set<String>?) -> Set<String>? {
        switch self {
        case .unchanged: return current
        case .all: return nil
        case let .only(names): return names
        }
    }
}
