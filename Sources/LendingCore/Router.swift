/// Decides who funds a loan. A pure function of (rule set, funders, jurisdiction, capacities,
/// allocation totals, loan, time): the same inputs always give the same decision.
///
/// The rule set is compiled once at init: predicate strings become bit masks over interned
/// values, so matching a loan against fifty rules costs four dictionary look-ups and a few bit
/// tests per rule rather than fifty rounds of string hashing.
public final class Router: Sendable {
    public let ruleSet: RuleSet
    public let funders: [String: Funder]
    public let jurisdiction: JurisdictionProfile
    /// How long after approval a loan must reach a final funding state.
    public let fundingDeadlineSeconds: Int64

    private let compiled: [CompiledRule]
    private let compiledDefault: CompiledRule?
    private let plans: [RulePlan]
    private let defaultPlan: RulePlan?
    private let products: StringTable
    private let grades: StringTable
    private let regions: StringTable
    private let channels: StringTable

    public init(ruleSet: RuleSet, funders: [String: Funder], jurisdiction: JurisdictionProfile, fundingDeadlineSeconds: Int64 = 7_200) {
        self.ruleSet = ruleSet
        self.funders = funders
        self.jurisdiction = jurisdiction
        self.fundingDeadlineSeconds = fundingDeadlineSeconds
        var products: [String: Int] = [:], grades: [String: Int] = [:], regions: [String: Int] = [:], channels: [String: Int] = [:]
        func intern(_ values: Set<String>?, _ table: inout [String: Int]) -> BitMask? {
            guard let values else { return nil }
            var mask = BitMask()
            for v in values.sorted() {
                let index: Int
                if let i = table[v] { index = i } else { index = table.count; table[v] = index }
                mask.insert(index)
            }
            return mask
        }
        func compile(_ rule: RatioRule, _ index: Int) -> CompiledRule {
            let p = rule.predicate
            return CompiledRule(
                ruleIndex: index,
                products: intern(p.products, &products), grades: intern(p.riskGrades, &grades),
                regions: intern(p.regions, &regions), channels: intern(p.channels, &channels),
                amountMin: p.amountMinMinor ?? .min, amountMax: p.amountMaxMinor ?? .max,
                termMin: p.termMonthsMin ?? .min, termMax: p.termMonthsMax ?? .max)
        }
        compiled = ruleSet.rules.enumerated().map { compile($0.element, $0.offset) }
        compiledDefault = ruleSet.defaultRule.map { compile($0, -1) }
        let boxes = funders.mapValues(FunderBox.init)
        plans = ruleSet.rules.map { RulePlan($0, boxes) }
        defaultPlan = ruleSet.defaultRule.map { RulePlan($0, boxes) }
        self.products = StringTable(products)
        self.grades = StringTable(grades)
        self.regions = StringTable(regions)
        self.channels = StringTable(channels)
    }

    /// The unix second by which a loan approved at `approvedAt` must be final.
    public func deadline(forApprovedAt approvedAt: Int64) -> Int64 { approvedAt + fundingDeadlineSeconds }

    /// The first rule matching `loan`, else the default rule, else nil.
    public func matchingRule(for loan: Loan) -> RatioRule? {
        matchIndex(for: loan).map { $0 < 0 ? ruleSet.defaultRule! : ruleSet.rules[$0] }
    }

    /// The index of the first matching rule, -1 for the default rule, nil for none.
    private func matchIndex(for loan: Loan) -> Int? {
        let p = products.index(of: loan.product), g = grades.index(of: loan.riskGrade)
        let r = regions.index(of: loan.region), c = channels.index(of: loan.channel)
        // Borrow the compiled rules in place: copying each one per loan would cost more than matching.
        let index = compiled.withUnsafeBufferPointer { rules -> Int? in
            for i in rules.indices where rules[i].matches(loan, product: p, grade: g, region: r, channel: c) { return i }
            return nil
        }
        if let index { return index }
        return compiledDefault == nil ? nil : -1
    }

    // MARK: - Routing a new loan

