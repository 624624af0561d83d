import Testing
@testable import LendingCore

@Suite struct RouterTests {
    let pool = Fixture.pool("pool-main")
    let pool2 = Fixture.pool("pool-reserve")
    let bankA = Fixture.partner("bank-a")
    let bankB = Fixture.partner("bank-b")

    @Test func coFundingSplitsByLargestRemainder() throws {
        let router = Fixture.router([], default: RatioRule(id: "joint", mode: .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)])), funders: [pool, bankA])
        let plan = try #require(router.route(loan: Fixture.loan(amount: 1_000_001), capacities: Fixture.ample(router.funders), allocations: .init(), now: Fixture.now).plan)
        #expect(plan.tranches.map(\.amountMinor) == [300_000, 700_001])
        #expect(plan.tranches.map(\.funderId) == ["pool-main", "bank-a"])
        #expect(plan.tranches.map(\.shareBps) == [3000, 7000])
        #expect(plan.ruleId == "joint" && plan.ruleVersion == 1 && plan.allocation == nil)
    }

    @Test func firstMatchingRuleWinsThenDefault() throws {
        let big = RatioRule(id: "big", predicate: LoanPredicate(amountMinMinor: 5_000_000), mode: .coFunding([Share("pool-main", 10_000)]))
        let grade = RatioRule(id: "gradeA-GD", predicate: LoanPredicate(riskGrades: ["A"], regions: ["GD"]), mode: .coFunding([Share("bank-a", 10_000)]))
        let product = RatioRule(id: "auto", predicate: LoanPredicate(products: ["auto"], termMonthsMin: 6, termMonthsMax: 36, channels: ["web"]), mode: .coFunding([Share("bank-b", 10_000)]))
        let router = Fixture.router([big, grade, product], default: RatioRule(id: "default", mode: .coFunding([Share("pool-reserve", 10_000)])), funders: [pool, pool2, bankA, bankB])
        let caps = Fixture.ample(router.funders)
        func rule(_ loan: Loan) -> String? { router.route(loan: loan, capacities: caps, allocations: .init(), now: Fixture.now).plan?.ruleId }
        #expect(rule(Fixture.loan(amount: 6_000_000, grade: "A")) == "big")
        #expect(rule(Fixture.loan(amount: 100_000, grade: "A")) == "gradeA-GD")
        #expect(rule(Fixture.loan(amount: 100_000, grade: "A", region: "BJ")) == "default")
        #expect(rule(Fixture.loan(term: 12, product: "auto", channel: "web")) == "auto")
        #expect(rule(Fixture.loan(term: 48, product: "auto", channel: "web")) == "default")
        #expect(rule(Fixture.loan(term: 12, product: "auto", channel: "app")) == "default")
    }

    @Test func noRuleMatchedWithoutDefault() {
        let r = Fixture.router([RatioRule(id: "auto", predicate: LoanPredicate(products: ["auto"]), mode: .coFunding([Share("pool-main", 10_000)]))], funders: [pool])
        let rejection = r.route(loan: Fixture.loan(), capacities: Fixture.ample(r.funders), allocations: .init(), now: Fixture.now).rejection
        #expect(rejection?.code == .noRuleMatched)
    }

    @Test func allocationFollowsLargestDeficitTiesToEarlier() throws {
        let rule = RatioRule(id: "alloc", mode: .allocation([Share("bank-a", 8000), Share("bank-b", 2000)]))
        let router = Fixture.router([], default: rule, funders: [bankA, bankB])
        let caps = Fixture.ample(router.funders)
        var totals = AllocationTotals()
        var chosen: [String] = []
        for i in 0..<10 {
            let plan = try #require(router.route(loan: Fixture.loan("L\(i)", amount: 100), capacities: caps, allocations: totals, now: Fixture.now).plan)
            #expect(plan.tranches.count == 1 && plan.tranches[0].amountMinor == 100 && plan.tranches[0].shareBps == 10_000)
            let update = try #require(plan.allocation)
            totals.apply(update)
            chosen.append(update.funderId)
        }
        // By hand, deficit = w(T+a) − 10000·T_f with a = 100:
        // #1 A 800k, B 200k → A; #2 T=100 T_A=100: A 600k, B 400k → A; #3 T=200 T_A=200: A 400k, B 600k → B; ...
        #expect(chosen == ["bank-a", "bank-a", "bank-b", "bank-a", "bank-a", "bank-a", "bank-a", "bank-b", "bank-a", "bank-a"])
        #expect(totals.byRule[AllocationKey(ruleId: "alloc", ruleVersion: 1)]?.perFunderMinor["bank-a"] == 800)
    }

    @Test func mixedGivesFixedPoolShareAndAllocatesTheRest() throws {
        let rule = RatioRule(id: "mix", mode: .mixed(fixed: [Share("pool-main", 3000)], allocated: [Share("bank-a", 5000), Share("bank-b", 5000)]))
        let router = Fixture.router([], default: rule, funders: [pool, bankA, bankB], jurisdiction: .cn)
        let caps = Fixture.ample(router.funders)
        var totals = AllocationTotals()
        var partners: [String] = []
        for i in 0..<4 {
            let plan = try #require(router.route(loan: Fixture.loan("L\(i)", amount: 1_000_001), capacities: caps, allocations: totals, now: Fixture.now).plan)
            #expect(plan.tranches.map(\.amountMinor) == [300_000, 700_001])
            #expect(plan.tranches[0].funderId == "pool-main" && plan.tranches[1].shareBps == 7000)
            partners.append(plan.tranches[1].funderId)
            totals.apply(try #require(plan.allocation))
        }
        #expect(partners == ["bank-a", "bank-b", "bank-a", "bank-b"])
    }

    @Test func sameLoanAlwaysGetsTheSameDecision() {
        let rule = RatioRule(id: "mix", mode: .mixed(fixed: [Share("pool-main", 3000)], allocated: [Share("bank-a", 6000), Share("bank-b", 4000)]))
        let make = { Fixture.router([], default: rule, funders: [pool, bankA, bankB]) }
        let totals = AllocationTotals(byRule: [AllocationKey(ruleId: "mix", ruleVersion: 1): .init(totalMinor: 5_000, perFunderMinor: ["bank-a": 2_000, "bank-b": 3_000])])
        let a = make().route(loan: Fixture.loan(amount: 777), capacities: Fixture.ample(make().funders), allocations: totals, now: Fixture.now)
        let b = make().route(loan: Fixture.loan(amount: 777), capacities: Fixture.ample(make().funders), allocations: totals, now: Fixture.now)
        #expect(a == b)
        #expect(a.plan?.tranches.last?.funderId == "bank-a")
    }

    // MARK: limits

    func routeOne(_ funders: [Funder], _ mode: FundingMode, fallbacks: [String] = [], caps: CapacitySnapshot? = nil,
                  loan: Loan = Fixture.loan(), jurisdiction: JurisdictionProfile = .none) -> RoutingDecision {
        let router = Fixture.router([], default: RatioRule(id: "r", mode: mode, fallbacks: fallbacks), funders: funders, jurisdiction: jurisdiction)
        return router.route(loan: loan, capacities: caps ?? Fixture.ample(router.funders), allocations: .init(), now: Fixture.now)
    }

    @Test func poolBalanceLimit() {
        let caps = CapacitySnapshot(funders: ["pool-main": FunderCapacity(availableMinor: 299_999), "bank-a": FunderCapacity()])
        let d = routeOne([pool, bankA], .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), caps: caps)
        #expect(d.rejection?.code == .noCapacity)
        let ok = routeOne([pool, bankA], .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]),
                          caps: CapacitySnapshot(funders: ["pool-main": FunderCapacity(availableMinor: 300_000), "bank-a": FunderCapacity()]))
        #expect(ok.plan != nil)
    }

    @Test func partnerDailyQuotaAndExposureLimits() {
        let limited = Fixture.partner("bank-a", limits: FunderLimits(dailyQuotaMinor: 1_000_000, exposureLimitMinor: 5_000_000))
        let mode = FundingMode.coFunding([Share("bank-a", 10_000)])
        let quotaLeftExact = CapacitySnapshot(funders: ["bank-a": FunderCapacity(quotaUsedTodayMinor: 0, exposureMinor: 4_000_000)])
        #expect(routeOne([limited], mode, caps: quotaLeftExact).plan != nil)
        let quotaShort = CapacitySnapshot(funders: ["bank-a": FunderCapacity(quotaUsedTodayMinor: 1, exposureMinor: 0)])
        #expect(routeOne([limited], mode, caps: quotaShort).rejection?.code == .noCapacity)
        let exposureShort = CapacitySnapshot(funders: ["bank-a": FunderCapacity(quotaUsedTodayMinor: 0, exposureMinor: 4_000_001)])
        #expect(routeOne([limited], mode, caps: exposureShort).rejection?.code == .noCapacity)
        let unknown = CapacitySnapshot(funders: [:])
        #expect(routeOne([limited], mode, caps: unknown).rejection?.code == .noCapacity, "a funder with no known capacity fails closed")
    }

    @Test func perLoanMinMaxAndEligibility() {
        let mode = FundingMode.coFunding([Share("bank-a", 10_000)])
        let minMax = Fixture.partner("bank-a", limits: FunderLimits(perLoanMinMinor: 500_000, perLoanMaxMinor: 2_000_000))
        #expect(routeOne([minMax], mode, loan: Fixture.loan(amount: 499_999)).rejection?.code == .noCapacity)
        #expect(routeOne([minMax], mode, loan: Fixture.loan(amount: 500_000)).plan != nil)
        #expect(routeOne([minMax], mode, loan: Fixture.loan(amount: 2_000_000)).plan != nil)
        #expect(routeOne([minMax], mode, loan: Fixture.loan(amount: 2_000_001)).rejection?.code == .noCapacity)
        let picky = Fixture.partner("bank-a", eligibility: Eligibility(riskGrades: ["A", "B"], regions: ["GD"], products: ["consumer"]))
        #expect(routeOne([picky], mode).plan != nil)
        #expect(routeOne([picky], mode, loan: Fixture.loan(grade: "C")).rejection?.code == .noCapacity)
        #expect(routeOne([picky], mode, loan: Fixture.loan(region: "BJ")).rejection?.code == .noCapacity)
        #expect(routeOne([picky], mode, loan: Fixture.loan(product: "auto")).rejection?.code == .noCapacity)
    }

    @Test func unavailableFunderIsSkippedForFallback() throws {
        var caps = Fixture.ample(Fixture.funders([pool, bankA, bankB]))
        caps.unavailable = ["bank-a"]
        let d = routeOne([pool, bankA, bankB], .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), fallbacks: ["bank-b"], caps: caps)
        #expect(try #require(d.plan).tranches.map(\.funderId) == ["pool-main", "bank-b"])
    }

    @Test func fallbacksAreTriedInOrder() throws {
        let full = Fixture.partner("bank-a", limits: FunderLimits(dailyQuotaMinor: 0))
        let bankC = Fixture.partner("bank-c")
        let picky = Fixture.partner("bank-b", eligibility: Eligibility(regions: ["BJ"]))
        let d = routeOne([pool, full, picky, bankC], .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), fallbacks: ["bank-b", "bank-c"])
        let plan = try #require(d.plan)
        #expect(plan.tranches.map(\.funderId) == ["pool-main", "bank-c"])
        #expect(plan.tranches[1].shareBps == 7000 && plan.tranches[1].amountMinor == 700_000)
    }

    // MARK: floors

    @Test func cnPlatformFloorOfThirtyPercent() {
        let ok = routeOne([pool, bankA], .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), jurisdiction: .cn)
        #expect(ok.plan != nil)
        // 1,000,001 fen at 30/70 gives the pool 300,000 (29.99997%): the floor in whole minor units is
        // floor(300,000.3) = 300,000, so the DOMAIN.md split holds the floor.
        let odd = routeOne([pool, bankA], .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), loan: Fixture.loan(amount: 1_000_001), jurisdiction: .cn)
        #expect(odd.plan?.tranches.map(\.amountMinor) == [300_000, 700_001])
        let low = routeOne([pool, bankA], .coFunding([Share("pool-main", 2999), Share("bank-a", 7001)]), jurisdiction: .cn)
        #expect(low.rejection?.code == .floorViolated)
        // The pool cannot take its part; a partner fallback would break the floor: reject, never fund out of rule.
        let caps = CapacitySnapshot(funders: ["pool-main": FunderCapacity(availableMinor: 0), "bank-a": FunderCapacity(), "bank-b": FunderCapacity()])
        let viaFallback = routeOne([pool, bankA, bankB], .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), fallbacks: ["bank-b"], caps: caps, jurisdiction: .cn)
        #expect(viaFallback.rejection?.code == .floorViolated)
        // A loan funded by one partner alone is not a joint loan: the floor does not apply.
        #expect(routeOne([bankA], .coFunding([Share("bank-a", 10_000)]), jurisdiction: .cn).plan != nil)
    }

    @Test func cnPerBorrowerCap() {
        let mode = FundingMode.coFunding([Share("pool-main", 10_000)])
        var caps = Fixture.ample(Fixture.funders([pool]))
        caps.borrowerOutstandingMinor = 19_000_000
        #expect(routeOne([pool], mode, caps: caps, loan: Fixture.loan(amount: 1_000_000), jurisdiction: .cn).plan != nil)
        #expect(routeOne([pool], mode, caps: caps, loan: Fixture.loan(amount: 1_000_001), jurisdiction: .cn).rejection?.code == .borrowerLimitExceeded)
        #expect(routeOne([pool], mode, caps: caps, loan: Fixture.loan(amount: 1_000_001), jurisdiction: .none).plan != nil)
    }

    @Test func inEachLenderKeepsTenPercent() {
        let ok = routeOne([pool, bankA], .coFunding([Share("pool-main", 1000), Share("bank-a", 9000)]), jurisdiction: .in)
        #expect(ok.plan != nil)
        let low = routeOne([pool, bankA], .coFunding([Share("pool-main", 999), Share("bank-a", 9001)]), jurisdiction: .in)
        #expect(low.rejection?.code == .floorViolated)
    }

    // MARK: re-routing

    @Test func declinedTrancheMovesToFallbackFunder() throws {
        let bankC = Fixture.partner("bank-c")
        let router = Fixture.router([], default: RatioRule(id: "r", mode: .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), fallbacks: ["bank-a", "bank-b", "bank-c"]),
                                    funders: [pool, bankA, bankB, bankC], jurisdiction: .cn)
        let loan = Fixture.loan()
        let plan = try #require(router.route(loan: loan, capacities: Fixture.ample(router.funders), allocations: .init(), now: Fixture.now).plan)
        let failed = plan.tranches[1]
        let d1 = router.reroute(loan: loan, ruleId: "r", failed: failed, active: [plan.tranches[0]], excluded: [], capacities: Fixture.ample(router.funders), now: Fixture.now + 60)
        #expect(d1 == .rerouted(PlannedTranche(funderId: "bank-b", kind: .partner, shareBps: 7000, amountMinor: 700_000)))
        let d2 = router.reroute(loan: loan, ruleId: "r", failed: PlannedTranche(funderId: "bank-b", kind: .partner, shareBps: 7000, amountMinor: 700_000),
                                active: [plan.tranches[0]], excluded: ["bank-a"], capacities: Fixture.ample(router.funders), now: Fixture.now + 120)
        #expect(d2 == .rerouted(PlannedTranche(funderId: "bank-c", kind: .partner, shareBps: 7000, amountMinor: 700_000)))
        let d3 = router.reroute(loan: loan, ruleId: "r", failed: PlannedTranche(funderId: "bank-c", kind: .partner, shareBps: 7000, amountMinor: 700_000),
                                active: [plan.tranches[0]], excluded: ["bank-a", "bank-b"], capacities: Fixture.ample(router.funders), now: Fixture.now + 180)
        guard case .unfunded(let why) = d3 else { Issue.record("expected unfunded, got \(d3)"); return }
        #expect(why.code == .noCapacity)
    }

    @Test func rerouteThatWouldBreakTheFloorLeavesLoanUnfunded() {
        let router = Fixture.router([], default: RatioRule(id: "r", mode: .coFunding([Share("pool-main", 3000), Share("bank-a", 7000)]), fallbacks: ["bank-b"]),
                                    funders: [pool, bankA, bankB], jurisdiction: .cn)
        // The pool tranche expired (e.g. its reservation failed); a partner may not take the platform's part.
        let d = router.reroute(loan: Fixture.loan(), ruleId: "r", failed: PlannedTranche(funderId: "pool-main", kind: .pool, shareBps: 3000, amountMinor: 300_000),
                               active: [PlannedTranche(funderId: "bank-a", kind: .partner, shareBps: 7000, amountMinor: 700_000)],
                               excluded: [], capacities: Fixture.ample(router.funders), now: Fixture.now)
        guard case .unfunded(let why) = d else { Issue.record("expected unfunded, got \(d)"); return }
        #expect(why.code == .floorViolated)
    }

    @Test func noRoutingOrReroutingAfterTheDeadline() {
        let router = Fixture.router([], default: RatioRule(id: "r", mode: .coFunding([Share("bank-a", 10_000)]), fallbacks: ["bank-b"]), funders: [bankA, bankB])
        let loan = Fixture.loan()
        #expect(router.route(loan: loan, capacities: Fixture.ample(router.funders), allocations: .init(), now: Fixture.now + 7_200).rejection?.code == .deadlinePassed)
        let d = router.reroute(loan: loan, ruleId: "r", failed: PlannedTranche(funderId: "bank-a", kind: .partner, shareBps: 10_000, amountMinor: 1_000_000),
                               active: [], excluded: [], capacities: Fixture.ample(router.funders), now: Fixture.now + 7_200)
        #expect(d == .unfunded(Rejection(.deadlinePassed, "funding deadline passed", ruleId: "r", ruleVersion: 1)))
    }

    @Test func invalidLoanIsRejectedNamingTheField() {
        let router = Fixture.router([], default: RatioRule(id: "r", mode: .coFunding([Share("bank-a", 10_000)])), funders: [bankA])
        let d = router.route(loan: Fixture.loan(amount: -5), capacities: Fixture.ample(router.funders), allocations: .init(), now: Fixture.now)
        #expect(d.rejection?.code == .invalidLoan)
        #expect(d.rejection?.detail.hasPrefix("amountMinor") == true)
    }

    @Test func ruleSetValidationNamesEveryProblem() {
        let rs = RuleSet(version: 0, rules: [
            RatioRule(id: "a", mode: .coFunding([Share("pool-main", 3000), Share("ghost", 6000)])),
            RatioRule(id: "a", predicate: LoanPredicate(amountMinMinor: 10, amountMaxMinor: 5), mode: .mixed(fixed: [Share("pool-main", 10_000)], allocated: [])),
        ], defaultRule: RatioRule(id: "d", mode: .allocation([Share("bank-a", 10_000)]), fallbacks: ["nobody"]))
        let problems = rs.validationProblems(funders: Fixture.funders([pool, bankA])).map { "\($0.path): \($0.message)" }
        #expect(problems.contains("version: must be ≥ 1"))
        #expect(problems.contains("rules[0].funding.shares[1].funderId: unknown funder 'ghost'"))
        #expect(problems.contains("rules[0].funding.shares: bps sum to 9000, expected 10000"))
        #expect(problems.contains("rules[1].id: duplicate rule id 'a'"))
        #expect(problems.contains("rules[1].match.amountMinMinor: greater than amountMaxMinor"))
        #expect(problems.contains("rules[1].funding.fixed: bps sum to 10000, expected 1...9999"))
        #expect(problems.contains("defaultRule.fallbacks[0]: unknown funder 'nobody'"))
    }
}
