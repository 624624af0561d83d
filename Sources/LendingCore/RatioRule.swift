/// One funder's part in a rule: a share (co-funding) or a weight (allocation), in basis points.
public struct Share: Hashable, Sendable {
    public var funderId: String
    public var bps: Int
    public init(_ funderId: String, _ bps: Int) {
        self.funderId = funderId
        self.bps = bps
    }
}

/// How a matched loan is funded (DOMAIN.md, "Two ways to fund").
public enum FundingMode: Hashable, Sendable {
    /// Split every loan by fixed shares summing to 10,000 bps (largest remainder).
    case coFunding([Share])
    /// Give each loan whole to one funder; over time amounts follow the weights (largest deficit).
    case allocation([Share])
    /// Fixed shares (e.g. the pool's 30%) plus the rest allocated whole to one of `allocated`.
    case mixed(fixed: [Share], allocated: [Share])

    /// The fixed shares, and the part (bps) given to the allocated funder.
    var fixedShares: [Share] {
        switch self {
        case .coFunding(let s): return s
        case .allocation: return []
        case .mixed(let fixed, _): return fixed
        }
    }

    var allocatedWeights: [Share] {
        switch self {
        case .coFunding: return []
        case .allocation(let w): return w
        case .mixed(_, let w): return w
        }
    }
}

/// Which loans a rule matches. `nil` means "any".
public struct LoanPredicate: Hashable, Sendable {
    public var products: Set<String>?
    public var amountMinMinor: Int64?
    public var amountMaxMinor: Int64?
    public var termMonthsMin: Int?
    public var termMonthsMax: Int?
    public var riskGrades: Set<String>?
    public var regions: Set<String>?
    public var channels: Set<String>?

    public init(
        products: Set<String>? = nil, amountMinMinor: Int64? = nil, amountMaxMinor: Int64? = nil,
        termMonthsMin: Int? = nil, termMonthsMax: Int? = nil, riskGrades: Set<String>? = nil,
        regions: Set<String>? = nil, channels: Set<String>? = nil
    ) {
        self.products = products
        self.amountMinMinor = amountMinMinor
        self.amountMaxMinor = amountMaxMinor
        self.termMonthsMin = termMonthsMin
        self.termMonthsMax = termMonthsMax
        self.riskGrades = riskGrades
        self.regions = regions
        self.channels = channels
    }

    public static let any = LoanPredicate()

    public func matches(_ loan: Loan) -> Bool {
        if let p = products, !p.contains(loan.product) { return false }
        if let m = amountMinMinor, loan.amountMinor < m { return false }
        if let m = amountMaxMinor, loan.amountMinor > m { return false }
        if let m = termMonthsMin, loan.termMonths < m { return false }
        if let m = termMonthsMax, loan.termMonths > m { return false }
        if let g = riskGrades, !g.contains(loan.riskGrade) { return false }
        if let r = regions, !r.contains(loan.region) { return false }
        if let c = channels, !c.contains(loan.channel) { return false }
        return true
    }
}

/// A treasury-owned rule: which loans, how they are funded, and who takes a tranche a funder cannot.
public struct RatioRule: Hashable, Sendable {
    public var id: String
    public var predicate: LoanPredicate
    public var mode: FundingMode
    /// Funders that take a tranche its planned funder cannot, tried in order.
    public var fallbacks: [String]

    public init(id: String, predicate: LoanPredicate = .any, mode: FundingMode, fallbacks: [String] = []) {
        self.id = id
        self.predicate = predicate
        self.mode = mode
        self.fallbacks = fallbacks
    }
}

/// An ordered, versioned set of rules: first match wins, then the default rule (if any).
public struct RuleSet: Hashable, Sendable {
    public var version: Int
    public var rules: [RatioRule]
    public var defaultRule: RatioRule?

    public init(version: Int, rules: [RatioRule], defaultRule: RatioRule?) {
        self.version = version
        self.rules = rules
        self.defaultRule = defaultRule
    }

    /// Named bounds: a rule set larger than this is refused.
    public static let rulesMax = 1_000
    public static let sharesPerRuleMax = 16

