import Testing
@testable import LendingCore

/// Seeded properties over random rule sets and 100,000 random loans. Each failure prints its seed.
@Suite struct PropertyTests {
    static let grades = ["A", "B", "C", "D", "E"]
    static let regions = ["GD", "BJ", "SH", "ZJ", "JS"]
    static let products = ["consumer", "auto", "edu"]

    static func randomShares(_ ids: [String], using rng: inout SeededGenerator) -> [Share] {
        var cuts = (0..<(ids.count - 1)).map { _ in Int.random(in: 1...9_999, using: &rng) }
        cuts = Array(Set(cuts)).sorted()
        let n = cuts.count + 1
        cuts = [0] + cuts + [10_000]
        return (0..<n).map { Share(ids[$0], cuts[$0 + 1] - cuts[$0]) }
    }

    static func randomLoan(_ i: Int, maxAmount: Int64, using rng: inout SeededGenerator) -> Loan {
        Fixture.loan("L\(i)", amount: Int64.random(in: 1...maxAmount, using: &rng), term: Int.random(in: 1...60, using: &rng),
                     product: products.randomElement(using: &rng)!, grade: grades.randomElement(using: &rng)!,
                     region: regions.randomElement(using: &rng)!, channel: "app")
    }

    /// Allocation keeps every funder within one maximum-loan amount of its target share at every
    /// prefix of the sequence: |T_f − w_f·T/10000| ≤ maxLoan. 10 rule sets × 10,000 loans.
    @Test func allocationStaysWithinOneLoanOfTargetAtEveryPrefix() async {
        let seed: UInt64 = 20_261_121
        var rng = SeededGenerator(seed: seed)
        for round in 0..<10 {
            let count = Int.random(in: 2...6, using: &rng)
            let ids = (0..<count).map { "p\($0)" }
            let weights = Self.randomShares(ids, using: &rng)
            let router = Fixture.router([], default: RatioRule(id: "alloc", mode: .allocation(weights)), funders: weights.map { Fixture.partner($0.funderId) })
            let caps = Fixture.ample(router.funders)
            let maxLoan = Int64.random(in: 100...20_000_000, using: &rng)
            var totals = AllocationTotals()
            let key = AllocationKey(ruleId: "alloc", ruleVersion: 1)
            for i in 0..<10_000 {
                // Long CPU-bound loops yield now and then: tests share a two-thread cooperative pool
                // with loopback servers whose handlers must get scheduled.
                if i % 500 == 0 { await Task.yield() }
                let loan = Self.randomLoan(i, maxAmount: maxLoan, using: &rng)
                guard let update = router.route(loan: loan, capacities: caps, allocations: totals, now: Fixture.now).plan?.allocation else {
                    Issue.record("seed \(seed) round \(round) loan \(i): not planned")
                    return
                }
                totals.apply(update)
                let entry = totals.byRule[key]!
                for w in weights {
                    let tf = Int128(entry.perFunderMinor[w.funderId] ?? 0)
                    let deviation = tf * 10_000 - Int128(w.bps) * Int128(entry.totalMinor)  // ×10000 to stay exact
                    if deviation > Int128(maxLoan) * 10_000 || deviation < -Int128(maxLoan) * 10_000 {
                        Issue.record("seed \(seed) round \(round) prefix \(i + 1): \(w.funderId) off target by more than one max loan (\(maxLoan))")
                        return
                    }
                }
            }
        }
    }

    /// Random co-funding and mixed rule sets over random loans: tranches sum exactly to the loan,
    /// each fixed tranche within one minor unit of its exact share, and the same input gives the
    /// same decision from the same router and from a freshly built one.
    @Test func plansSumExactlyAndAreDeterministic() async {
        let seed: UInt64 = 0x5EED_0002
        var rng = SeededGenerator(seed: seed)
        let pools = ["pool-1", "pool-2"].map(Fixture.pool)
        let partners = (0..<6).map { Fixture.partner("bank-\($0)") }
        let all = pools + partners
        for round in 0..<100 {
            var rules: [RatioRule] = []
            for r in 0..<Int.random(in: 1...20, using: &rng) {
                let pred = LoanPredicate(products: Bool.random(using: &rng) ? [Self.products.randomElement(using: &rng)!] : nil,
                                         riskGrades: Bool.random(using: &rng) ? Set(Self.grades.prefix(Int.random(in: 1...5, using: &rng))) : nil,
                                         regions: Bool.random(using: &rng) ? [Self.regions.randomElement(using: &rng)!] : nil)
                let ids = all.map(\.id).shuffled(using: &rng)
                let mode: FundingMode
                switch Int.random(in: 0...2, using: &rng) {
                case 0: mode = .coFunding(Self.randomShares(Array(ids.prefix(Int.random(in: 1...4, using: &rng))), using: &rng))
                case 1: mode = .allocation(Self.randomShares(Array(ids.prefix(Int.random(in: 1...4, using: &rng))), using: &rng))
                default:
                    let poolBps = Int.random(in: 1...9_999, using: &rng)
                    mode = .mixed(fixed: [Share(pools[0].id, poolBps)], allocated: Self.randomShares(Array(partners.map(\.id).shuffled(using: &rng).prefix(3)), using: &rng))
                }
                rules.append(RatioRule(id: "r\(r)", predicate: pred, mode: mode))
            }
            let ruleSet = RuleSet(version: round + 1, rules: rules, defaultRule: RatioRule(id: "default", mode: .coFunding([Share("pool-1", 10_000)])))
            #expect(ruleSet.validationProblems(funders: Fixture.funders(all)).isEmpty, "seed \(seed) round \(round)")
            let router = Router(ruleSet: ruleSet, funders: Fixture.funders(all), jurisdiction: .none)
            let caps = Fixture.ample(router.funders)
            var totals = AllocationTotals()
            for i in 0..<1_000 {
                if i % 100 == 0 { await Task.yield() }
                let loan = Self.randomLoan(i, maxAmount: 50_000_000, using: &rng)
                let decision = router.route(loan: loan, capacities: caps, allocations: totals, now: Fixture.now)
                guard let plan = decision.plan else {
                    Issue.record("seed \(seed) round \(round) loan \(i): \(decision)")
                    return
                }
                if plan.tranches.reduce(0, { $0 + $1.amountMinor }) != loan.amountMinor {
                    Issue.record("seed \(seed) round \(round) loan \(i): tranches do not sum to the loan")
                    return
                }
                for t in plan.tranches where plan.allocation == nil || t.funderId != plan.allocation?.funderId {
                    let error = Int128(t.amountMinor) * 10_000 - Int128(loan.amountMinor) * Int128(t.shareBps)
                    if error <= -10_000 || error >= 10_000 {
                        Issue.record("seed \(seed) round \(round) loan \(i): tranche off its exact share by ≥ 1 unit")
                        return
                    }
                }
                let again = Router(ruleSet: ruleSet, funders: Fixture.funders(all), jurisdiction: .none)
                    .route(loan: loan, capacities: caps, allocations: totals, now: Fixture.now)
                if again != decision || router.route(loan: loan, capacities: caps, allocations: totals, now: Fixture.now) != decision {
                    Issue.record("seed \(seed) round \(round) loan \(i): same input, different decision")
                    return
                }
                if let update = plan.allocation { totals.apply(update) }
            }
        }
    }
}
