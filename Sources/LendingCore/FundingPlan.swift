/// One funder's planned part of a loan.
public struct PlannedTranche: Hashable, Sendable {
    public var funderId: String
    public var kind: FunderKind
    /// The share of the loan this tranche stands for, in basis points (from the rule).
    public var shareBps: Int
    public var amountMinor: Int64

    public init(funderId: String, kind: FunderKind, shareBps: Int, amountMinor: Int64) {
        self.funderId = funderId
        self.kind = kind
        self.shareBps = shareBps
        self.amountMinor = amountMinor
    }
}

/// The tranches of a loan. Their amounts sum exactly to the loan amount.
public struct FundingPlan: Hashable, Sendable {
    public var loanId: String
    public var ruleId: String
    public var ruleVersion: Int
    public var tranches: [PlannedTranche]
    /// Present when the rule allocated part of the loan to a weighted funder.
    public var allocation: AllocationUpdate?
}

/// Stable reason codes for a loan the router will not fund. Clients and dashboards key on these.
public enum RejectionCode: String, Hashable, Sendable, CaseIterable {
    case noRuleMatched = "no_rule_matched"
    case floorViolated = "floor_violated"
    case noCapacity = "no_capacity"
    case borrowerLimitExceeded = "borrower_limit_exceeded"
    case invalidLoan = "invalid_loan"
    case deadlinePassed = "deadline_passed"
}

/// Why a loan (or a re-routed tranche) cannot be funded: a stable code and a human detail.
/// The detail names funders and rules, never borrower data.
public struct Rejection: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: RejectionCode
    public var detail: String
    public var ruleId: String?
    public var ruleVersion: Int?

    public init(_ code: RejectionCode, _ detail: String, ruleId: String? = nil, ruleVersion: Int? = nil) {
        self.code = code
        self.detail = detail
        self.ruleId = ruleId
        self.ruleVersion = ruleVersion
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}

/// The router's answer for a new loan.
public enum RoutingDecision: Hashable, Sendable {
    case planned(FundingPlan)
    case rejected(Rejection)
}

/// The router's answer for a declined or expired tranche.
public enum RerouteDecision: Hashable, Sendable {
    /// A new tranche for the next fallback funder that can take it.
    case rerouted(PlannedTranche)
    /// No funder can take it, or a floor would break: the loan becomes unfunded.
    case unfunded(Rejection)
}

/// One funder's part of one loan, with its state. Changes go through `transition(to:)`, which
/// refuses an illegal move with an error value and leaves the tranche as it was.
public struct Tranche: Hashable, Sendable {
    public var id: Int64
    public var loanId: String
    public var funderId: String
    public var kind: FunderKind
    public var shareBps: Int
    public var amountMinor: Int64
    public private(set) var state: TrancheState

    public init(id: Int64, loanId: String, planned: PlannedTranche, state: TrancheState = .planned) {
        self.id = id
        self.loanId = loanId
        funderId = planned.funderId
        kind = planned.kind
        shareBps = planned.shareBps
        amountMinor = planned.amountMinor
        self.state = state
    }

    public var planned: PlannedTranche {
        PlannedTranche(funderId: funderId, kind: kind, shareBps: shareBps, amountMinor: amountMinor)
    }

    @discardableResult
    public mutating func transition(to next: TrancheState) -> Result<TrancheState, TransitionError> {
        let result = state.transition(to: next)
        if case .success(let s) = result { state = s }
        return result
    }
}
