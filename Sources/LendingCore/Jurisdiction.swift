/// A regulatory profile: floors and caps the router enforces on every plan (DOMAIN.md).
public struct JurisdictionProfile: Hashable, Sendable {
    public var code: String
    /// The platform's own pools must fund at least this share of every joint loan (CN: 3000).
    public var platformMinShareBps: Int
    /// Every lender in a joint loan must keep at least this share (IN: 1000).
    public var lenderMinShareBps: Int
    /// Outstanding principal one borrower may have, this loan included (CN: RMB 200,000). nil: none.
    public var perBorrowerCapMinor: Int64?
    /// Default-loss guarantee cap as bps of the partner's funded principal (IN: 500; 0 forbids).
    public var guaranteeCapBpsMax: Int
    /// Longest a partner may take to commit its tranche, so the longest funding deadline a
    /// configuration may set (IN: 15 days, after which the deal is a loan transfer). nil: none.
    public var partnerCommitmentSecondsMax: Int64?

    public init(code: String, platformMinShareBps: Int = 0, lenderMinShareBps: Int = 0, perBorrowerCapMinor: Int64? = nil, guaranteeCapBpsMax: Int = 10_000,
                partnerCommitmentSecondsMax: Int64? = nil) {
        self.code = code
        self.platformMinShareBps = platformMinShareBps
        self.lenderMinShareBps = lenderMinShareBps
        self.perBorrowerCapMinor = perBorrowerCapMinor
        self.guaranteeCapBpsMax = guaranteeCapBpsMax
        self.partnerCommitmentSecondsMax = partnerCommitmentSecondsMax
    }

    /// CBIRC 2021 internet joint lending: platform ≥ 30% of each joint loan; 2020 interim measures:
    /// RMB 200,000 of consumer credit per borrower.
    public static let cn = JurisdictionProfile(code: "CN", platformMinShareBps: 3_000, perBorrowerCapMinor: 20_000_000)
    /// RBI co-lending directions 2025: each lender keeps ≥ 10%; default-loss guarantee ≤ 5%; the
    /// partner commits within 15 days.
    public static let `in` = JurisdictionProfile(code: "IN", lenderMinShareBps: 1_000, guaranteeCapBpsMax: 500, partnerCommitmentSecondsMax: 15 * 86_400)
    /// No floors.
    public static let none = JurisdictionProfile(code: "NONE")

    public static func named(_ code: String) -> JurisdictionProfile? {
        switch code {
        case "CN": return .cn
        case "IN": return .in
        case "NONE": return JurisdictionProfile.none
        default: return nil
        }
    }
}
