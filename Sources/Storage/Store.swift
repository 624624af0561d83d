import LendingCore

/// The durable store the gateway runs on. Every mutating call is answered only once its effect
/// is durable (committed and fsync'd); a thrown error means nothing changed.
///
/// The conformance suite (Tests/StorageTests) is written against this protocol, so a second
/// backend (PostgreSQL) can be held to the same behaviour.
public protocol Store: Sendable {
    // MARK: Funding commands (apply LendingCore's decisions)

    /// Routes a newly approved loan: reserves and funds pool tranches, requests partner tranches
    /// through the outbox, records ledger postings and an audit entry. Idempotent by loan id:
    /// the same loan again returns the first answer; a different loan under the same id is
    /// `StoreError.idempotencyConflict`.
    func intake(_ loan: Loan, now: Int64) async throws -> IntakeResult

    /// Applies a partner's funded/declined answer. Idempotent by (funder, serial). A decline
    /// re-routes the tranche, or makes the loan unfunded and releases funded tranches.
    func confirm(_ confirmation: FundingConfirmation, now: Int64) async throws -> ConfirmationResult

    /// Ends up to `limit` loans whose funding deadline has passed: open tranches expire, funded
    /// ones are released with compensating postings, the loan becomes unfunded.
    func expireOverdue(now: Int64, limit: Int) async throws -> [ExpiryResult]

    /// Apportions a repayment over the loan's funded tranches (LendingCore's revenue split) and
    /// posts it: principal back out of each funder's deployed position, interest to each
    /// funder's interest account, the residue to the platform's fees. Idempotent by repayment id.
    func recordRepayment(_ repayment: Repayment, now: Int64) async throws -> RepaymentResult

    /// Adds capital to a pool (ledger: capital → available).
    func depositToPool(funderId: String, amountMinor: Int64, reference: String, now: Int64) async throws

    // MARK: Outbox

    /// Due messages (pending, or failed and due again), leased so no other claim returns them.
    func claimDueOutbox(now: Int64, limit: Int) async throws -> [OutboxMessage]
    func markOutboxSent(id: Int64) async throws
    /// Records a failed attempt: `.failed` with backoff, or `.dead` after the last attempt.
    func markOutboxFailed(id: Int64, now: Int64) async throws -> OutboxMessage.State

    // MARK: Ledger and audit

    /// Records a balanced transaction (refused with nothing written if it does not balance).
    func post(_ transaction: LedgerTransaction) async throws -> Int64
    func appendAudit(actor: String, action: String, payload: [UInt8], now: Int64) async throws

    // MARK: Reads

    func loan(id: String) async throws -> LoanRecord?
    /// An account's balance, derived from its postings (0 for an unknown account).
    func balance(account: String) async throws -> Int64
    func outboxMessage(id: Int64) async throws -> OutboxMessage?
    /// Nil when the ledger is sound, otherwise the first problem.
    func verifyLedger() async throws -> String?
    /// Nil when the audit chain is unbroken, otherwise the first problem.
    func verifyAudit() async throws -> String?

    /// Finishes queued commands and closes the connections.
    func close()
}

/// Ledger account names for funders, in one place.
public enum LedgerAccounts {
    public static func poolCapital(_ id: String) -> String { "pool:\(id):capital" }
    public static func poolAvailable(_ id: String) -> String { "pool:\(id):available" }
    public static func poolReserved(_ id: String) -> String { "pool:\(id):reserved" }
    public static func poolDeployed(_ id: String) -> String { "pool:\(id):deployed" }
    public static func partnerCapital(_ id: String) -> String { "partner:\(id):capital" }
    public static func partnerDeployed(_ id: String) -> String { "partner:\(id):deployed" }
    /// Interest a funder has earned.
    public static func interest(_ kind: FunderKind, _ id: String) -> String { "\(kind.rawValue):\(id):interest" }
    /// Money collected from borrowers, to be settled to funders and the platform.
    public static let collections = "platform:collections"
    /// The platform's service fees (interest residue, penalties and fees).
    public static let platformFees = "platform:fees"
}
