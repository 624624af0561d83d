/// One posting: a signed amount on an account. Positive is a debit, negative a credit; a
/// transaction's postings sum to zero in every currency.
public struct LedgerPosting: Sendable, Equatable {
    public var account: String
    public var currency: String
    public var amountMinor: Int64

    public init(account: String, currency: String, amountMinor: Int64) {
        self.account = account
        self.currency = currency
        self.amountMinor = amountMinor
    }
}

/// A balanced set of postings recorded together.
public struct LedgerTransaction: Sendable, Equatable {
    public var kind: String
    public var reference: String
    public var at: Int64
    public var postings: [LedgerPosting]

    public init(kind: String, reference: String, at: Int64, postings: [LedgerPosting]) {
        self.kind = kind
        self.reference = reference
        self.at = at
        self.postings = postings
    }

    /// A two-legged transfer: debit `to`, credit `from`.
    public static func transfer(kind: String, reference: String, at: Int64, from: String, to: String, currency: String, amountMinor: Int64) -> LedgerTransaction {
        LedgerTransaction(kind: kind, reference: reference, at: at, postings: [
            LedgerPosting(account: to, currency: currency, amountMinor: amountMinor),
            LedgerPosting(account: from, currency: currency, amountMinor: -amountMinor),
        ])
    }
}

struct LedgerAccountRef {
    var id: Int64
    var currency: String
}

/// The double-entry ledger. Balances are kept per account for fast reads and are checked by
/// `verify` against their recomputation from postings, so a drifting counter is caught.
public enum Ledger {
    public static let postingsPerTransactionMax = 64
    public static let accountBytesMax = 128

    /// Refuses anything that does not balance per currency, before a row is written.
    public static func validate(_ transaction: LedgerTransaction) throws(StoreError) {
        guard transaction.postings.count >= 2, transaction.postings.count <= postingsPerTransactionMax else {
            throw .invalidCommand(field: "ledger.postings", reason: "must hold 2...\(postingsPerTransactionMax) postings")
        }
        // The common case, valid postings in one currency that sum to zero, needs no table of sums.
        if isBalancedInOneCurrency(transaction.postings) { return }
        var sums: [String: Int64] = [:]
        for (index, posting) in transaction.postings.enumerated() {
            guard !posting.account.isEmpty, posting.account.utf8.count <= accountBytesMax else {
                throw .invalidCommand(field: "ledger.postings[\(index)].account", reason: "must be 1...\(accountBytesMax) bytes")
            }
            guard posting.currency.utf8.count == 3, posting.currency.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else {
                throw .invalidCommand(field: "ledger.postings[\(index)].currency", reason: "must be a 3-letter upper-case code")
            }
            guard posting.amountMinor != 0 else {
                throw .invalidCommand(field: "ledger.postings[\(index)].amountMinor", reason: "must not be zero")
            }
            let (sum, overflow) = sums[posting.currency, default: 0].addingReportingOverflow(posting.amountMinor)
            guard !overflow else {
                throw .invalidCommand(field: "ledger.postings[\(index)].amountMinor", reason: "sum overflows Int64")
            }
            sums[posting.currency] = sum
        }
        for (currency, sum) in sums.sorted(by: { $0.key < $1.key }) where sum != 0 {
            throw .unbalancedTransaction(currency: currency, sumMinor: sum)
        }
    }

    private static func isBalancedInOneCurrency(_ postings: [LedgerPosting]) -> Bool {
        let currency = postings[0].currency
        var sum: Int64 = 0
        for posting in postings {
            guard posting.currency == currency, isValid(posting) else { return false }
            let (next, overflow) = sum.addingReportingOverflow(posting.amountMinor)
            guard !overflow else { return false }
            sum = next
        }
        return sum == 0
    }

    private static func isValid(_ posting: LedgerPosting) -> Bool {
        !posting.account.isEmpty && posting.account.utf8.count <= accountBytesMax && posting.amountMinor != 0
            && posting.currency.utf8.count == 3 && posting.currency.utf8.allSatisfy { $0 >= 65 && $0 <= 90 }
    }

    /// Validates and records `transaction` inside the current write transaction.
    @discardableResult
    static func post(_ context: WriteContext, _ transaction: LedgerTransaction) throws -> Int64 {
        try validate(transaction)
        var legs: [Leg] = []
        legs.reserveCapacity(transaction.postings.count)
        for posting in transaction.postings {
            legs.append(Leg(account: try accountID(context, code: posting.account, currency: posting.currency), amountMinor: posting.amountMinor))
        }
        return try post(context, kind: transaction.kind, reference: transaction.reference, at: transaction.at, legs: legs)
    }

