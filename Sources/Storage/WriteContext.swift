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

    init(db: Database) throws {
        self.db = db
        let head = try AuditLog.loadHead(db)
        self.auditHead = head
        self.auditHeadAtCommandStart = head
    }

    func commandWillBegin() {
        auditHeadAtCommandStart = auditHead
    }

    func commandDidRollBack() {
        auditHead = auditHeadAtCommandStart
        accountIDs.removeAll(keepingCapacity: true)
    }

    func batchDidRollBack() {
        accountIDs.removeAll(keepingCapacity: true)
        // Reloading can only fail if the database is unusable; the next batch will fail loudly then.
        if let head = try? AuditLog.loadHead(db) { auditHead = head }
    }
}
