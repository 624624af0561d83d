/// Whole-database checks behind `jointlend ledger verify` and `jointlend audit verify`. They
/// recompute from the rows and compare with what the store keeps, so drift shows.
public enum StoreVerifier {
    /// Opens `path` read-only and checks the ledger. Nil when sound, otherwise the first problem.
    public static func verifyLedger(path: String) throws -> String? {
        try withReadOnly(path) { try verifyLedger($0) }
    }

    /// Opens `path` read-only and checks the audit chain. Nil when sound, otherwise the first problem.
    public static func verifyAudit(path: String) throws -> String? {
        try withReadOnly(path) { try AuditLog.verify($0) }
    }

    private static func withReadOnly<T>(_ path: String, _ body: (Database) throws -> T) throws -> T {
        var configuration = Database.Configuration()
        configuration.readOnly = true
        let db = try Database(path: path, configuration: configuration)
        defer { db.close() }
        let known = Set(StoreSchema.migrator.migrations.map(\.id))
        let applied = try db.makeStatement("SELECT id FROM schema_migrations").fetchAll { $0.text(0) }
        if let unknown = applied.first(where: { !known.contains($0) }) {
            throw DatabaseMigrator.MigrationError.unknownMigrations([unknown])
        }
        guard applied.count == known.count else {
            throw StoreError.invalidCommand(field: "db", reason: "not a JointLend store (schema missing)")
        }
        try db.execute("BEGIN DEFERRED")
        defer { try? db.execute("COMMIT") }
        return try body(db)
    }

    /// The ledger balances; tranche amounts sum to their loans; partner exposure and pool
    /// positions equal their recomputation from tranches.
    static func verifyLedger(_ db: Database) throws -> String? {
        if let problem = try Ledger.verify(db) { return problem }
        if let problem = try verifyFundingState(db) { return problem }
        // One pass over the state rows, clustered by loan (the loan's own first), each with its
        // tranche's terms: active tranches sum to the loan, the open count and principal repaid
        // recorded on the loan match its tranches.
        let active = "('planned', 'requested', 'funded')"
        if let problem = try db.makeStatement("""
            SELECT l.loan_ref, l.amount_minor,
                   MAX(CASE WHEN s.tranche_id = 0 THEN s.state END),
                   MAX(CASE WHEN s.tranche_id = 0 THEN s.tranches_open END),
                   MAX(CASE WHEN s.tranche_id = 0 THEN s.principal_repaid_minor END),
                   COALESCE(SUM(CASE WHEN s.tranche_id > 0 AND s.state IN \(active) THEN t.amount_minor END), 0),
                   COUNT(CASE WHEN s.tranche_id > 0 AND s.state IN ('planned', 'requested') THEN 1 END),
                   COALESCE(SUM(CASE WHEN s.tranche_id > 0 THEN s.principal_repaid_minor END), 0)
            FROM funding_state s JOIN loan_terms l ON l.id = s.loan_id
            LEFT JOIN tranche_terms t ON s.tranche_id > 0 AND t.id = s.tranche_id
            GROUP BY s.loan_id
            HAVING (MAX(CASE WHEN s.tranche_id = 0 THEN s.state END) IN ('awaiting_funding', 'funded', 'repaying', 'closed', 'charged_off')
                    AND l.amount_minor != COALESCE(SUM(CASE WHEN s.tranche_id > 0 AND s.state IN \(active) THEN t.amount_minor END), 0))
                OR (MAX(CASE WHEN s.tranche_id = 0 THEN s.state END) = 'unfunded'
                    AND COALESCE(SUM(CASE WHEN s.tranche_id > 0 AND s.state IN \(active) THEN t.amount_minor END), 0) != 0)
                OR MAX(CASE WHEN s.tranche_id = 0 THEN s.tranches_open END) != COUNT(CASE WHEN s.tranche_id > 0 AND s.state IN ('planned', 'requested') THEN 1 END)
                OR MAX(CASE WHEN s.tranche_id = 0 THEN s.principal_repaid_minor END) != COALESCE(SUM(CASE WHEN s.tranche_id > 0 THEN s.principal_repaid_minor END), 0)
                OR MAX(CASE WHEN s.tranche_id = 0 THEN s.principal_repaid_minor END) > l.amount_minor
            LIMIT 1
            """).fetchOne([], { row -> String in
                let (loanId, amount, state) = (row.text(0), row.int64(1), row.text(2))
                let (open, repaid, activeSum, openActual, repaidTranches) = (row.int64(3), row.int64(4), row.int64(5), row.int64(6), row.int64(7))
                let amountMismatch = state == "unfunded" ? activeSum != 0 : amount != activeSum
                if amountMismatch { return "loan \(loanId) (\(state)): amount \(amount) but its active tranches sum to \(activeSum)" }
                if open != openActual { return "loan \(loanId): records \(open) open tranches but has \(openActual)" }
                return "loan \(loanId): records \(repaid) principal repaid but its tranches \(repaidTranches)"
            }) {
            return problem
        }
        if let problem = try db.makeStatement("""
            WITH outstanding(funder_id, amount) AS (
                SELECT t.funder_id, SUM(t.amount_minor - s.principal_repaid_minor)
                FROM funding_state s JOIN tranche_terms t ON t.id = s.tranche_id
                WHERE s.tranche_id > 0 AND s.state IN ('requested', 'funded') GROUP BY t.funder_id
            )
            SELECT f.id, f.exposure_minor, COALESCE(o.amount, 0) FROM funder f LEFT JOIN outstanding o ON o.funder_id = f.id
            WHERE f.kind = 'partner' AND f.exposure_minor != COALESCE(o.amount, 0) LIMIT 1
            """).fetchOne([], { "funder \($0.text(0)): exposure \($0.int64(1)) but its requested and funded tranches' outstanding principal sums to \($0.int64(2))" }) {
            return problem
        }
        // Positions of tranche money in the ledger must match the tranches themselves.
        return try db.makeStatement("""
            WITH expected(code, amount) AS (
                SELECT 'partner:' || t.funder_id || ':deployed', SUM(t.amount_minor - t.principal_repaid_minor) FROM tranche t
                WHERE t.kind = 'partner' AND t.state = 'funded' GROUP BY t.funder_id
                UNION ALL
                SELECT 'pool:' || t.funder_id || CASE l.state WHEN 'awaiting_funding' THEN ':reserved' ELSE ':deployed' END, SUM(t.amount_minor - t.principal_repaid_minor)
                FROM tranche t JOIN loan l ON l.id = t.loan_id
                WHERE t.kind = 'pool' AND t.state = 'funded' GROUP BY 1
            ),
            totals(code, amount) AS (SELECT code, SUM(amount) FROM expected GROUP BY code)
            SELECT a.code, a.balance_minor, COALESCE(x.amount, 0)
            FROM ledger_account a LEFT JOIN totals x ON x.code = a.code
            WHERE (a.code LIKE 'partner:%:deployed' OR a.code LIKE 'pool:%:reserved' OR a.code LIKE 'pool:%:deployed')
              AND a.balance_minor != COALESCE(x.amount, 0)
            LIMIT 1
            """).fetchOne { "ledger account \($0.text(0)): balance \($0.int64(1)) but funded tranches sum to \($0.int64(2))" }
    }