    /// A funder's account by role, for the hot path (see `post(_:kind:reference:at:legs:)`).
    enum Role: UInt8 {
        case poolReserved, poolDeployed, partnerCapital, partnerDeployed

        func code(_ funderId: String) -> String {
            switch self {
            case .poolReserved: LedgerAccounts.poolReserved(funderId)
            case .poolDeployed: LedgerAccounts.poolDeployed(funderId)
            case .partnerCapital: LedgerAccounts.partnerCapital(funderId)
            case .partnerDeployed: LedgerAccounts.partnerDeployed(funderId)
            }
        }
    }

    struct RoleKey: Equatable {
        var funderId: String
        var role: Role

        /// For `WriteContext.roleAccountIDs`.
        var hash: UInt64 { ProbingTable<RoleKey, LedgerAccountRef>.hash(funderId, role.rawValue) }
    }

    /// One leg of a transaction whose accounts are already resolved: positive debits.
    struct Leg {
        var account: Int64
        var amountMinor: Int64
    }

    /// The id of `funderId`'s account for `role` in `currency`, created if missing; refuses an
    /// account kept in another currency, as `accountID(_:code:currency:)` does.
    static func account(_ context: WriteContext, _ role: Role, of funderId: String, currency: String) throws -> Int64 {
        let key = RoleKey(funderId: funderId, role: role)
        let hash = key.hash
        let index = context.roleAccountIDs.index(of: key, hash: hash)
        if let index, context.roleAccountIDs.entries[index].value.currency == currency { return context.roleAccountIDs.entries[index].value.id }
        let id = try accountID(context, code: role.code(funderId), currency: currency)
        let account = LedgerAccountRef(id: id, currency: currency)
        if let index {
            context.roleAccountIDs.setValue(account, at: index)
        } else {
            context.roleAccountIDs.append(key, account, hash: hash)
        }
        return id
    }

    /// Records a balanced transaction over resolved accounts (each resolved in the transaction's
    /// currency by `account(_:_:of:currency:)`): the same rows as `post(_:_:)`.
    @discardableResult
    static func post(_ context: WriteContext, kind: String, reference: String, at: Int64, legs: [Leg]) throws -> Int64 {
        guard legs.count >= 2, legs.count <= postingsPerTransactionMax else {
            throw StoreError.invalidCommand(field: "ledger.postings", reason: "must hold 2...\(postingsPerTransactionMax) postings")
        }
        var sum: Int64 = 0
        for (index, leg) in legs.enumerated() {
            guard leg.amountMinor != 0 else {
                throw StoreError.invalidCommand(field: "ledger.postings[\(index)].amountMinor", reason: "must not be zero")
            }
            let (next, overflow) = sum.addingReportingOverflow(leg.amountMinor)
            guard !overflow else {
                throw StoreError.invalidCommand(field: "ledger.postings[\(index)].amountMinor", reason: "sum overflows Int64")
            }
            sum = next
        }
        guard sum == 0 else { throw StoreError.unbalancedTransaction(currency: "(resolved accounts)", sumMinor: sum) }
        let db = context.db
        let insertTransaction = try db.cachedStatement(static: "INSERT INTO ledger_transaction(kind, reference, at) VALUES (?, ?, ?)")
        insertTransaction.reset()
        insertTransaction.bind(kind, at: 1)
        insertTransaction.bind(reference, at: 2)
        insertTransaction.bind(at, at: 3)
        try insertTransaction.step()
        let transactionID = db.lastInsertedRowID
        var start = 0
        while start < legs.count {
            // Four legs in one INSERT (the common completing confirmation), then pairs, then one.
            if legs.count - start >= 4 {
                let insertFour = try db.cachedStatement(static:
                    "INSERT INTO ledger_posting(transaction_id, account_id, amount_minor) VALUES (?1, ?2, ?3), (?1, ?4, ?5), (?1, ?6, ?7), (?1, ?8, ?9)")
                insertFour.reset()
                insertFour.bind(transactionID, at: 1)
                for offset in 0..<4 {
                    insertFour.bind(legs[start + offset].account, at: Int32(2 + 2 * offset))
                    insertFour.bind(legs[start + offset].amountMinor, at: Int32(3 + 2 * offset))
                }
                try insertFour.step()
                start += 4
            } else if legs.count - start >= 2 {
                let insertPair = try db.cachedStatement(static:
                    "INSERT INTO ledger_posting(transaction_id, account_id, amount_minor) VALUES (?1, ?2, ?3), (?1, ?4, ?5)")
                insertPair.reset()
                insertPair.bind(transactionID, at: 1)
                insertPair.bind(legs[start].account, at: 2)
                insertPair.bind(legs[start].amountMinor, at: 3)
                insertPair.bind(legs[start + 1].account, at: 4)
                insertPair.bind(legs[start + 1].amountMinor, at: 5)
                try insertPair.step()
                start += 2
            } else {
                let insertOne = try db.cachedStatement(static: "INSERT INTO ledger_posting(transaction_id, account_id, amount_minor) VALUES (?, ?, ?)")
                insertOne.reset()
                insertOne.bind(transactionID, at: 1)
                insertOne.bind(legs[start].account, at: 2)
                insertOne.bind(legs[start].amountMinor, at: 3)
                try insertOne.step()
                start += 1
            }
        }
        for leg in legs { context.addToBalance(account: leg.account, amountMinor: leg.amountMinor) }
        return transactionID
    }

