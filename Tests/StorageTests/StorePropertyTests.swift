import LendingCore
import Testing
@testable import Storage

/// Random command sequences against the protocol: whatever the order of intakes, confirmations,
/// declines, replays and expiries, the ledger balances, positions match tranches, and the audit
/// chain holds. Fixed seeds; a failure names its seed.
@Suite struct StorePropertyTests {
    typealias F = StoreFixture

    @Test(arguments: [UInt64(1), 7, 42, 2_026])
    func randomCommandSequencesKeepLedgerAndAuditSound(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let store = try await F.makeStore(F.configuration(fallbacks: seed % 2 == 0 ? [F.bankB] : []))
        defer { store.close() }
        var open: [TrancheRecord] = []
        var answered: [FundingConfirmation: ConfirmationResult] = [:]
        var now = F.now
        var funded: [String] = []
        var poolPrincipalRepaid: Int64 = 0
        var repayments = 0
        for step in 0..<300 {
            now += Int64.random(in: 0...30, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let loan = F.loan("L-\(step)", amountMinor: Int64.random(in: 1...50_000, using: &random) * 10, borrower: "b-\(step % 17)")
                let result = try await store.intake(loan, now: now)
                open += result.tranches.filter { $0.state == .requested }
            case 4..<8 where !open.isEmpty:
                let tranche = open.remove(at: Int.random(in: 0..<open.count, using: &random))
                let outcome: FundingConfirmation.Outcome = Bool.random(using: &random) ? .funded : .declined
                let confirmation = FundingConfirmation(funderId: tranche.funderId, serial: "S-\(step)", trancheId: tranche.id, outcome: outcome)
                do {
                    let result = try await store.confirm(confirmation, now: now)
                    answered[confirmation] = result
                    if result.loanState == .funded { funded.append(result.loanId) }
                    if let replacement = result.replacement, replacement.state == .requested { open.append(replacement) }
                } catch StoreError.invalidTransition {
                    // The loan expired or became unfunded meanwhile: the tranche is no longer open.
                }
            case 8 where !answered.isEmpty:
                let (confirmation, first) = answered.randomElement(using: &random)!
                let again = try await store.confirm(confirmation, now: now)
                #expect(again == first, "seed \(seed): replay of \(confirmation.serial) answered differently")
            case 9 where !funded.isEmpty:
                let loanId = funded[Int.random(in: 0..<funded.count, using: &random)]
                let repayment = Repayment(repaymentId: "R-\(step)", loanId: loanId, principalMinor: Int64.random(in: 0...3_000, using: &random),
                                          interestMinor: Int64.random(in: 1...500, using: &random))
                do {
                    let result = try await store.recordRepayment(repayment, now: now)
                    repayments += 1
                    poolPrincipalRepaid += result.parts.filter { $0.funderId == F.pool }.reduce(0) { $0 + $1.principalMinor }
                } catch StoreError.invalidCommand(field: "repayment.principalMinor", _), StoreError.invalidTransition {
                    // Repaid in full already (closed), or more than is outstanding: refused, nothing changed.
                }
            default:
                _ = try await store.expireOverdue(now: now + Int64.random(in: 0...8_000, using: &random), limit: 5)
            }
        }
        #expect(repayments > 0, "seed \(seed): the sequence never repaid; the property covers less than it claims")
        let ledger = try await store.verifyLedger()
        let audit = try await store.verifyAudit()
        #expect(ledger == nil, "seed \(seed): \(ledger ?? "")")
        #expect(audit == nil, "seed \(seed): \(audit ?? "")")
        // Pool money is conserved: available + reserved + deployed + principal collected = capital.
        let poolTotal = try await store.balance(account: LedgerAccounts.poolAvailable(F.pool))
            + store.balance(account: LedgerAccounts.poolReserved(F.pool))
            + store.balance(account: LedgerAccounts.poolDeployed(F.pool))
        #expect(poolTotal + poolPrincipalRepaid == F.poolCapitalMinor, "seed \(seed)")
    }
}
