/// What the writer thread owns besides its connection: in-memory heads and caches that must
/// follow the transaction. Each command runs inside a savepoint; when one rolls back, state
/// captured at its start is restored, so memory never claims a row the database does not have.
public final class WriteContext {
    public let db: Database
    /// The last audit entry's sequence number and hash (genesis: 0 and 32 zero bytes).
    var auditHead: AuditLog.Head
    /// Ledger account ids by code; cleared on rollback since a rolled-back insert frees its id.
    var accountIDs: [String: LedgerAccountRef] = [:]
    private var auditHeadAtCommandStart: AuditLog.Head
    /// Balance changes of this batch not yet written, by account id. Flushed once before COMMIT:
    /// one UPDATE per account per batch instead of one per posting.
    private(set) var pendingBalanceDeltas: [Int64: Int64] = [:]
    /// The current command's balance changes, undone if its savepoint rolls back.
    private var commandBalanceChanges: [(account: Int64, amountMinor: Int64)] = []

    init(db: Database) throws {
        self.db = db
        let head = try AuditLog.loadHead(db)
        self.auditHead = head
        self.auditHeadAtCommandStart = head
    }

    func commandWillBegin() {
        auditHeadAtCommandStart = auditHead
        commandBalanceChanges.removeAll(keepingCapacity: true)
    }

    func commandDidRollBack() {
        auditHead = auditHeadAtCommandStart
        accountIDs.removeAll(keepingCapacity: true)
        for change in commandBalanceChanges { pendingBalanceDeltas[change.account, default: 0] -= change.amountMinor }
        commandBalanceChanges.removeAll(keepingCapacity: true)
    }

    func addToBalance(account: Int64, amountMinor: Int64) {
        pendingBalanceDeltas[account, default: 0] += amountMinor
        commandBalanceChanges.append((account, amountMinor))
    }

    /// Writes the batch's balance changes; runs inside the transaction, right before COMMIT.
    func batchWillCommit() throws {
        let update = try db.cachedStatement("UPDATE ledger_account SET balance_minor = balance_minor + ? WHERE id = ?")
        for (account, delta) in pendingBalanceDeltas where delta != 0 {
            update.reset()
            update.bind(delta, at: 1)
            update.bind(account, at: 2)
            try update.step()
        }
        pendingBalanceDeltas.removeAll(keepingCapacity: true)
        commandBalanceChanges.removeAll(keepingCapacity: true)
    }

    func batchDidRollBack() {
        pendingBalanceDeltas.removeAll(keepingCapacity: true)
        commandBalanceChanges.removeAll(keepingCapacity: true)
        accountIDs.removeAll(keepingCapacity: true)
        // Reloading can only fail if the database is unusable; the next batch will fail loudly then.
        if let head = try? AuditLog.loadHead(db) { auditHead = head }
    }
}
