/// The store's migrations. Append new ones; never edit one that has shipped.
enum StoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-core") { db in try db.execute(v1) }
        migrator.registerMigration("v2-repayments") { db in try db.execute(v2) }
        migrator.registerMigration("v3-confirmation-idempotency") { db in try db.execute(v3) }
        migrator.registerMigration("v4-deadline-sweep-cursor") { db in try db.execute(v4) }
        migrator.registerMigration("v5-funding-state") { db in try db.execute(v5) }
        return migrator
    }

    // Few indexes on purpose: every index is paid on every write of the hot path.
    private static let v1 = """
        CREATE TABLE funder (
            id TEXT PRIMARY KEY NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('pool', 'partner')),
            currency TEXT NOT NULL,
            exposure_minor INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE partner_quota (
            funder_id TEXT NOT NULL REFERENCES funder(id),
            business_day INTEGER NOT NULL,
            used_minor INTEGER NOT NULL,
            PRIMARY KEY (funder_id, business_day)
        ) WITHOUT ROWID;
        CREATE TABLE borrower (
            borrower_ref TEXT PRIMARY KEY NOT NULL,
            outstanding_minor INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE rule_set (
            version INTEGER PRIMARY KEY,
            rules_count INTEGER NOT NULL,
            first_used_at INTEGER NOT NULL
        );
        CREATE TABLE allocation_total (
            rule_id TEXT NOT NULL,
            rule_version INTEGER NOT NULL,
            funder_id TEXT NOT NULL,
            amount_minor INTEGER NOT NULL,
            PRIMARY KEY (rule_id, rule_version, funder_id)
        ) WITHOUT ROWID;
        CREATE TABLE loan (
            id INTEGER PRIMARY KEY,
            loan_ref TEXT NOT NULL UNIQUE,
            borrower_ref TEXT NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            term_months INTEGER NOT NULL,
            annual_rate_bps INTEGER NOT NULL,
            product TEXT NOT NULL,
            risk_grade TEXT NOT NULL,
            region TEXT NOT NULL,
            channel TEXT NOT NULL,
            approved_at INTEGER NOT NULL,
            deadline_at INTEGER NOT NULL,
            rule_id TEXT NOT NULL,
            rule_version INTEGER NOT NULL,
            state TEXT NOT NULL,
            tranches_open INTEGER NOT NULL
        );
        CREATE INDEX loan_awaiting_deadline ON loan(deadline_at) WHERE state = 'awaiting_funding';
        CREATE TABLE tranche (
            id INTEGER PRIMARY KEY,
            loan_id INTEGER NOT NULL REFERENCES loan(id),
            funder_id TEXT NOT NULL REFERENCES funder(id),
            kind TEXT NOT NULL,
            share_bps INTEGER NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            state TEXT NOT NULL,
            quota_day INTEGER
        );
        CREATE INDEX tranche_loan ON tranche(loan_id);
        CREATE TABLE confirmation (
            id INTEGER PRIMARY KEY,
            funder_id TEXT NOT NULL,
            serial TEXT NOT NULL,
            tranche_id INTEGER NOT NULL REFERENCES tranche(id),
            outcome TEXT NOT NULL,
            at INTEGER NOT NULL,
            UNIQUE (funder_id, serial)
        );
        CREATE TABLE repayment (
            id INTEGER PRIMARY KEY,
            repayment_ref TEXT NOT NULL UNIQUE,
            loan_id INTEGER NOT NULL REFERENCES loan(id),
            principal_minor INTEGER NOT NULL,
            interest_minor INTEGER NOT NULL,
            at INTEGER NOT NULL
        );
        CREATE TABLE idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash BLOB NOT NULL,
            response BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (scope, key)
        ) WITHOUT ROWID;
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            destination TEXT NOT NULL,
            payload BLOB NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at INTEGER NOT NULL,
            state INTEGER NOT NULL
        );
        CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE state IN (0, 2);
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            payload BLOB NOT NULL,
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL
        );
        CREATE TABLE ledger_account (
            id INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            currency TEXT NOT NULL,
            balance_minor INTEGER NOT NULL
        );
        CREATE TABLE ledger_transaction (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            reference TEXT NOT NULL,
            at INTEGER NOT NULL
        );
        CREATE TABLE ledger_posting (
            id INTEGER PRIMARY KEY,
            transaction_id INTEGER NOT NULL REFERENCES ledger_transaction(id),
            account_id INTEGER NOT NULL REFERENCES ledger_account(id),
            amount_minor INTEGER NOT NULL CHECK (amount_minor != 0)
        );
        """

    /// Repayments apportioned per tranche. v1's `repayment` table was never written, so it is
    /// replaced rather than altered.
    private static let v2 = """
        DROP TABLE repayment;
        CREATE TABLE repayment (
            id INTEGER PRIMARY KEY,
            repayment_ref TEXT NOT NULL UNIQUE,
            loan_id INTEGER NOT NULL REFERENCES loan(id),
            principal_minor INTEGER NOT NULL CHECK (principal_minor >= 0),
            interest_minor INTEGER NOT NULL CHECK (interest_minor >= 0),
            penalty_and_fees_minor INTEGER NOT NULL CHECK (penalty_and_fees_minor >= 0),
            platform_fee_minor INTEGER NOT NULL,
            at INTEGER NOT NULL
        );
        CREATE TABLE repayment_part (
            repayment_id INTEGER NOT NULL REFERENCES repayment(id),
            tranche_id INTEGER NOT NULL REFERENCES tranche(id),
            principal_minor INTEGER NOT NULL,
            interest_minor INTEGER NOT NULL,
            PRIMARY KEY (repayment_id, tranche_id)
        ) WITHOUT ROWID;
        ALTER TABLE loan ADD COLUMN principal_repaid_minor INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE tranche ADD COLUMN principal_repaid_minor INTEGER NOT NULL DEFAULT 0;
        """

    /// A confirmation row is its own idempotency record: its tranche and outcome are the
    /// request a replay must match, and the answer first given moves onto it, so the hottest
    /// command writes one row fewer. Existing records are moved over in the same transaction,
    /// so an upgraded database answers replays as before.
    private static let v3 = """
        ALTER TABLE confirmation ADD COLUMN response BLOB;
        UPDATE confirmation SET response = (
            SELECT i.response FROM idempotency i
            WHERE i.scope = 'confirmation' AND i.key = confirmation.funder_id || '/' || confirmation.serial);
        DELETE FROM idempotency WHERE scope = 'confirmation';
        """

    /// The deadline sweep walks a plain index on `deadline_at` from a persisted cursor instead of
    /// a partial index of awaiting loans: that index lost an entry — a write to a page at a
    /// random place — every time a loan was funded, the hottest command. The cursor starts
    /// just below the earliest awaiting deadline (or past every loan when none awaits).
    private static let v4 = """
        CREATE TABLE sweep_cursor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            deadline_at INTEGER NOT NULL,
            loan_id INTEGER NOT NULL
        );
        INSERT INTO sweep_cursor(id, deadline_at, loan_id)
        SELECT 1,
               COALESCE((SELECT MIN(deadline_at) - 1 FROM loan WHERE state = 'awaiting_funding'), (SELECT MAX(deadline_at) FROM loan), 0),
               CASE WHEN EXISTS (SELECT 1 FROM loan WHERE state = 'awaiting_funding') THEN 0 ELSE COALESCE((SELECT MAX(id) FROM loan), 0) END;
        DROP INDEX loan_awaiting_deadline;
        CREATE INDEX loan_deadline ON loan(deadline_at);
        """

    /// The state that changes while a loan is funded moves out of the wide `loan` and `tranche`
    /// rows into one narrow table keyed by (loan, tranche), the loan's own row at tranche 0. A
    /// confirmation used to rewrite two wide rows at random places (two pages each time); now it
    /// rewrites two neighbouring narrow rows, usually on one page shared with some fifty other
    /// loans, which cuts the WAL written per commit and what checkpoints copy. The terms that
    /// never change stay where they were, renamed `loan_terms` and `tranche_terms` (foreign keys
    /// follow the rename); `loan` and `tranche` become views with the old columns, so every
    /// reader is unchanged. Writers address the tables.
    private static let v5 = """
        ALTER TABLE loan RENAME TO loan_terms;
        ALTER TABLE tranche RENAME TO tranche_terms;
        CREATE TABLE funding_state (
            loan_id INTEGER NOT NULL,
            tranche_id INTEGER NOT NULL,
            state TEXT NOT NULL,
            tranches_open INTEGER NOT NULL DEFAULT 0,
            principal_repaid_minor INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (loan_id, tranche_id)
        ) WITHOUT ROWID;
        INSERT INTO funding_state(loan_id, tranche_id, state, tranches_open, principal_repaid_minor)
            SELECT id, 0, state, tranches_open, principal_repaid_minor FROM loan_terms;
        INSERT INTO funding_state(loan_id, tranche_id, state, tranches_open, principal_repaid_minor)
            SELECT loan_id, id, state, 0, principal_repaid_minor FROM tranche_terms;
        ALTER TABLE loan_terms DROP COLUMN state;
        ALTER TABLE loan_terms DROP COLUMN tranches_open;
        ALTER TABLE loan_terms DROP COLUMN principal_repaid_minor;
        ALTER TABLE tranche_terms DROP COLUMN state;
        ALTER TABLE tranche_terms DROP COLUMN principal_repaid_minor;
        CREATE VIEW loan AS
            SELECT t.id, t.loan_ref, t.borrower_ref, t.amount_minor, t.currency, t.term_months, t.annual_rate_bps, t.product,
                   t.risk_grade, t.region, t.channel, t.approved_at, t.deadline_at, t.rule_id, t.rule_version,
                   s.state, s.tranches_open, s.principal_repaid_minor
            FROM loan_terms t LEFT JOIN funding_state s ON s.loan_id = t.id AND s.tranche_id = 0;
        CREATE VIEW tranche AS
            SELECT t.id, t.loan_id, t.funder_id, t.kind, t.share_bps, t.amount_minor, s.state, t.quota_day, s.principal_repaid_minor
            FROM tranche_terms t LEFT JOIN funding_state s ON s.loan_id = t.loan_id AND s.tranche_id = t.id;
        """
}
