/// A funded tranche as repayment apportionment sees it.
public struct FundedTranche: Hashable, Sendable {
    public var funderId: String
    public var kind: FunderKind
    public var shareBps: Int
    public var revenueTerms: RevenueTerms

    public init(funderId: String, kind: FunderKind, shareBps: Int, revenueTerms: RevenueTerms) {
        self.funderId = funderId
        self.kind = kind
        self.shareBps = shareBps
        self.revenueTerms = revenueTerms
    }
}

/// Who receives what of one repayment. Every part is exact; together they sum to what was paid.
public struct RepaymentSplit: Hashable, Sendable {
    public struct Part: Hashable, Sendable {
        public var funderId: String
        public var principalMinor: Int64
        public var interestMinor: Int64
    }

    public var parts: [Part]
    /// The platform's service fee: the residue of interest not earned by funders, plus penalties and fees.
    public var platformFeeMinor: Int64

    public var totalMinor: Int64 { parts.reduce(platformFeeMinor) { $0 + $1.principalMinor + $1.interestMinor } }

    /// Apportions a repayment (DOMAIN.md "Revenue split"): principal and interest by share with the
    /// largest-remainder method; a `fixedYield` funder earns `tranche interest × min(1, yield/rate)`
    /// rounded half to even; penalty interest and fees go to the platform; the fee is the residue.
    public static func apportion(
        principalMinor: Int64, interestMinor: Int64, penaltyAndFeesMinor: Int64 = 0,
        loanRateBps: Int, tranches: [FundedTranche]
    ) -> RepaymentSplit {
        precondition(!tranches.isEmpty, "apportion: no tranches")
        let weights = tranches.map { Int64($0.shareBps) }
        let principal = Apportionment.largestRemainder(principalMinor, weights: weights)
        let interest = Apportionment.largestRemainder(interestMinor, weights: weights)
        var parts: [Part] = []
        var fee = penaltyAndFeesMinor
        for (i, t) in tranches.enumerated() {
            var earned = interest[i]
            if case .fixedYield(let yieldBps) = t.revenueTerms, loanRateBps > 0, yieldBps < loanRateBps {
                earned = Apportionment.mulDivHalfEven(interest[i], Int64(yieldBps), Int64(loanRateBps))
            }
            fee += interest[i] - earned
            parts.append(Part(funderId: t.funderId, principalMinor: principal[i], interestMinor: earned))
        }
        return RepaymentSplit(parts: parts, platformFeeMinor: fee)
    }
}
