/// Bulk seeding for benchmarks and load tests: writes loans awaiting one partner confirmation
/// straight into the tables, in big transactions with `synchronous=OFF` (seeding only; the
/// store itself always runs with `synchronous=FULL`). The result passes `ledger verify`.
public enum StoreSeeder {
    /// Adds `count` loans, each with a funded pool tranche (`poolShareBps` of `amountMinor`) and a
    /// requested partner tranche for the rest. Loan i is "L-i", its partner tranche has id 2i+2.
    /// The pool must have been given capital (`depositToPool`) of at least the pool part in total.
    public static func seedAwaitingLoans(
        path: String, count: Int, amountMinor: Int64, poolShareBps: Int64, poolId: String, partnerId: String,
        currency: String, approvedAt: Int64, deadlineSeconds: Int64, ruleId: String, ruleVersion: Int,
        rowsPerTransaction: Int = 20_000
    ) throws {
        precondition(count >= 0 && amountMinor > 0 && (0...10_000).contains(poolShareBps) && rowsPerTransaction > 0)
        var configuration = Database.Configuration()
        configuration.synchronousFull = false
        let db = try Database(path: path, configuration: configuration)
        defer { db.close() }
        let existing = try db.fetchInt64("SELECT COUNT(*) FROM loan") ?? 0
        guard existing == 0 else { throw StoreError.invalidCommand(field: "path", reason: "seeding needs an empty store") }
        let poolPart = amountMinor * poolShareBps / 10_000
        let partnerPart = amountMinor - poolPart
        var start = 0
        while start < count {
            let end = min(start + rowsPerTransaction, count)
            try db.inTransaction {
                let range: [DatabaseValue] = [.integer(Int64(start)), .integer(Int64(end))]
                try db.execute("""
                    WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
                    INSERT INTO loan_terms(id, loan_ref, borrower_ref, amount_minor, currency, term_months, annual_rate_bps, product, risk_grade,
                                           region, channel, approved_at, deadline_at, rule_id, rule_version)
                    SELECT i + 1, 'L-' || i, 'b-' || i, \(amountMinor), '\(currency)', 12, 1800, 'consumer', 'B', 'GD', 'app',
                           \(approvedAt), \(approvedAt + deadlineSeconds), '\(ruleId)', \(ruleVersion) FROM n
                    """, range)
                try db.execute("""
                    WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
                    INSERT INTO tranche_terms(id, loan_id, funder_id, kind, share_bps, amount_minor, quota_day)
                    SELECT 2 * i + 1, i + 1, '\(poolId)', 'pool', \(poolShareBps), \(poolPart), NULL FROM n
                    UNION ALL
                    SELECT 2 * i + 2, i + 1, '\(partnerId)', 'partner', \(10_000 - poolShareBps), \(partnerPart), 0 FROM n
                    """, range)
                // In key order, as the store writes them: the loan's row, then its tranches'.
                try db.execute("""
                    WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
                    INSERT INTO funding_state(loan_id, tranche_id, state, tranches_open)
                    SELECT i + 1, CASE k.slot WHEN 0 THEN 0 ELSE 2 * i + k.slot END, k.state, k.open
                    FROM n CROSS JOIN (SELECT 0 AS slot, 'awaiting_funding' AS state, 1 AS open
                                       UNION ALL SELECT 1, 'funded', 0 UNION ALL SELECT 2, 'requested', 0) AS k
                    """, range)
                try db.execute("""
                    WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
                    INSERT INTO borrower(borrower_ref, outstanding_minor) SELECT 'b-' || i, \(amountMinor) FROM n
                    """, range)
            }
            start = end
        }
        // One aggregate reservation keeps the ledger's positions equal to the tranches it seeded.
        try db.inTransaction {
            let total = poolPart * Int64(count)
            try db.execute("UPDATE funder SET exposure_minor = exposure_minor + ? WHERE id = ?", [.integer(partnerPart * Int64(count)), .text(partnerId)])
            guard total > 0 else { return }
            try db.execute("INSERT INTO ledger_transaction(kind, reference, at) VALUES ('seed.reserved', 'seed', ?)", [.integer(approvedAt)])
            let transaction = db.lastInsertedRowID
            for (code, amount) in [(LedgerAccounts.poolReserved(poolId), total), (LedgerAccounts.poolAvailable(poolId), -total)] {
                try db.execute("INSERT OR IGNORE INTO ledger_account(code, currency, balance_minor) VALUES (?, ?, 0)", [.text(code), .text(currency)])
                guard let account = try db.fetchInt64("SELECT id FROM ledger_account WHERE code = ?", [.text(code)]) else { continue }
                try db.execute("INSERT INTO ledger_posting(transaction_id, account_id, amount_minor) VALUES (?, ?, ?)",
                               [.integer(transaction), .integer(account), .integer(amount)])
                try db.execute("UPDATE ledger_account SET balance_minor = balance_minor + ? WHERE id = ?", [.integer(amount), .integer(account)])
            }
        }
    }
}