    public func route(loan: Loan, capacities: CapacitySnapshot, allocations: AllocationTotals, now: Int64) -> RoutingDecision {
        if let problem = loan.routingProblem() {
            return .rejected(Rejection(.invalidLoan, "\(problem.field) \(problem.message)"))
        }
        if now >= deadline(forApprovedAt: loan.approvedAt) {
            return .rejected(Rejection(.deadlinePassed, "funding deadline passed before routing"))
        }
        if let cap = jurisdiction.perBorrowerCapMinor {
            let (total, overflow) = capacities.borrowerOutstandingMinor.addingReportingOverflow(loan.amountMinor)
            if overflow || total > cap {
                return .rejected(Rejection(.borrowerLimitExceeded, "borrower would owe more than the \(jurisdiction.code) cap of \(cap) minor units"))
            }
        }
        guard let ruleIndex = matchIndex(for: loan) else {
            return .rejected(Rejection(.noRuleMatched, "no rule in version \(ruleSet.version) matches and there is no default rule", ruleVersion: ruleSet.version))
        }
        let compiledRule = ruleIndex < 0 ? defaultPlan! : plans[ruleIndex]
        let rule = compiledRule.rule
        let version = ruleSet.version
        func reject(_ code: RejectionCode, _ detail: String) -> RoutingDecision {
            .rejected(Rejection(code, detail, ruleId: rule.id, ruleVersion: version))
        }

        let fixed = compiledRule.fixed
        let weights = compiledRule.weights
        let fixedSum = compiledRule.fixedSum
        let amounts = Apportionment.largestRemainder(loan.amountMinor, weights: compiledRule.slotBps)

        var tranches: [PlannedTranche] = []
        tranches.reserveCapacity(compiledRule.slotBps.count)
        for (i, share) in fixed.enumerated() where amounts[i] > 0 {
            let funder: FunderBox
            let why = canTake(compiledRule.fixedFunders[i], amounts[i], loan, capacities, planned: tranches, reservedInSnapshot: false)
            if why == nil, let f = compiledRule.fixedFunders[i] {
                funder = f
            } else if let fb = firstFallback(compiledRule, excluding: [share.funderId], amounts[i], loan, capacities, planned: tranches, reservedInSnapshot: false) {
                funder = fb
            } else {
                return reject(.noCapacity, "funder '\(share.funderId)' cannot take its tranche (\(why ?? "")) and no fallback can")
            }
            tranches.append(PlannedTranche(funderId: funder.id, kind: funder.kind, shareBps: share.bps, amountMinor: amounts[i]))
        }

        var allocation: AllocationUpdate?
        if !weights.isEmpty, let part = amounts.last, part > 0 {
            let key = AllocationKey(ruleId: rule.id, ruleVersion: version)
            let partBps = 10_000 - fixedSum
            let entry = allocations.byRule[key]
            // Largest deficit w_f·(T + a) − 10000·T_f among funders that can take the part; ties
            // to the earlier funder. 128-bit arithmetic: no overflow for any Int64 totals.
            let t = Int128(entry?.totalMinor ?? 0) + Int128(part)
            var chosen: Int?
            var best = Int128.min
            for k in weights.indices {
                let tf = Int128(entry?.allocatedMinor(weights[k].funderId) ?? 0)
                let deficit = Int128(weights[k].bps) * t - 10_000 * tf
                if chosen != nil && best >= deficit { continue }
                guard canTake(compiledRule.weightFunders[k], part, loan, capacities, planned: tranches, reservedInSnapshot: false) == nil else { continue }
                chosen = k
                best = deficit
            }
            if let chosen, let funder = compiledRule.weightFunders[chosen] {
                tranches.append(PlannedTranche(funderId: funder.id, kind: funder.kind, shareBps: partBps, amountMinor: part))
                allocation = AllocationUpdate(key: key, funderId: funder.id, amountMinor: part)
            } else if let fb = firstFallback(compiledRule, excluding: Set(weights.map(\.funderId)), part, loan, capacities, planned: tranches, reservedInSnapshot: false) {
                tranches.append(PlannedTranche(funderId: fb.id, kind: fb.kind, shareBps: partBps, amountMinor: part))
            } else {
                return reject(.noCapacity, "no weighted funder and no fallback can take the allocated part")
            }
        }

        if let violation = floorViolation(tranches, loanAmountMinor: loan.amountMinor) {
            return reject(.floorViolated, violation)
        }
        return .planned(FundingPlan(loanId: loan.loanId, ruleId: rule.id, ruleVersion: version, tranches: tranches, allocation: allocation))
    }

    // MARK: - Re-routing a declined or expired tranche

