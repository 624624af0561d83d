/// Who can fund a tranche: the platform's own capital pool or a licensed partner lender.
public enum FunderKind: String, Hashable, Sendable {
    case pool
    case partner
}

/// How a funder earns interest on its tranche (DOMAIN.md, "Revenue split").
public enum RevenueTerms: Hashable, Sendable {
    /// Interest in proportion to the funder's share.
    case proRata
    /// The agreed yield on principal; the rest of the tranche's interest is the platform's fee.
    case fixedYield(yieldBps: Int)
}

/// Loss sharing on charge-off (DOMAIN.md, "Risk").
public struct RiskTerms: Hashable, Sendable {
    /// The part of its tranche's outstanding principal the partner bears.
    public var lossShareBps: Int
    /// The platform's guarantee cap, as bps of the principal the partner has funded.
    public var guaranteeCapBps: Int

    public init(lossShareBps: Int = 10_000, guaranteeCapBps: Int = 500) {
        self.lossShareBps = lossShareBps
        self.guaranteeCapBps = guaranteeCapBps
    }
}

/// A funder's limits. `nil` means "no limit of this kind".
public struct FunderLimits: Hashable, Sendable {
    public var perLoanMinMinor: Int64?
    public var perLoanMaxMinor: Int64?
    /// Partners: the most they fund per business day.
    public var dailyQuotaMinor: Int64?
    /// Partners: the most outstanding principal (the jurisdiction's concentration caps go here).
    public var exposureLimitMinor: Int64?

    public init(perLoanMinMinor: Int64? = nil, perLoanMaxMinor: Int64? = nil, dailyQuotaMinor: Int64? = nil, exposureLimitMinor: Int64? = nil) {
        self.perLoanMinMinor = perLoanMinMinor
        self.perLoanMaxMinor = perLoanMaxMinor
        self.dailyQuotaMinor = dailyQuotaMinor
        self.exposureLimitMinor = exposureLimitMinor
    }
}

/// What a funder accepts. `nil` means "any".
public struct Eligibility: Hashable, Sendable {
    public var riskGrades: Set<String>?
    public var regions: Set<String>?
    public var products: Set<String>?

    public init(riskGrades: Set<String>? = nil, regions: Set<String>? = nil, products: Set<String>? = nil) {
        self.riskGrades = riskGrades
        self.regions = regions
        self.products = products
    }

    public func accepts(_ loan: Loan) -> Bool {
        if let g = riskGrades, !g.contains(loan.riskGrade) { return false }
        if let r = regions, !r.contains(loan.region) { return false }
        if let p = products, !p.contains(loan.product) { return false }
        return true
    }
}

/// A pool or a partner lender, with everything the router checks before planning a tranche.
public struct Funder: Hashable, Sendable {
    public var id: String
    public var kind: FunderKind
    public var name: String
    public var licenceNumber: String?
    public var currency: Currency
    public var limits: FunderLimits
    public var eligibility: Eligibility
    public var revenueTerms: RevenueTerms
    public var riskTerms: RiskTerms

    public init(
        id: String, kind: FunderKind, name: String, licenceNumber: String? = nil, currency: Currency = .cny,
        limits: FunderLimits = FunderLimits(), eligibility: Eligibility = Eligibility(),
        revenueTerms: RevenueTerms = .proRata, riskTerms: RiskTerms = RiskTerms()
    ) {
        self.id = id
        self.kind = kind
        self.name = name
        self.licenceNumber = licenceNumber
        self.currency = currency
        self.limits = limits
        self.eligibility = eligibility
        self.revenueTerms = revenueTerms
        self.riskTerms = riskTerms
    }
}