    /// Every loan and tranche has exactly its one state row (the views would show a missing one
    /// as a null state), and no state row belongs to nothing.
    static func verifyFundingState(_ db: Database) throws -> String? {
        if let problem = try db.makeStatement("""
            SELECT t.loan_ref FROM loan_terms t
            WHERE NOT EXISTS (SELECT 1 FROM funding_state s WHERE s.loan_id = t.id AND s.tranche_id = 0) LIMIT 1
            """).fetchOne([], { "loan \($0.text(0)) has no funding state row" }) {
            return problem
        }
        if let problem = try db.makeStatement("""
            SELECT t.id FROM tranche_terms t
            WHERE NOT EXISTS (SELECT 1 FROM funding_state s WHERE s.loan_id = t.loan_id AND s.tranche_id = t.id) LIMIT 1
            """).fetchOne([], { "tranche \($0.int64(0)) has no funding state row" }) {
            return problem
        }
        return try db.makeStatement("""
            SELECT s.loan_id, s.tranche_id FROM funding_state s
            WHERE (s.tranche_id = 0 AND NOT EXISTS (SELECT 1 FROM loan_terms l WHERE l.id = s.loan_id))
               OR (s.tranche_id != 0 AND (s.tranches_open != 0 OR NOT EXISTS (SELECT 1 FROM tranche_terms t WHERE t.id = s.tranche_id AND t.loan_id = s.loan_id)))
            LIMIT 1
            """).fetchOne([], { "funding state row (loan \($0.int64(0)), tranche \($0.int64(1))) belongs to no loan or tranche" })
    }
}
