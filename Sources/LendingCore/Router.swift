/// Decides who funds a loan. A pure function of (rule set, funders, jurisdiction, capacities,
/// allocation totals, loan, time): the same inputs always give the same decision.
///
/// The rule set is compiled once at init: predicate strings become bit masks over interned
/// values, so matching a loan against fifty rules costs four dictionary look-ups and a few bit
/// tests per rule rather than fifty rounds of string hashing.
public struct Router: Sendable {
    public let ruleSet: RuleSet
    public let funders: [String: Funder]
    public let jurisdiction: JurisdictionProfile
    /// How long after approval a loan must reach a final funding state.
    public let fundingDeadlineSeconds: Int64

    private let compiled: [CompiledRule]
    private let compiledDefault: CompiledRule?
    private let products: [String: Int]
    private let grades: [String: Int]
    private let regions: [String: Int]
    private let channels: [String: Int]

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
        func compile(_ rule: RatioRule) -> CompiledRule {
            let p = rule.predicate
            return CompiledRule(
                rule: rule,
                products: intern(p.products, &products), grades: intern(p.riskGrades, &grades),
                regions: intern(p.regions, &regions), channels: intern(p.channels, &channels),
                amountMin: p.amountMinMinor ?? .min, amountMax: p.amountMaxMinor ?? .max,
                termMin: p.termMonthsMin ?? .min, termMax: p.termMonthsMax ?? .max)
        }
        compiled = ruleSet.rules.map(compile)
        compiledDefault = ruleSet.defaultRule.map(compile)
        self.products = products
        self.grades = grades
        self.regions = regions
        self.channels = channels
    }

    /// The unix second by which a loan approved at `approvedAt` must be final.
    public func deadline(forApprovedAt approvedAt: Int64) -> Int64 { approvedAt + fundingDeadlineSeconds }

    /// The first rule matching `loan`, else the default rule, else nil.
    public func matchingRule(for loan: Loan) -> RatioRule? {
        let p = products[loan.product] ?? -1, g = grades[loan.riskGrade] ?? -1
        let r = regions[loan.region] ?? -1, c = channels[loan.channel] ?? -1
        for rule in compiled where rule.matches(loan, product: p, grade: g, region: r, channel: c) {
            return rule.rule
        }
        return compiledDefault?.rule
    }

    // MARK: - Routing a new loan

    public func route(loan: Loan, capacities: CapacitySnapshot, allocations: AllocationTotals, now: Int64) -> RoutingDecision {
        if let problem = loan.validationProblem() {
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
        guard let rule = matchingRule(for: loan) else {
            return .rejected(Rejection(.noRuleMatched, "no rule in version \(ruleSet.version) matches and there is no default rule", ruleVersion: ruleSet.version))
        }
        let version = ruleSet.version
        func reject(_ code: RejectionCode, _ detail: String) -> RoutingDecision {
            .rejected(Rejection(code, detail, ruleId: rule.id, ruleVersion: version))
        }

        let fixed = rule.mode.fixedShares
        let weights = rule.mode.allocatedWeights
        var slotBps = fixed.map { Int64($0.bps) }
        let fixedSum = fixed.reduce(0) { $0 + $1.bps }
        if !weights.isEmpty { slotBps.append(Int64(10_000 - fixedSum)) }
        let amounts = Apportionment.largestRemainder(loan.amountMinor, weights: slotBps)

        var tranches: [PlannedTranche] = []
        tranches.reserveCapacity(slotBps.count)
        for (i, share) in fixed.enumerated() where amounts[i] > 0 {
            let funderId: String
            if canTake(share.funderId, amounts[i], loan, capacities, planned: tranches, reservedInSnapshot: false) == nil {
                funderId = share.funderId
            } else if let fb = firstFallback(rule, excluding: [share.funderId], amounts[i], loan, capacities, planned: tranches, reservedInSnapshot: false) {
                funderId = fb
            } else {
                let why = canTake(share.funderId, amounts[i], loan, capacities, planned: tranches, reservedInSnapshot: false) ?? ""
                return reject(.noCapacity, "funder '\(share.funderId)' cannot take its tranche (\(why)) and no fallback can")
            }
            tranches.append(PlannedTranche(funderId: funderId, kind: kind(of: funderId), shareBps: share.bps, amountMinor: amounts[i]))
        }

        var allocation: AllocationUpdate?
        if !weights.isEmpty, let part = amounts.last, part > 0 {
            let key = AllocationKey(ruleId: rule.id, ruleVersion: version)
            let partBps = 10_000 - fixedSum
            let entry = allocations.byRule[key]
            let chosen = chooseByDeficit(weights, part, entry) { id in
                canTake(id, part, loan, capacities, planned: tranches, reservedInSnapshot: false) == nil
            }
            if let chosen {
                tranches.append(PlannedTranche(funderId: chosen, kind: kind(of: chosen), shareBps: partBps, amountMinor: part))
                allocation = AllocationUpdate(key: key, funderId: chosen, amountMinor: part)
            } else if let fb = firstFallback(rule, excluding: Set(weights.map(\.funderId)), part, loan, capacities, planned: tranches, reservedInSnapshot: false) {
                tranches.append(PlannedTranche(funderId: fb, kind: kind(of: fb), shareBps: partBps, amountMinor: part))
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
        guard let rule = ruleSet.rule(id: ruleId) else {
            return .unfunded(Rejection(.noRuleMatched, "rule '\(ruleId)' is not in version \(ruleSet.version)", ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        if now >= deadline(forApprovedAt: loan.approvedAt) {
            return .unfunded(Rejection(.deadlinePassed, "funding deadline passed", ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        var skip = excluded
        skip.insert(failed.funderId)
        guard let fb = firstFallback(rule, excluding: skip, failed.amountMinor, loan, capacities, planned: active, reservedInSnapshot: true) else {
            return .unfunded(Rejection(.noCapacity, "no fallback funder can take the tranche of '\(failed.funderId)'", ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        let tranche = PlannedTranche(funderId: fb, kind: kind(of: fb), shareBps: failed.shareBps, amountMinor: failed.amountMinor)
        if let violation = floorViolation(active + [tranche], loanAmountMinor: loan.amountMinor) {
            return .unfunded(Rejection(.floorViolated, violation, ruleId: ruleId, ruleVersion: ruleSet.version))
        }
        return .rerouted(tranche)
    }

    // MARK: - Checks

    private func kind(of funderId: String) -> FunderKind { funders[funderId]?.kind ?? .partner }

    /// nil when `funderId` can take `amount` of `loan` on top of what it holds in `planned`;
    /// otherwise why not. With `reservedInSnapshot`, the snapshot already counts `planned`.
    func canTake(
        _ funderId: String, _ amount: Int64, _ loan: Loan, _ capacities: CapacitySnapshot,
        planned: [PlannedTranche], reservedInSnapshot: Bool
    ) -> String? {
        guard let funder = funders[funderId] else { return "unknown funder" }
        if capacities.unavailable.contains(funderId) { return "unavailable" }
        if funder.currency != loan.currency { return "currency \(funder.currency.code) differs" }
        if !funder.eligibility.accepts(loan) { return "does not accept this grade, region or product" }
        var held: Int64 = 0
        for t in planned where t.funderId == funderId { held += t.amountMinor }
        let onLoan = held + amount
        if let m = funder.limits.perLoanMinMinor, onLoan < m { return "below its per-loan minimum" }
        if let m = funder.limits.perLoanMaxMinor, onLoan > m { return "above its per-loan maximum" }
        guard let cap = capacities.funders[funderId] else { return "no capacity known" }
        let needed = reservedInSnapshot ? amount : onLoan
        switch funder.kind {
        case .pool:
            if cap.availableMinor < needed { return "pool balance too low" }
        case .partner:
            if let q = funder.limits.dailyQuotaMinor, cap.quotaUsedTodayMinor > q - needed { return "daily quota exhausted" }
            if let e = funder.limits.exposureLimitMinor, cap.exposureMinor > e - needed { return "exposure limit reached" }
        }
        return nil
    }

    private func firstFallback(
        _ rule: RatioRule, excluding: Set<String>, _ amount: Int64, _ loan: Loan, _ capacities: CapacitySnapshot,
        planned: [PlannedTranche], reservedInSnapshot: Bool
    ) -> String? {
        for id in rule.fallbacks where !excluding.contains(id) {
            if canTake(id, amount, loan, capacities, planned: planned, reservedInSnapshot: reservedInSnapshot) == nil { return id }
        }
        return nil
    }

    /// The eligible weighted funder with the largest deficit `w_f × (T + a) − 10000 × T_f`,
    /// ties to the earlier funder in the rule. 128-bit arithmetic: no overflow for any Int64 totals.
    private func chooseByDeficit(_ weights: [Share], _ amount: Int64, _ entry: AllocationTotals.Entry?, eligible: (String) -> Bool) -> String? {
        let t = Int128(entry?.totalMinor ?? 0) + Int128(amount)
        var best: (id: String, deficit: Int128)?
        for w in weights {
            let tf = Int128(entry?.perFunderMinor[w.funderId] ?? 0)
            let deficit = Int128(w.bps) * t - 10_000 * tf
            if let b = best, b.deficit >= deficit { continue }
            guard eligible(w.funderId) else { continue }
            best = (w.funderId, deficit)
        }
        return best?.id
    }

    /// The jurisdiction's floors for a joint loan (two or more distinct funders), or nil when they hold.
    /// A floor of `bps` on an amount is `floor(amount × bps / 10000)` whole minor units: a fraction
    /// of a fen cannot be funded, so a 30/70 split of 1,000,001 fen (300,000 / 700,001) holds 30%.
    func floorViolation(_ tranches: [PlannedTranche], loanAmountMinor: Int64) -> String? {
        var byFunder: [(String, Int64)] = []
        var poolTotal: Int64 = 0
        for t in tranches {
            if t.kind == .pool { poolTotal += t.amountMinor }
            if let i = byFunder.firstIndex(where: { $0.0 == t.funderId }) { byFunder[i].1 += t.amountMinor } else { byFunder.append((t.funderId, t.amountMinor)) }
        }
        guard byFunder.count >= 2 else { return nil }
        func floorMinor(_ bps: Int) -> Int64 { Int64(Int128(loanAmountMinor) * Int128(bps) / 10_000) }
        if jurisdiction.platformMinShareBps > 0, poolTotal < floorMinor(jurisdiction.platformMinShareBps) {
            return "\(jurisdiction.code) requires the platform to fund at least \(jurisdiction.platformMinShareBps) bps of a joint loan"
        }
        if jurisdiction.lenderMinShareBps > 0 {
            let minimum = floorMinor(jurisdiction.lenderMinShareBps)
            for (id, total) in byFunder where total < minimum {
                return "\(jurisdiction.code) requires every lender to keep at least \(jurisdiction.lenderMinShareBps) bps; '\(id)' would not"
            }
        }
        return nil
    }
}

/// A rule with its string predicates compiled to bit masks over interned values.
private struct CompiledRule: Sendable {
    let rule: RatioRule
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

/// A growable set of small non-negative integers.
struct BitMask: Hashable, Sendable {
    private var words: [UInt64] = []

    mutating func insert(_ i: Int) {
        let w = i >> 6
        while words.count <= w { words.append(0) }
        words[w] |= 1 << UInt64(i & 63)
    }

    @inline(__always)
    func contains(_ i: Int) -> Bool {
        guard i >= 0 else { return false }
        let w = i >> 6
        return w < words.count && words[w] & (1 << UInt64(i & 63)) != 0
    }
}
