import LendingCore
import Testing
@testable import Storage

/// Repayments through the protocol: LendingCore's split, posted exactly, idempotent.
@Suite struct StoreRepaymentTests {
    typealias F = StoreFixture

    /// A funded loan of 1,000,000 fen under DOMAIN.md's worked example.
    private func fundedLoan() async throws -> any Store {
        let store = try await F.makeStore(F.fixedYieldConfiguration())
        let intake = try await store.intake(F.loan("L-1"), now: F.now)
        let partner = try #require(intake.tranches.first { $0.kind == .partner })
        _ = try await store.confirm(FundingConfirmation(funderId: F.bankB, serial: "S-1", trancheId: partner.id, outcome: .funded), now: F.now)
        return store
    }

    @Test func workedExampleSplitsAndPostsExactly() async throws {
        let store = try await fundedLoan()
        defer { store.close() }
        let result = try await store.recordRepayment(Repayment(repaymentId: "R-1", loanId: "L-1", principalMinor: 80_000, interestMinor: 15_000), now: F.now + 30 * 86_400)
        #expect(result.parts.map(\.funderId) == [F.pool, F.bankB])
        #expect(result.parts.map(\.principalMinor) == [24_000, 56_000])
        #expect(result.parts.map(\.interestMinor) == [4_500, 4_667])
        #expect(result.platformFeeMinor == 5_833)
        #expect(result.loanState == .repaying)
        #expect(try await store.balance(account: LedgerAccounts.collections) == 95_000)
        #expect(try await store.balance(account: LedgerAccounts.poolDeployed(F.pool)) == 276_000)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankB)) == 644_000)
        #expect(try await store.balance(account: LedgerAccounts.interest(.partner, F.bankB)) == -4_667)
        #expect(try await store.balance(account: LedgerAccounts.platformFees) == -5_833)
        #expect(try await store.loan(id: "L-1")?.state == .repaying)
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.verifyAudit() == nil)
    }

    @Test func repaymentReplayAnswersAgainAndConflictChangesNothing() async throws {
        let store = try await fundedLoan()
        defer { store.close() }
        let repayment = Repayment(repaymentId: "R-1", loanId: "L-1", principalMinor: 80_000, interestMinor: 15_000)
        let first = try await store.recordRepayment(repayment, now: F.now)
        #expect(try await store.recordRepayment(repayment, now: F.now + 5) == first)
        await #expect(throws: StoreError.idempotencyConflict(scope: "repayment", key: "R-1")) {
            _ = try await store.recordRepayment(Repayment(repaymentId: "R-1", loanId: "L-1", principalMinor: 1, interestMinor: 0), now: F.now)
        }
        #expect(try await store.balance(account: LedgerAccounts.collections) == 95_000)
    }

    @Test func finalRepaymentClosesLoanAndRepaysEveryTrancheExactly() async throws {
        let store = try await fundedLoan()
        defer { store.close() }
        // Odd amounts: share-based rounding would drift; principal follows what is outstanding.
        var repaid: Int64 = 0
        for (i, principal) in [Int64(333_333), 1, 333_333, 7].enumerated() {
            _ = try await store.recordRepayment(Repayment(repaymentId: "R-\(i)", loanId: "L-1", principalMinor: principal, interestMinor: 101), now: F.now)
            repaid += principal
        }
        let last = try await store.recordRepayment(Repayment(repaymentId: "R-last", loanId: "L-1", principalMinor: 1_000_000 - repaid, interestMinor: 0), now: F.now)
        #expect(last.loanState == .closed)
        #expect(try await store.balance(account: LedgerAccounts.poolDeployed(F.pool)) == 0)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankB)) == 0)
        await #expect(throws: StoreError.invalidTransition(entity: "loan", id: "L-1", from: "closed", to: "repaying")) {
            _ = try await store.recordRepayment(Repayment(repaymentId: "R-after", loanId: "L-1", principalMinor: 1, interestMinor: 0), now: F.now)
        }
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func overpaymentAndUnfundedLoansAreRefused() async throws {
        let store = try await fundedLoan()
        defer { store.close() }
        await #expect(throws: StoreError.invalidCommand(field: "repayment.principalMinor", reason: "exceeds the outstanding principal 1000000")) {
            _ = try await store.recordRepayment(Repayment(repaymentId: "R-1", loanId: "L-1", principalMinor: 1_000_001, interestMinor: 0), now: F.now)
        }
        await #expect(throws: StoreError.invalidCommand(field: "repayment.interestMinor", reason: "must be 0...\(Loan.Limits.amountMinorMax)")) {
            _ = try await store.recordRepayment(Repayment(repaymentId: "R-2", loanId: "L-1", principalMinor: 1, interestMinor: -1), now: F.now)
        }
        _ = try await store.intake(F.loan("L-2", borrower: "b-2"), now: F.now)
        await #expect(throws: StoreError.invalidTransition(entity: "loan", id: "L-2", from: "awaiting_funding", to: "repaying")) {
            _ = try await store.recordRepayment(Repayment(repaymentId: "R-3", loanId: "L-2", principalMinor: 1, interestMinor: 0), now: F.now)
        }
        await #expect(throws: StoreError.notFound(entity: "loan", id: "L-404")) {
            _ = try await store.recordRepayment(Repayment(repaymentId: "R-4", loanId: "L-404", principalMinor: 1, interestMinor: 0), now: F.now)
        }
        #expect(try await store.balance(account: LedgerAccounts.collections) == 0)
    }
}
