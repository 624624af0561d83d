import Testing
@testable import LendingCore

@Suite struct ApportionmentTests {
    @Test func domainExampleOneMillionAndOneFenAtThirtySeventy() {
        #expect(Apportionment.largestRemainder(1_000_001, weights: [3000, 7000]) == [300_000, 700_001])
    }

    @Test func leftoverUnitsGoToLargestRemaindersTiesToEarlier() {
        // 100 × 1/3 each: 33.33 → 33, 33, 33 and one unit left; equal remainders → the first.
        #expect(Apportionment.largestRemainder(100, weights: [1, 1, 1]) == [34, 33, 33])
        // 10 at 15/35/50: exact 1.5, 3.5, 5 → floors 1, 3, 5; one unit left, equal remainders → the first.
        #expect(Apportionment.largestRemainder(10, weights: [15, 35, 50]) == [2, 3, 5])
    }

    @Test func halfEvenRounding() {
        #expect(Apportionment.mulDivHalfEven(10_500, 800, 1800) == 4_667)  // 4666.67
        #expect(Apportionment.mulDivHalfEven(5, 1, 2) == 2)  // 2.5 → 2
        #expect(Apportionment.mulDivHalfEven(7, 1, 2) == 4)  // 3.5 → 4
        #expect(Apportionment.mulDivHalfEven(-5, 1, 2) == -2)
    }

    @Test func coFundingPropertyOverOneHundredThousandLoans() async {
        let seed: UInt64 = 0x4A4C_2026
        var rng = SeededGenerator(seed: seed)
        for iteration in 0..<100_000 {
            if iteration % 5_000 == 0 { await Task.yield() }
            let count = Int.random(in: 2...6, using: &rng)
            var cuts = (0..<(count - 1)).map { _ in Int64.random(in: 1...9_999, using: &rng) }.sorted()
            cuts = [0] + cuts + [10_000]
            let weights = (0..<count).map { cuts[$0 + 1] - cuts[$0] }
            let amount = Int64.random(in: 0...Loan.Limits.amountMinorMax, using: &rng)
            let parts = Apportionment.largestRemainder(amount, weights: weights)
            let sum = parts.reduce(0, +)
            guard sum == amount else {
                Issue.record("seed \(seed) iteration \(iteration): parts sum \(sum) ≠ \(amount)")
                return
            }
            for (p, w) in zip(parts, weights) {
                // |p − amount × w / 10000| < 1  ⇔  |p × 10000 − amount × w| < 10000
                let error = Int128(p) * 10_000 - Int128(amount) * Int128(w)
                if error <= -10_000 || error >= 10_000 {
                    Issue.record("seed \(seed) iteration \(iteration): part \(p) of \(amount) at \(w) bps is off by ≥ 1 unit")
                    return
                }
            }
        }
    }

    @Test func moneyArithmeticIsCheckedAndFormattedExactly() throws {
        let a = Money(amountMinor: .max, currency: .cny)
        #expect(throws: MoneyError.overflow) { try a.adding(Money(amountMinor: 1, currency: .cny)) }
        #expect(throws: MoneyError.currencyMismatch("CNY", "INR")) { try a.subtracting(Money(amountMinor: 1, currency: .inr)) }
        #expect(Money(amountMinor: 1_000_001, currency: .cny).description == "10000.01 CNY")
        #expect(Money(amountMinor: -5, currency: .cny).description == "-0.05 CNY")
        #expect(Currency(code: "XXX") == nil)
    }

    /// DOMAIN.md worked example: 1,000,000 fen, 1800 bps; pool 30% / bank B 70% on fixedYield(800);
    /// repayment principal 80,000, interest 15,000.
    @Test func domainWorkedRevenueSplit() {
        let split = RepaymentSplit.apportion(
            principalMinor: 80_000, interestMinor: 15_000, loanRateBps: 1800,
            tranches: [
                FundedTranche(funderId: "pool", kind: .pool, shareBps: 3000, revenueTerms: .proRata),
                FundedTranche(funderId: "B", kind: .partner, shareBps: 7000, revenueTerms: .fixedYield(yieldBps: 800)),
            ])
        #expect(split.parts[0].principalMinor == 24_000)
        #expect(split.parts[1].principalMinor == 56_000)
        #expect(split.parts[0].interestMinor == 4_500)
        #expect(split.parts[1].interestMinor == 4_667)
        #expect(split.platformFeeMinor == 5_833)
        #expect(split.totalMinor == 95_000)
    }

    @Test func fixedYieldAboveLoanRateEarnsWholeTrancheInterest() {
        let split = RepaymentSplit.apportion(
            principalMinor: 0, interestMinor: 1_000, penaltyAndFeesMinor: 50, loanRateBps: 600,
            tranches: [FundedTranche(funderId: "B", kind: .partner, shareBps: 10_000, revenueTerms: .fixedYield(yieldBps: 800))])
        #expect(split.parts[0].interestMinor == 1_000)
        #expect(split.platformFeeMinor == 50)
    }
}