    static func accountID(_ context: WriteContext, code: String, currency: String) throws -> Int64 {
        if let cached = context.accountIDs[code] {
            guard cached.currency == currency else {
                throw StoreError.invalidCommand(field: "ledger.account", reason: "account \(code) is kept in \(cached.currency), not \(currency)")
            }
            return cached.id
        }
        let db = context.db
        let found = try db.fetchOne("SELECT id, currency FROM ledger_account WHERE code = ?", [.text(code)]) {
            LedgerAccountRef(id: $0.int64(0), currency: $0.text(1))
        }
        let account: LedgerAccountRef
        if let found {
            account = found
        } else {
            try db.execute("INSERT INTO ledger_account(code, currency, balance_minor) VALUES (?, ?, 0)", [.text(code), .text(currency)])
            account = LedgerAccountRef(id: db.lastInsertedRowID, currency: currency)
        }
        context.accountIDs[code] = account
        guard account.currency == currency else {
            throw StoreError.invalidCommand(field: "ledger.account", reason: "account \(code) is kept in \(account.currency), not \(currency)")
        }
        return account.id
    }

    /// An account's balance (its position): the sum of its postings. Zero for an unknown account.
    public static func balance(_ db: Database, account: String) throws -> Int64 {
        try db.fetchInt64("SELECT balance_minor FROM ledger_account WHERE code = ?", [.text(account)]) ?? 0
    }

    /// A balance as the writer sees it mid-batch: stored balance plus changes not yet flushed.
    static func balance(_ context: WriteContext, account: String) throws -> Int64 {
        guard let row = try context.db.fetchOne("SELECT id, balance_minor FROM ledger_account WHERE code = ?", [.text(account)], { ($0.int64(0), $0.int64(1)) }) else {
            return 0
        }
        return row.1 + context.pendingDelta(account: row.0)
    }

    /// Checks every transaction balances per currency and every stored balance equals the sum
    /// of its postings. Nil when sound, otherwise the first problem.
    public static func verify(_ db: Database) throws -> String? {
        if let problem = try db.makeStatement("""
            SELECT p.transaction_id, a.currency, SUM(p.amount_minor), COUNT(*)
            FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id
            GROUP BY p.transaction_id, a.currency
            HAVING SUM(p.amount_minor) != 0 OR COUNT(*) < 2
            ORDER BY p.transaction_id LIMIT 1
            """).fetchOne([], { "ledger transaction \($0.int64(0)) does not balance in \($0.text(1)): sum \($0.int64(2)) over \($0.int64(3)) postings" }) {
            return problem
        }
        // Counting instead of NOT EXISTS: postings have no transaction index (it would slow every write).
        let transactions = try db.fetchInt64("SELECT COUNT(*) FROM ledger_transaction") ?? 0
        let withPostings = try db.fetchInt64("SELECT COUNT(DISTINCT transaction_id) FROM ledger_posting") ?? 0
        if transactions != withPostings {
            return "ledger: \(transactions - withPostings) transactions have no postings"
        }
        return try db.makeStatement("""
            WITH sums(account_id, total) AS (SELECT account_id, SUM(amount_minor) FROM ledger_posting GROUP BY account_id)
            SELECT a.code, a.balance_minor, COALESCE(s.total, 0)
            FROM ledger_account a LEFT JOIN sums s ON s.account_id = a.id
            WHERE a.balance_minor != COALESCE(s.total, 0)
            ORDER BY a.id LIMIT 1
            """).fetchOne { "ledger account \($0.text(0)): stored balance \($0.int64(1)) but its postings sum to \($0.int64(2))" }
    }
}
