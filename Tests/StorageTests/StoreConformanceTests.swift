import LendingCore
import Testing
@testable import Storage

/// Behaviour every `Store` backend must show. Written against the protocol only.
@Suite struct StoreConformanceTests {
    typealias F = StoreFixture

    private func partnerTranche(_ result: IntakeResult) throws -> TrancheRecord {
        try #require(result.tranches.first { $0.kind == .partner })
    }

    @Test func intakeReservesPoolTrancheAndRequestsPartnerTranche() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let result = try await store.intake(F.loan("L-1"), now: F.now)
        guard case .planned(let loanId, let state, let tranches) = result else {
            Issue.record("expected a plan, got \(result)")
            return
        }
        #expect(loanId == "L-1")
        #expect(state == .awaitingFunding)
        #expect(tranches.map(\.funderId) == [F.pool, F.bankA])
        #expect(tranches.map(\.amountMinor) == [300_000, 700_000])
        #expect(tranches.map(\.state) == [.funded, .requested])
        #expect(try await store.balance(account: LedgerAccounts.poolAvailable(F.pool)) == F.poolCapitalMinor - 300_000)
        #expect(try await store.balance(account: LedgerAccounts.poolReserved(F.pool)) == 300_000)
        let messages = try await store.claimDueOutbox(now: F.now, limit: 10)
        #expect(messages.map(\.destination) == ["partner:\(F.bankA)"])
        let payload = String(decoding: try #require(messages.first).payload, as: UTF8.self)
        #expect(payload.contains("\"trancheId\":\(tranches[1].id)") && payload.contains("\"amountMinor\":700000"))
        let stored = try #require(try await store.loan(id: "L-1"))
        #expect(stored.tranches == tranches && stored.state == .awaitingFunding)
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.verifyAudit() == nil)
    }

    @Test func intakeReplayReturnsFirstAnswerWithoutSecondEffect() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let first = try await store.intake(F.loan("L-1"), now: F.now)
        let again = try await store.intake(F.loan("L-1"), now: F.now + 30)
        #expect(again == first)
        #expect(try await store.balance(account: LedgerAccounts.poolReserved(F.pool)) == 300_000)
        #expect(try await store.claimDueOutbox(now: F.now + 30, limit: 10).count == 1)
    }

    @Test func intakeSameIdDifferentBodyConflictsAndChangesNothing() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        _ = try await store.intake(F.loan("L-1"), now: F.now)
        await #expect(throws: StoreError.idempotencyConflict(scope: "loan.intake", key: "L-1")) {
            _ = try await store.intake(F.loan("L-1", amountMinor: 2_000_000), now: F.now)
        }
        #expect(try await store.balance(account: LedgerAccounts.poolReserved(F.pool)) == 300_000)
        #expect(try await store.loan(id: "L-1")?.loan.amountMinor == 1_000_000)
        #expect(try await store.verifyAudit() == nil)
    }

    @Test func invalidLoanIsRefusedNamingTheField() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        await #expect(throws: StoreError.invalidCommand(field: "loan.amountMinor", reason: "must be positive")) {
            _ = try await store.intake(F.loan("L-1", amountMinor: 0), now: F.now)
        }
        #expect(try await store.loan(id: "L-1") == nil)
    }

    @Test func rejectedLoanReservesNothingAndReplaysTheRejection() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        // CN caps one borrower at 20,000,000 fen.
        let big = F.loan("L-big", amountMinor: 20_000_001)
        let first = try await store.intake(big, now: F.now)
        guard case .rejected(let rejection) = first else {
            Issue.record("expected a rejection, got \(first)")
            return
        }
        #expect(rejection.code == .borrowerLimitExceeded)
        #expect(try await store.intake(big, now: F.now) == first)
        #expect(try await store.loan(id: "L-big") == nil)
        #expect(try await store.balance(account: LedgerAccounts.poolReserved(F.pool)) == 0)
    }

    @Test func fundedConfirmationFundsLoanAndPostsLedger() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let partner = try partnerTranche(try await store.intake(F.loan("L-1"), now: F.now))
        let result = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-1", trancheId: partner.id, outcome: .funded), now: F.now + 5)
        #expect(result.trancheState == .funded && result.loanState == .funded)
        #expect(try await store.loan(id: "L-1")?.state == .funded)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankA)) == 700_000)
        #expect(try await store.balance(account: LedgerAccounts.poolDeployed(F.pool)) == 300_000)
        #expect(try await store.balance(account: LedgerAccounts.poolReserved(F.pool)) == 0)
        let messages = try await store.claimDueOutbox(now: F.now + 5, limit: 10)
        try #require(messages.map(\.destination) == ["partner:\(F.bankA)", "platform"])
        #expect(String(decoding: messages[1].payload, as: UTF8.self).contains("loan.funded"))
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.verifyAudit() == nil)
    }

    @Test func confirmationReplayAnswersAgainAndConflictingReuseChangesNothing() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let t1 = try partnerTranche(try await store.intake(F.loan("L-1"), now: F.now))
        let t2 = try partnerTranche(try await store.intake(F.loan("L-2", borrower: "b-2"), now: F.now))
        let confirmation = FundingConfirmation(funderId: F.bankA, serial: "S-1", trancheId: t1.id, outcome: .funded)
        let first = try await store.confirm(confirmation, now: F.now)
        #expect(try await store.confirm(confirmation, now: F.now + 100) == first)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankA)) == 700_000)
        await #expect(throws: StoreError.idempotencyConflict(scope: "confirmation", key: "BA/S-1")) {
            _ = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-1", trancheId: t2.id, outcome: .funded), now: F.now)
        }
        #expect(try await store.loan(id: "L-2")?.tranches.map(\.state) == [.funded, .requested])
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankA)) == 700_000)
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.verifyAudit() == nil)
        // A second, different serial for an already funded tranche is an illegal transition.
        await #expect(throws: StoreError.invalidTransition(entity: "tranche", id: String(t1.id), from: "funded", to: "funded")) {
            _ = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-9", trancheId: t1.id, outcome: .funded), now: F.now)
        }
    }

    @Test func confirmationForAnotherPartnersTrancheIsNotFound() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let partner = try partnerTranche(try await store.intake(F.loan("L-1"), now: F.now))
        await #expect(throws: StoreError.notFound(entity: "tranche", id: String(partner.id))) {
            _ = try await store.confirm(FundingConfirmation(funderId: F.bankB, serial: "S-1", trancheId: partner.id, outcome: .funded), now: F.now)
        }
        #expect(try await store.loan(id: "L-1")?.tranches[1].state == .requested)
    }

    @Test func declinedTrancheMovesToFallbackFunder() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let partner = try partnerTranche(try await store.intake(F.loan("L-1"), now: F.now))
        let result = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "D-1", trancheId: partner.id, outcome: .declined), now: F.now)
        #expect(result.trancheState == .declined && result.loanState == .awaitingFunding)
        let replacement = try #require(result.replacement)
        #expect(replacement.funderId == F.bankB && replacement.amountMinor == 700_000 && replacement.state == .requested)
        let funded = try await store.confirm(FundingConfirmation(funderId: F.bankB, serial: "F-1", trancheId: replacement.id, outcome: .funded), now: F.now)
        #expect(funded.loanState == .funded)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankB)) == 700_000)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankA)) == 0)
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func declinedTrancheTakenByFallbackPoolFundsLoanAtOnce() async throws {
        let store = try await F.makeStore(F.configuration(fallbacks: [F.pool]))
        defer { store.close() }
        let partner = try partnerTranche(try await store.intake(F.loan("L-1"), now: F.now))
        let result = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "D-1", trancheId: partner.id, outcome: .declined), now: F.now)
        let replacement = try #require(result.replacement)
        #expect(replacement.funderId == F.pool && replacement.state == .funded && replacement.amountMinor == 700_000)
        #expect(result.loanState == .funded)
        #expect(try await store.balance(account: LedgerAccounts.poolDeployed(F.pool)) == 1_000_000)
        #expect(try await store.balance(account: LedgerAccounts.poolReserved(F.pool)) == 0)
        #expect(try await store.claimDueOutbox(now: F.now, limit: 10).map(\.destination) == ["partner:\(F.bankA)", "platform"])
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func declineWithoutFallbackUnfundsLoanAndReleasesPool() async throws {
        let store = try await F.makeStore(F.configuration(fallbacks: []))
        defer { store.close() }
        let partner = try partnerTranche(try await store.intake(F.loan("L-1"), now: F.now))
        let result = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "D-1", trancheId: partner.id, outcome: .declined), now: F.now)
        #expect(result.loanState == .unfunded && result.unfundedReason == .noCapacity && result.replacement == nil)
        let loan = try #require(try await store.loan(id: "L-1"))
        #expect(loan.state == .unfunded)
        #expect(loan.tranches.map(\.state) == [.released, .declined])
        #expect(try await store.balance(account: LedgerAccounts.poolAvailable(F.pool)) == F.poolCapitalMinor)
        #expect(try await store.balance(account: LedgerAccounts.poolReserved(F.pool)) == 0)
        let destinations = try await store.claimDueOutbox(now: F.now, limit: 10).map(\.destination)
        #expect(destinations == ["partner:\(F.bankA)", "platform"])
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.verifyAudit() == nil)
    }

    /// An answer that arrives at or after the deadline, before the sweep has ended the loan,
    /// ends it as the sweep would: it cannot fund a loan the borrower was promised an answer on.
    @Test func answerAfterTheDeadlineEndsTheLoanUnfundedAsTheSweepWould() async throws {
        for outcome in [FundingConfirmation.Outcome.funded, .declined] {
            let store = try await F.makeStore()
            defer { store.close() }
            let partner = try partnerTranche(try await store.intake(F.loan("L-1"), now: F.now))
            let deadline = F.approvedAt + 7_200
            let late = FundingConfirmation(funderId: F.bankA, serial: "S-late", trancheId: partner.id, outcome: outcome)
            let result = try await store.confirm(late, now: deadline)
            #expect(result.trancheState == .expired && result.loanState == .unfunded && result.unfundedReason == .deadlinePassed, "\(outcome)")
            let loan = try #require(try await store.loan(id: "L-1"))
            #expect(loan.state == .unfunded)
            #expect(loan.tranches.map(\.state) == [.released, .expired], "\(outcome): the pool is released, the answered tranche expired")
            #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankA)) == 0)
            #expect(try await store.balance(account: LedgerAccounts.poolAvailable(F.pool)) == F.poolCapitalMinor)
            let messages = try await store.claimDueOutbox(now: deadline, limit: 10)
            #expect(messages.map(\.destination) == ["partner:\(F.bankA)", "partner:\(F.bankA)", "platform"], "the request, its cancellation, the platform's news")
            #expect(messages.contains { String(decoding: $0.payload, as: UTF8.self).contains("funding.cancel") })
            #expect(String(decoding: messages[2].payload, as: UTF8.self).contains("deadline_passed"))
            #expect(try await store.confirm(late, now: deadline + 50) == result, "a replay answers as first given")
            #expect(try await store.expireOverdue(now: deadline + 60, limit: 10).isEmpty, "nothing is left for the sweep")
            #expect(try await store.verifyLedger() == nil)
            #expect(try await store.verifyAudit() == nil)
        }
        // One second earlier the answer counts.
        let store = try await F.makeStore()
        defer { store.close() }
        let partner = try partnerTranche(try await store.intake(F.loan("L-2"), now: F.now))
        let onTime = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-2", trancheId: partner.id, outcome: .funded), now: F.approvedAt + 7_199)
        #expect(onTime.trancheState == .funded && onTime.loanState == .funded)
    }

    /// A funded partner tranche released because the loan as a whole failed gives back its
    /// day's quota, as declined and expired tranches do.
    @Test func releasedPartnerTrancheGivesBackItsQuota() async throws {
        let rule = RatioRule(id: "two", mode: .coFunding([Share(F.pool, 3_000), Share(F.bankA, 3_500), Share(F.bankB, 3_500)]), fallbacks: [])
        let router = Router(ruleSet: RuleSet(version: 1, rules: [], defaultRule: rule), funders: F.funders, jurisdiction: .cn)
        let store = try await F.makeStore(StoreConfiguration(path: F.temporaryPath(), router: router))
        defer { store.close() }
        let sqlite = try #require(store as? SQLiteStore)
        let tranches = try await store.intake(F.loan("L-1"), now: F.now).tranches
        let a = try #require(tranches.first { $0.funderId == F.bankA })
        let b = try #require(tranches.first { $0.funderId == F.bankB })
        func quota(_ id: String) throws -> Int64 { try sqlite.partnerPosition(funderId: id, now: F.now, businessDayOffsetSeconds: 0).quotaUsedTodayMinor }
        #expect(try quota(F.bankA) == 350_000)
        _ = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "A-1", trancheId: a.id, outcome: .funded), now: F.now)
        let result = try await store.confirm(FundingConfirmation(funderId: F.bankB, serial: "B-1", trancheId: b.id, outcome: .declined), now: F.now)
        #expect(result.loanState == .unfunded)
        #expect(try await store.loan(id: "L-1")?.tranches.first { $0.funderId == F.bankA }?.state == .released)
        #expect(try quota(F.bankA) == 0, "released: neither requested nor funded")
        #expect(try quota(F.bankB) == 0)
        #expect(try sqlite.partnerPosition(funderId: F.bankA, now: F.now, businessDayOffsetSeconds: 0).exposureMinor == 0)
    }

    @Test func expiryUnfundsLoansPastTheirDeadlineOnly() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        _ = try await store.intake(F.loan("L-1"), now: F.now)
        #expect(try await store.expireOverdue(now: F.approvedAt + 7_199, limit: 10).isEmpty)
        let expired = try await store.expireOverdue(now: F.approvedAt + 7_200, limit: 10)
        #expect(expired.map(\.loanId) == ["L-1"])
        #expect(expired.first?.expiredTrancheIds.count == 1 && expired.first?.releasedTrancheIds.count == 1)
        #expect(try await store.loan(id: "L-1")?.state == .unfunded)
        #expect(try await store.loan(id: "L-1")?.tranches.map(\.state) == [.released, .expired])
        #expect(try await store.balance(account: LedgerAccounts.poolAvailable(F.pool)) == F.poolCapitalMinor)
        #expect(try await store.expireOverdue(now: F.approvedAt + 9_000, limit: 10).isEmpty)
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func expiryReachesALoanWhoseDeadlineIsBehindAnEarlierSweep() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        _ = try await store.intake(F.loan("L-late"), now: F.now)
        #expect(try await store.expireOverdue(now: F.approvedAt + 7_300, limit: 10).map(\.loanId) == ["L-late"])
        // Approved earlier than the loan just swept: its deadline lies behind where the sweep got to.
        var early = F.loan("L-early", borrower: "b-2")
        early.approvedAt = F.approvedAt - 200
        guard case .planned = try await store.intake(early, now: F.now) else { Issue.record("L-early not planned"); return }
        #expect(try await store.expireOverdue(now: F.approvedAt + 7_300, limit: 10).map(\.loanId) == ["L-early"])
        #expect(try await store.loan(id: "L-early")?.state == .unfunded)
        #expect(try await store.expireOverdue(now: F.approvedAt + 9_000, limit: 10).isEmpty)
    }

    @Test func outboxLifecycleClaimLeaseBackoffDeadAndSent() async throws {
        var configuration = F.configuration()
        configuration.outbox.attemptsMax = 3
        let store = try await F.makeStore(configuration)
        defer { store.close() }
        _ = try await store.intake(F.loan("L-1"), now: F.now)
        _ = try await store.intake(F.loan("L-2", borrower: "b-2"), now: F.now)
        let claimed = try await store.claimDueOutbox(now: F.now, limit: 10)
        try #require(claimed.count == 2)
        #expect(claimed.allSatisfy { $0.state == .pending && $0.attempts == 0 })
        // Leased: a second claim within the lease sees nothing.
        #expect(try await store.claimDueOutbox(now: F.now + 1, limit: 10).isEmpty)
        let (first, second) = (claimed[0].id, claimed[1].id)
        try await store.markOutboxSent(id: first)
        #expect(try await store.outboxMessage(id: first)?.state == .sent)
        await #expect(throws: StoreError.invalidTransition(entity: "outbox message", id: String(first), from: "sent", to: "sent")) {
            try await store.markOutboxSent(id: first)
        }
        #expect(try await store.markOutboxFailed(id: second, now: F.now) == .failed)
        #expect(try await store.outboxMessage(id: second)?.nextAttemptAt == F.now + 1)
        #expect(try await store.claimDueOutbox(now: F.now, limit: 10).isEmpty)
        #expect(try await store.claimDueOutbox(now: F.now + 1, limit: 10).map(\.id) == [second])
        #expect(try await store.markOutboxFailed(id: second, now: F.now + 1) == .failed)
        #expect(try await store.outboxMessage(id: second)?.nextAttemptAt == F.now + 3)
        #expect(try await store.markOutboxFailed(id: second, now: F.now + 3) == .dead)
        #expect(try await store.claimDueOutbox(now: F.now + 10_000, limit: 10).isEmpty)
        await #expect(throws: StoreError.notFound(entity: "outbox message", id: "999")) {
            _ = try await store.markOutboxFailed(id: 999, now: F.now)
        }
    }

    @Test func unbalancedLedgerTransactionIsRefusedAndNothingWritten() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let unbalanced = LedgerTransaction(kind: "test", reference: "x", at: F.now, postings: [
            LedgerPosting(account: "a", currency: "CNY", amountMinor: 100),
            LedgerPosting(account: "b", currency: "CNY", amountMinor: -99),
        ])
        await #expect(throws: StoreError.unbalancedTransaction(currency: "CNY", sumMinor: 1)) { _ = try await store.post(unbalanced) }
        // Balanced per currency is required, not merely overall.
        let crossCurrency = LedgerTransaction(kind: "test", reference: "y", at: F.now, postings: [
            LedgerPosting(account: "a", currency: "CNY", amountMinor: 100),
            LedgerPosting(account: "c", currency: "USD", amountMinor: -100),
        ])
        await #expect(throws: StoreError.unbalancedTransaction(currency: "CNY", sumMinor: 100)) { _ = try await store.post(crossCurrency) }
        #expect(try await store.balance(account: "a") == 0)
        _ = try await store.post(.transfer(kind: "test", reference: "z", at: F.now, from: "b", to: "a", currency: "CNY", amountMinor: 250))
        #expect(try await store.balance(account: "a") == 250)
        #expect(try await store.balance(account: "b") == -250)
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func concurrentSubmittersAreAllAnsweredExactlyOnce() async throws {
        let store = try await F.makeStore()
        defer { store.close() }
        let loans = 400
        let tranches = try await withThrowingTaskGroup(of: TrancheRecord.self) { group in
            for i in 0..<loans {
                group.addTask {
                    let result = try await store.intake(F.loan("L-\(i)", amountMinor: 100_000, borrower: "b-\(i)"), now: F.now)
                    guard let partner = result.tranches.first(where: { $0.kind == .partner }) else { throw StoreError.closed }
                    return partner
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(tranches.map(\.id)).count == loans)
        let funded = try await withThrowingTaskGroup(of: LoanState.self) { group in
            for tranche in tranches {
                group.addTask {
                    try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-\(tranche.id)", trancheId: tranche.id, outcome: .funded), now: F.now).loanState
                }
            }
            return try await group.reduce(into: 0) { $0 += $1 == .funded ? 1 : 0 }
        }
        #expect(funded == loans)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankA)) == Int64(loans) * 70_000)
        #expect(try await store.balance(account: LedgerAccounts.poolDeployed(F.pool)) == Int64(loans) * 30_000)
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.verifyAudit() == nil)
    }
}
