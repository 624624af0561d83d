@testable import LendingCore

typealias SeededGenerator = SplitMix64

enum Fixture {
    static let now: Int64 = 1_800_000_000

    static func loan(
        _ id: String = "L-1", amount: Int64 = 1_000_000, term: Int = 12, rate: Int = 1800, product: String = "consumer",
        grade: String = "B", region: String = "GD", channel: String = "app", borrower: String = "B-1", approvedAt: Int64 = now
    ) -> Loan {
        Loan(loanId: id, borrowerRef: borrower, amountMinor: amount, currency: .cny, termMonths: term, annualRateBps: rate,
             product: product, riskGrade: grade, region: region, channel: channel, approvedAt: approvedAt)
    }

    static func pool(_ id: String) -> Funder { Funder(id: id, kind: .pool, name: id) }

    static func partner(_ id: String, limits: FunderLimits = FunderLimits(), eligibility: Eligibility = Eligibility(), terms: RevenueTerms = .proRata) -> Funder {
        Funder(id: id, kind: .partner, name: id, licenceNumber: "LIC-\(id)", limits: limits, eligibility: eligibility, revenueTerms: terms)
    }

    static func funders(_ list: [Funder]) -> [String: Funder] {
        Dictionary(uniqueKeysWithValues: list.map { ($0.id, $0) })
    }

    /// Ample capacity for every funder.
    static func ample(_ funders: [String: Funder]) -> CapacitySnapshot {
        CapacitySnapshot(funders: funders.mapValues { _ in FunderCapacity(availableMinor: .max / 4) })
    }

    static func router(_ rules: [RatioRule], default d: RatioRule? = nil, funders: [Funder], jurisdiction: JurisdictionProfile = .none) -> Router {
        Router(ruleSet: RuleSet(version: 1, rules: rules, defaultRule: d), funders: Self.funders(funders), jurisdiction: jurisdiction)
    }
}

extension RoutingDecision {
    var plan: FundingPlan? { if case .planned(let p) = self { return p } else { return nil } }
    var rejection: Rejection? { if case .rejected(let r) = self { return r } else { return nil } }
}