    /// Finds a new funder for `failed` among the rule's fallbacks, skipping every funder in
    /// `excluded` (those that already declined or expired for this loan). `active` are the loan's
    /// other tranches still planned, requested or funded. The capacity snapshot is taken to
    /// include those active tranches already (the store reserved them).
    public func reroute(
        loan: Loan, ruleId: String, failed: PlannedTranche, active: [PlannedTranche], excluded: Set<String>,
        capacities: CapacitySnapshot, now: Int64
    ) -> RerouteDecision {
        let compiledRule: RulePlan
        if let d = defaultPlan, ruleSet.defaultRule?.id == ruleId {
            compiledRule = d
        } else if let i = ruleSet.rules.firstIndex(where: { $0.id == ruleId }) {
            compiledRule = plans[i]
        } else {
            return .unfunded(Rejection(.noRuleMatched, "rule '\(ruleId)' is not in version \(ruleSet.version)", ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        if now >= deadline(forApprovedAt: loan.approvedAt) {
            return .unfunded(Rejection(.deadlinePassed, "funding deadline passed", ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        var skip = excluded
        skip.insert(failed.funderId)
        guard let fb = firstFallback(compiledRule, excluding: skip, failed.amountMinor, loan, capacities, planned: active, reservedInSnapshot: true) else {
            return .unfunded(Rejection(.noCapacity, "no fallback funder can take the tranche of '\(failed.funderId)'", ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        let tranche = PlannedTranche(funderId: fb.id, kind: fb.kind, shareBps: failed.shareBps, amountMinor: failed.amountMinor)
        if let violation = floorViolation(active + [tranche], loanAmountMinor: loan.amountMinor) {
            return .unfunded(Rejection(.floorViolated, violation, ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        return .rerouted(tranche)
    }

    // MARK: - Checks

    /// nil when `funderId` can take `amount` of `loan` on top of what it holds in `planned`;
    /// otherwise why not. With `reservedInSnapshot`, the snapshot already counts `planned`.
    func canTake(
        _ box: FunderBox?, _ amount: Int64, _ loan: Loan, _ capacities: CapacitySnapshot,
        planned: [PlannedTranche], reservedInSnapshot: Bool
    ) -> String? {
        // Fields are read through the box, never copied out as a whole `Funder` (a dozen retains).
        guard let box else { return "unknown funder" }
        if !capacities.unavailable.isEmpty, capacities.unavailable.contains(box.id) { return "unavailable" }
        if box.currencyCode != loan.currency.code { return "currency \(box.currencyCode) differs" }
        if let e = box.eligibility, !e.accepts(loan) { return "does not accept this grade, region or product" }
        var held: Int64 = 0
        for t in planned where t.funderId == box.id { held += t.amountMinor }
        let onLoan = held + amount
        let limits = box.limits
        if let m = limits.perLoanMinMinor, onLoan < m { return "below its per-loan minimum" }
        if let m = limits.perLoanMaxMinor, onLoan > m { return "above its per-loan maximum" }
        guard let cap = capacities.funders[box.id] else { return "no capacity known" }
        let needed = reservedInSnapshot ? amount : onLoan
        switch box.kind {
        case .pool:
            if cap.availableMinor < needed { return "pool balance too low" }
        case .partner:
            if let q = limits.dailyQuotaMinor, cap.quotaUsedTodayMinor > q - needed { return "daily quota exhausted" }
            if let e = limits.exposureLimitMinor, cap.exposureMinor > e - needed { return "exposure limit reached" }
        }
        return nil
    }

    private func firstFallback(
        _ rule: RulePlan, excluding: Set<String>, _ amount: Int64, _ loan: Loan, _ capacities: CapacitySnapshot,
        planned: [PlannedTranche], reservedInSnapshot: Bool
    ) -> FunderBox? {
        for case let f? in rule.fallbackFunders where !excluding.contains(f.id) {
            if canTake(f, amount, loan, capacities, planned: planned, reservedInSnapshot: reservedInSnapshot) == nil { return f }
        }
        return nil
    }

    /// The jurisdiction's floors for a joint loan (two or more distinct funders), or nil when they hold.
    /// A floor of `bps` on an amount is `floor(amount × bps / 10000)` whole minor units: a fraction
    /// of a fen cannot be funded, so a 30/70 split of 1,000,001 fen (300,000 / 700,001) holds 30%.
    func floorViolation(_ tranches: [PlannedTranche], loanAmountMinor: Int64) -> String? {
        // Plans have a handful of tranches: nested loops beat building a per-funder table.
        var poolTotal: Int64 = 0
        var distinct = 0
        for (i, t) in tranches.enumerated() {
            if t.kind == .pool { poolTotal += t.amountMinor }
            var seenBefore = false
            for j in 0..<i where tranches[j].funderId == t.funderId { seenBefore = true; break }
            if !seenBefore { distinct += 1 }
        }
        guard distinct >= 2 else { return nil }
        func floorMinor(_ bps: Int) -> Int64 { Int64(Int128(loanAmountMinor) * Int128(bps) / 10_000) }
        if jurisdiction.platformMinShareBps > 0, poolTotal < floorMinor(jurisdiction.platformMinShareBps) {
            return "\(jurisdiction.code) requires the platform to fund at least \(jurisdiction.platformMinShareBps) bps of a joint loan"
        }
        if jurisdiction.lenderMinShareBps > 0 {
            let minimum = floorMinor(jurisdiction.lenderMinShareBps)
            for t in tranches {
                var total: Int64 = 0
                for u in tranches where u.funderId == t.funderId { total += u.amountMinor }
                if total < minimum {
                    return "\(jurisdiction.code) requires every lender to keep at least \(jurisdiction.lenderMinShareBps) bps; '\(t.funderId)' would not"
                }
            }
        }
        return nil
    }
}

/// A funder behind one reference, so the hot path copies a pointer rather than a dozen fields.
final class FunderBox: Sendable {
    let funder: Funder
    /// What routing reads, flattened: limits hold no references; eligibility is nil when the
    /// funder accepts every grade, region and product.
    let id: String
    let kind: FunderKind
    let currencyCode: String
    let limits: FunderLimits
    let eligibility: Eligibility?

    init(_ funder: Funder) {
        self.funder = funder
        id = funder.id
        kind = funder.kind
        currencyCode = funder.currency.code
        limits = funder.limits
        let e = funder.eligibility
        eligibility = e.riskGrades == nil && e.regions == nil && e.products == nil ? nil : e
    }
}

/// What planning needs of a rule, resolved once: shares, slot weights and funders (nil: unknown id).
private final class RulePlan: Sendable {
    let rule: RatioRule
    let fixed: [Share]
    let weights: [Share]
    let fixedSum: Int
    /// Fixed shares' bps, then the allocated part's bps when the rule allocates.
    let slotBps: [Int64]
    let fixedFunders: [FunderBox?]
    let weightFunders: [FunderBox?]
    let fallbackFunders: [FunderBox?]

    init(_ rule: RatioRule, _ funders: [String: FunderBox]) {
        self.rule = rule
        fixed = rule.mode.fixedShares
        weights = rule.mode.allocatedWeights
        fixedSum = fixed.reduce(0) { $0 + $1.bps }
        slotBps = fixed.map { Int64($0.bps) } + (weights.isEmpty ? [] : [Int64(10_000 - fixedSum)])
        fixedFunders = fixed.map { funders[$0.funderId] }
        weightFunders = weights.map { funders[$0.funderId] }
        fallbackFunders = rule.fallbacks.map { funders[$0] }
    }
}

/// A rule's predicate compiled to bit masks over interned values.
private struct CompiledRule: Sendable {
    /// Index into `RuleSet.rules`, or -1 for the default rule.
    let ruleIndex: Int
    let products: BitMask?, grades: BitMask?, regions: BitMask?, channels: BitMask?
    let amountMin: Int64, amountMax: Int64
    let termMin: Int, termMax: Int

    @inline(__always)
    func matches(_ loan: Loan, product: Int, grade: Int, region: Int, channel: Int) -> Bool {
        if loan.amountMinor < amountMin || loan.amountMinor > amountMax { return false }
        if loan.termMonths < termMin || loan.termMonths > termMax { return false }
        if let m = products, !m.contains(product) { return false }
        if let m = grades, !m.contains(grade) { return false }
        if let m = regions, !m.contains(region) { return false }
        if let m = channels, !m.contains(channel) { return false }
        return true
    }
}

/// A growable set of small non-negative integers. The first 64 live inline, so the common case
/// is one AND with no memory traffic.
struct BitMask: Hashable, Sendable {
    private var first: UInt64 = 0
    private var rest: [UInt64] = []

    mutating func insert(_ i: Int) {
        if i < 64 { first |= 1 << UInt64(i); return }
        let w = (i >> 6) - 1
        while rest.count <= w { rest.append(0) }
        rest[w] |= 1 << UInt64(i & 63)
    }

    @inline(__always)
    func contains(_ i: Int) -> Bool {
        if i >= 0 && i < 64 { return first & (1 << UInt64(i)) != 0 }
        guard i >= 64 else { return false }
        let w = (i >> 6) - 1
        return w < rest.count && rest[w] & (1 << UInt64(i & 63)) != 0
    }
}