    public func rule(id: String) -> RatioRule? {
        if let d = defaultRule, d.id == id { return d }
        return rules.first { $0.id == id }
    }

    /// Every problem with this rule set against the known funders, each with a path and a message.
    /// Empty when the rule set is sound.
    public func validationProblems(funders: [String: Funder]) -> [(path: String, message: String)] {
        var problems: [(String, String)] = []
        if version < 1 { problems.append(("version", "must be ≥ 1")) }
        if rules.count > RuleSet.rulesMax { problems.append(("rules", "more than \(RuleSet.rulesMax) rules")) }
        var seen = Set<String>()
        var all: [(String, RatioRule)] = rules.enumerated().map { ("rules[\($0.offset)]", $0.element) }
        if let d = defaultRule { all.append(("defaultRule", d)) }
        for (path, rule) in all {
            if rule.id.isEmpty { problems.append(("\(path).id", "must not be empty")) }
            if !seen.insert(rule.id).inserted { problems.append(("\(path).id", "duplicate rule id '\(rule.id)'")) }
            let p = rule.predicate
            if let lo = p.amountMinMinor, let hi = p.amountMaxMinor, lo > hi {
                problems.append(("\(path).match.amountMinMinor", "greater than amountMaxMinor"))
            }
            if let lo = p.termMonthsMin, let hi = p.termMonthsMax, lo > hi {
                problems.append(("\(path).match.termMonthsMin", "greater than termMonthsMax"))
            }
            let fixed = rule.mode.fixedShares
            let weights = rule.mode.allocatedWeights
            if fixed.count + weights.count > RuleSet.sharesPerRuleMax {
                problems.append(("\(path).funding", "more than \(RuleSet.sharesPerRuleMax) funders"))
            }
            func checkShares(_ shares: [Share], _ name: String) {
                var ids = Set<String>()
                for (i, s) in shares.enumerated() {
                    if funders[s.funderId] == nil {
                        problems.append(("\(path).funding.\(name)[\(i)].funderId", "unknown funder '\(s.funderId)'"))
                    }
                    if !ids.insert(s.funderId).inserted {
                        problems.append(("\(path).funding.\(name)[\(i)].funderId", "funder '\(s.funderId)' listed twice"))
                    }
                    if s.bps <= 0 || s.bps > 10_000 {
                        problems.append(("\(path).funding.\(name)[\(i)].bps", "must be 1...10000"))
                    }
                }
            }
            switch rule.mode {
            case .coFunding(let shares):
                checkShares(shares, "shares")
                if shares.isEmpty { problems.append(("\(path).funding.shares", "must not be empty")) }
                let sum = shares.reduce(0) { $0 + $1.bps }
                if sum != 10_000 { problems.append(("\(path).funding.shares", "bps sum to \(sum), expected 10000")) }
            case .allocation(let w):
                checkShares(w, "weights")
                if w.isEmpty { problems.append(("\(path).funding.weights", "must not be empty")) }
                let sum = w.reduce(0) { $0 + $1.bps }
                if sum != 10_000 { problems.append(("\(path).funding.weights", "bps sum to \(sum), expected 10000")) }
            case .mixed(let fixed, let w):
                checkShares(fixed, "fixed")
                checkShares(w, "weights")
                if w.isEmpty { problems.append(("\(path).funding.weights", "must not be empty")) }
                let fixedSum = fixed.reduce(0) { $0 + $1.bps }
                if fixedSum <= 0 || fixedSum >= 10_000 {
                    problems.append(("\(path).funding.fixed", "bps sum to \(fixedSum), expected 1...9999"))
                }
                let sum = w.reduce(0) { $0 + $1.bps }
                if sum != 10_000 { problems.append(("\(path).funding.weights", "bps sum to \(sum), expected 10000")) }
            }
            for (i, f) in rule.fallbacks.enumerated() where funders[f] == nil {
                problems.append(("\(path).fallbacks[\(i)]", "unknown funder '\(f)'"))
            }
        }
        return problems
    }
}
