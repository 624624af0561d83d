/// What the writer thread owns besides its connection: in-memory heads and caches that must
/// follow the transaction. Each command runs inside a savepoint; when one rolls back, state
/// captured at its start is restored, so memory never claims a row the database does not have.
///
/// Only the writer thread touches a context, so the properties the hot path mutates skip
/// Swift's dynamic exclusivity checks (`@exclusivity(unchecked)`), which cost more than the
/// table operations they guarded.
public final class WriteContext {
    public let db: Database
    /// The last audit entry's sequence number and hash (genesis: 0 and 32 zero bytes).
    @exclusivity(unchecked) var auditHead: AuditLog.Head
    /// Ledger account ids by code; cleared on rollback since a rolled-back insert frees its id.
    var accountIDs: [String: LedgerAccountRef] = [:]
    /// The same ids by funder and role, so the hot path neither builds nor SipHashes account codes.
    @exclusivity(unchecked) var roleAccountIDs = ProbingTable<Ledger.RoleKey, LedgerAccountRef>()
    private var auditHeadAtCommandStart: AuditLog.Head
    /// The deadline sweep's cursor: every awaiting loan at or below (deadline, loan row) has
    /// been handled. Mirrors the `sweep_cursor` row; restored like the audit head on rollback.
    var sweepCursor: SweepCursor
    private var sweepCursorAtCommandStart: SweepCursor
    /// Balance changes of this batch not yet written, by account id. Flushed once before COMMIT:
    /// one UPDATE per account per batch instead of one per posting. At most one entry per
    /// account a batch touches: `batchCommandsMax` × `Ledger.postingsPerTransactionMax` bounds it.
    @exclusivity(unchecked) private(set) var pendingBalanceDeltas = ProbingTable<Int64, Int64>()
    /// Scratch space for the audit chain's hash input, reused by every entry (see `AuditLog.append`).
    @exclusivity(unchecked) var auditHashInput: [UInt8] = []
    /// The current command's balance changes, undone if its savepoint rolls back.
    @exclusivity(unchecked) private var commandBalanceChanges: [(account: Int64, amountMinor: Int64)] = []

    init(db: Database) throws {
        self.db = db
        let head = try AuditLog.loadHead(db)
        self.auditHead = head
        self.auditHeadAtCommandStart = head
        let cursor = try SweepCursor.load(db)
        self.sweepCursor = cursor
        self.sweepCursorAtCommandStart = cursor
    }

    func commandWillBegin() {
        auditHeadAtCommandStart = auditHead
        sweepCursorAtCommandStart = sweepCursor
        commandBalanceChanges.removeAll(keepingCapacity: true)
    }

    func commandDidRollBack() {
        auditHead = auditHeadAtCommandStart
        sweepCursor = sweepCursorAtCommandStart
        accountIDs.removeAll(keepingCapacity: true)
        roleAccountIDs.removeAll()
        for change in commandBalanceChanges { addToPendingDelta(account: change.account, amountMinor: -change.amountMinor) }
        commandBalanceChanges.removeAll(keepingCapacity: true)
    }

    func addToBalance(account: Int64, amountMinor: Int64) {
        addToPendingDelta(account: account, amountMinor: amountMinor)
        commandBalanceChanges.append((account, amountMinor))
    }

    private func addToPendingDelta(account: Int64, amountMinor: Int64) {
        let hash = ProbingTable<Int64, Int64>.hash(UInt64(bitPattern: account))
        if let index = pendingBalanceDeltas.index(of: account, hash: hash) {
            pendingBalanceDeltas.setValue(pendingBalanceDeltas.entries[index].value + amountMinor, at: index)
        } else {
            pendingBalanceDeltas.append(account, amountMinor, hash: hash)
        }
    }

    /// This batch's unwritten change to `account`'s balance.
    func pendingDelta(account: Int64) -> Int64 {
        pendingBalanceDeltas.value(for: account, hash: ProbingTable<Int64, Int64>.hash(UInt64(bitPattern: account))) ?? 0
    }

    /// Writes the batch's balance changes; runs inside the transaction, right before COMMIT.
    func batchWillCommit() throws {
        let update = try db.cachedStatement("UPDATE ledger_account SET balance_minor = balance_minor + ? WHERE id = ?")
        for entry in pendingBalanceDeltas.entries where entry.value != 0 {
            update.reset()
            update.bind(entry.value, at: 1)
            update.bind(entry.key, at: 2)
            try update.step()
        }
        pendingBalanceDeltas.removeAll()
        commandBalanceChanges.removeAll(keepingCapacity: true)
    }

    func batchDidRollBack() {
        pendingBalanceDeltas.removeAll()
        commandBalanceChanges.removeAll(keepingCapacity: true)
        accountIDs.removeAll(keepingCapacity: true)
        roleAccountIDs.removeAll()
        // Reloading can only fail if the database is unusable; the next batch will fail loudly then.
        if let head = try? AuditLog.loadHead(db) { auditHead = head }
        // If the cursor cannot be read back, start the sweep from the beginning: slower, never skipping.
        sweepCursor = (try? SweepCursor.load(db)) ?? SweepCursor(deadlineAt: .min, loanRow: 0)
    }
}

/// Where the deadline sweep has got to, ordered by (deadline, loan row) as the index is.
struct SweepCursor: Equatable, Comparable {
    var deadlineAt: Int64
    var loanRow: Int64

    static func < (a: SweepCursor, b: SweepCursor) -> Bool {
        (a.deadlineAt, a.loanRow) < (b.deadlineAt, b.loanRow)
    }

    static func load(_ db: Database) throws -> SweepCursor {
        try db.fetchOne("SELECT deadline_at, loan_id FROM sweep_cursor WHERE id = 1") {
            SweepCursor(deadlineAt: $0.int64(0), loanRow: $0.int64(1))
        } ?? SweepCursor(deadlineAt: 0, loanRow: 0)
    }

    /// Moves the cursor (persisted in the current transaction).
    static func store(_ cursor: SweepCursor, _ context: WriteContext) throws {
        guard cursor != context.sweepCursor else { return }
        try context.db.execute("UPDATE sweep_cursor SET deadline_at = ?, loan_id = ? WHERE id = 1",
                               [.integer(cursor.deadlineAt), .integer(cursor.loanRow)])
        context.sweepCursor = cursor
    }
}
