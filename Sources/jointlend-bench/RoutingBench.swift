import LendingCore

/// `jointlend-bench routing [--loans N]`: routing decisions per second on one core for a 50-rule
/// set over 10 funders, and the allocation's largest deviation from target over the run next to
/// its bound (one maximum loan amount).
enum RoutingBench {
    static let products = ["consumer", "auto", "edu", "travel", "home"]
    static let grades = ["A", "B", "C", "D", "E"]
    static let regions = ["GD", "BJ", "SH", "ZJ", "JS", "SC", "HB", "HN", "FJ", "SD"]
    static let channels = ["app", "web", "partner", "branch"]

    static func run(_ args: ArraySlice<String>) -> Int32 {
        var loans = 1_000_000
        if let i = args.firstIndex(of: "--loans"), i + 1 < args.endIndex, let n = Int(args[i + 1]), n > 0 { loans = n }
        var rng = SplitMix64(seed: 42)
        let pools = (0..<3).map { Funder(id: "pool-\($0)", kind: .pool, name: "pool \($0)") }
        let partners = (0..<7).map { Funder(id: "bank-\($0)", kind: .partner, name: "bank \($0)", licenceNumber: "L\($0)") }
        let funders = pools + partners
        let byId = Dictionary(uniqueKeysWithValues: funders.map { ($0.id, $0) })

        // 49 specific rules (co-funding, allocation and mixed in turn) and a default allocation rule.
        var rules: [RatioRule] = []
        for r in 0..<49 {
            let p = LoanPredicate(products: [products[r % products.count]], amountMinMinor: Int64(r % 7) * 100_000,
                                  amountMaxMinor: Int64(r % 7 + 3) * 1_000_000, riskGrades: Set(grades.prefix(2 + r % 4)),
                                  regions: Set((0..<(3 + r % 5)).map { regions[($0 + r) % regions.count] }), channels: [channels[r % channels.count]])
            let a = partners[r % 7].id, b = partners[(r + 3) % 7].id
            let mode: FundingMode
            switch r % 3 {
            case 0: mode = .coFunding([Share(pools[r % 3].id, 3000), Share(a, 7000)])
            case 1: mode = .allocation([Share(a, 5000), Share(b, 3000), Share(pools[1].id, 2000)])
            default: mode = .mixed(fixed: [Share(pools[0].id, 3000)], allocated: [Share(a, 6000), Share(b, 4000)])
            }
            rules.append(RatioRule(id: "rule-\(r)", predicate: p, mode: mode, fallbacks: [partners[(r + 5) % 7].id, pools[2].id]))
        }
        let defaultWeights = [Share("bank-0", 3000), Share("bank-1", 2500), Share("bank-2", 2000), Share("bank-3", 1500), Share("bank-4", 1000)]
        let defaultRule = RatioRule(id: "default", mode: .allocation(defaultWeights), fallbacks: ["pool-2"])
        let router = Router(ruleSet: RuleSet(version: 7, rules: rules, defaultRule: defaultRule), funders: byId, jurisdiction: .cn)
        let caps = CapacitySnapshot(funders: byId.mapValues { _ in FunderCapacity(availableMinor: .max / 4) })

        // A fixed set of distinct loans cycled through (memory stays small; every decision is real work).
        let maxLoanMinor: Int64 = 20_000_000
        let distinct = 65_536
        let sample = (0..<distinct).map { i in
            Loan(loanId: "L\(i)", borrowerRef: "B\(i)", amountMinor: Int64.random(in: 10_000...maxLoanMinor, using: &rng), currency: .cny,
                 termMonths: Int.random(in: 3...36, using: &rng), annualRateBps: 1800, product: products.randomElement(using: &rng)!,
                 riskGrade: grades.randomElement(using: &rng)!, region: regions.randomElement(using: &rng)!,
                 channel: channels.randomElement(using: &rng)!, approvedAt: 1_800_000_000)
        }

        var totals = AllocationTotals()
        var planned = 0, rejected = 0
        var worstDeviation = Int128(0)  // × 10000, over every allocation rule and every prefix
        let start = monotonicNanoseconds()
        for i in 0..<loans {
            switch router.route(loan: sample[i & (distinct - 1)], capacities: caps, allocations: totals, now: 1_800_000_000) {
            case .planned(let plan):
                planned += 1
                if let u = plan.allocation { totals.apply(u) }
            case .rejected:
                rejected += 1
            }
        }
        let elapsed = monotonicNanoseconds() - start

        // Deviation check over the same sequence, replayed outside the timed loop for the default rule.
        var replay = AllocationTotals()
        let key = AllocationKey(ruleId: "default", ruleVersion: 7)
        for i in 0..<loans {
            guard case .planned(let plan) = router.route(loan: sample[i & (distinct - 1)], capacities: caps, allocations: replay, now: 1_800_000_000),
                  let u = plan.allocation else { continue }
            replay.apply(u)
            guard u.key == key, let e = replay.byRule[key] else { continue }
            for w in defaultWeights {
                let d = Int128(e.allocatedMinor(w.funderId)) * 10_000 - Int128(w.bps) * Int128(e.totalMinor)
                worstDeviation = max(worstDeviation, d < 0 ? -d : d)
            }
        }
        let perSecond = Double(loans) / (Double(elapsed) / 1e9)
        let deviationMinor = worstDeviation / 10_000
        let defaultLoans = replay.byRule[key].map { _ in "yes" } ?? "no"
        print("routing benchmark: 50 rules (49 + default), 10 funders, \(loans) loans, one core")
        print(pad("decisions/s", 34) + String(Int(perSecond)))
        print(pad("planned / rejected", 34) + "\(planned) / \(rejected)")
        print(pad("ns per decision", 34) + String(Int(Double(elapsed) / Double(loans))))
        print(pad("default-rule max deviation (minor)", 34) + "\(deviationMinor)  (bound: one max loan = \(maxLoanMinor); within: \(deviationMinor <= Int128(maxLoanMinor)); default rule used: \(defaultLoans))")
        print(#"{"bench":"routing","loans":\#(loans),"decisionsPerSecond":\#(Int(perSecond)),"maxDeviationMinor":\#(deviationMinor),"boundMinor":\#(maxLoanMinor),"target":1000000}"#)
        return deviationMinor <= Int128(maxLoanMinor) ? 0 : 1
    }
}
