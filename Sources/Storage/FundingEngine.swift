import LendingCore
import PartnerSigning

/// The I/O around LendingCore's decisions, run on the writer inside one command's savepoint:
/// read capacities, ask the router, write tranches, postings, outbox messages and audit.
final class FundingEngine: Sendable {
    let router: Router
    let configuration: StoreConfiguration

    init(router: Router, configuration: StoreConfiguration) {
        self.router = router
        self.configuration = configuration
    }

    private var actor: String { configuration.auditActor }

    /// Bounds rows read per loan; the router plans far fewer tranches than this.
    static let tranchesPerLoanMax = 256

    func businessDay(_ now: Int64) -> Int64 {
        (now + configuration.businessDayOffsetSeconds) / 86_400
    }

    // MARK: Intake

    func intake(_ context: WriteContext, loan: Loan, now: Int64) throws -> IntakeResult {
        if let problem = loan.validationProblem() {
            throw StoreError.invalidCommand(field: "loan.\(problem.field)", reason: problem.message)
        }
        let requestHash = Self.hash(loan)
        switch try IdempotencyRecords.lookup(context, scope: "loan.intake", key: loan.loanId, requestHash: requestHash) {
        case .replay(let stored): return try IntakeResult(encoded: stored)
        case .new: break
        }
        let result = try route(context, loan: loan, now: now)
        try IdempotencyRecords.record(context, scope: "loan.intake", key: loan.loanId, requestHash: requestHash, response: result.encoded, now: now)
        return result
    }

    private func route(_ context: WriteContext, loan: Loan, now: Int64) throws -> IntakeResult {
        let db = context.db
        let capacities = try snapshot(context, borrowerRef: loan.borrowerRef, now: now)
        let allocations = try allocationTotals(db, for: loan)
        let plan: FundingPlan
        switch router.route(loan: loan, capacities: capacities, allocations: allocations, now: now) {
        case .rejected(let rejection):
            try AuditLog.append(context, at: now, actor: actor, action: "loan.rejected",
                                payload: Array("loan=\(loan.loanId) code=\(rejection.code.rawValue)".utf8))
            return .rejected(rejection)
        case .planned(let planned):
            plan = planned
        }
        try db.execute("INSERT OR IGNORE INTO rule_set(version, rules_count, first_used_at) VALUES (?, ?, ?)",
                       [.integer(Int64(plan.ruleVersion)), .integer(Int64(router.ruleSet.rules.count)), .integer(now)])
        try db.execute("""
            INSERT INTO loan_terms(loan_ref, borrower_ref, amount_minor, currency, term_months, annual_rate_bps, product,
                                   risk_grade, region, channel, approved_at, deadline_at, rule_id, rule_version)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [
            .text(loan.loanId), .text(loan.borrowerRef), .integer(loan.amountMinor), .text(loan.currency.code),
            .integer(Int64(loan.termMonths)), .integer(Int64(loan.annualRateBps)), .text(loan.product), .text(loan.riskGrade),
            .text(loan.region), .text(loan.channel), .integer(loan.approvedAt), .integer(router.deadline(forApprovedAt: loan.approvedAt)),
            .text(plan.ruleId), .integer(Int64(plan.ruleVersion)),
        ])
        let loanRow = db.lastInsertedRowID
        // A loan whose deadline lies behind the sweep (approved long ago) pulls the cursor back,
        // so the sweep still reaches it.
        let placed = SweepCursor(deadlineAt: router.deadline(forApprovedAt: loan.approvedAt), loanRow: loanRow)
        if placed <= context.sweepCursor {
            try SweepCursor.store(SweepCursor(deadlineAt: placed.deadlineAt, loanRow: loanRow - 1), context)
        }
        var tranches: [TrancheRecord] = []
        var open: Int64 = 0
        for planned in plan.tranches {
            let tranche = try openTranche(context, loanRow: loanRow, loanId: loan.loanId, currency: loan.currency.code, planned, now: now)
            if !tranche.state.isFinal { open += 1 }
            tranches.append(tranche)
        }
        // The loan's state row comes last, once its open tranches are counted.
        try db.execute("INSERT INTO funding_state(loan_id, tranche_id, state, tranches_open) VALUES (?, 0, ?, ?)", [
            .integer(loanRow), .text((open == 0 ? LoanState.funded : LoanState.awaitingFunding).rawValue), .integer(open),
        ])
        if let allocation = plan.allocation {
            try db.execute("""
                INSERT INTO allocation_total(rule_id, rule_version, funder_id, amount_minor) VALUES (?, ?, ?, ?)
                ON CONFLICT(rule_id, rule_version, funder_id) DO UPDATE SET amount_minor = amount_minor + excluded.amount_minor
                """, [.text(allocation.key.ruleId), .integer(Int64(allocation.key.ruleVersion)), .text(allocation.funderId), .integer(allocation.amountMinor)])
        }
        try db.execute("""
            INSERT INTO borrower(borrower_ref, outstanding_minor) VALUES (?, ?)
            ON CONFLICT(borrower_ref) DO UPDATE SET outstanding_minor = outstanding_minor + excluded.outstanding_minor
            """, [.text(loan.borrowerRef), .integer(loan.amountMinor)])
        var state = LoanState.awaitingFunding
        if open == 0 {
            try markLoanFunded(context, loanRow: loanRow, loanId: loan.loanId, currency: loan.currency.code, now: now, stateAlreadySet: true)
            state = .funded
        }
        let summary = tranches.map { "\($0.funderId):\($0.amountMinor):\($0.state.rawValue)" }.joined(separator: ",")
        try AuditLog.append(context, at: now, actor: actor, action: "loan.planned",
                            payload: Array("loan=\(loan.loanId) rule=\(plan.ruleId)@\(plan.ruleVersion) tranches=\(summary)".utf8))
        return .planned(loanId: loan.loanId, state: state, tranches: tranches)
    }

    /// Writes one planned tranche: a pool tranche is reserved and funded at once; a partner
    /// tranche is requested through the outbox and counts against quota and exposure.
    private func openTranche(_ context: WriteContext, loanRow: Int64, loanId: String, currency: String, _ planned: PlannedTranche, now: Int64) throws -> TrancheRecord {
        let db = context.db
        let state: TrancheState = planned.kind == .pool ? .funded : .requested
        let day: DatabaseValue = planned.kind == .partner ? .integer(businessDay(now)) : .null
        try db.execute("INSERT INTO tranche_terms(loan_id, funder_id, kind, share_bps, amount_minor, quota_day) VALUES (?, ?, ?, ?, ?, ?)", [
            .integer(loanRow), .text(planned.funderId), .text(planned.kind.rawValue), .integer(Int64(planned.shareBps)),
            .integer(planned.amountMinor), day,
        ])
        let trancheRow = db.lastInsertedRowID
        try db.execute("INSERT INTO funding_state(loan_id, tranche_id, state) VALUES (?, ?, ?)", [.integer(loanRow), .integer(trancheRow), .text(state.rawValue)])
        let record = TrancheRecord(id: trancheRow, loanId: loanId, funderId: planned.funderId, kind: planned.kind,
                                   shareBps: planned.shareBps, amountMinor: planned.amountMinor, state: state)
        switch planned.kind {
        case .pool:
            try Ledger.post(context, .transfer(kind: "tranche.reserved", reference: "tranche:\(record.id)", at: now,
                                               from: LedgerAccounts.poolAvailable(planned.funderId), to: LedgerAccounts.poolReserved(planned.funderId),
                                               currency: currency, amountMinor: planned.amountMinor))
        case .partner:
            try adjustPartner(context, funderId: planned.funderId, day: businessDay(now), amountMinor: planned.amountMinor)
            let payload = "{\"type\":\"funding.request\",\"loanId\":\(jsonString(loanId)),\"trancheId\":\(record.id),\"funderId\":\(jsonString(planned.funderId)),\"amountMinor\":\(planned.amountMinor),\"currency\":\(jsonString(currency))}"
            try Outbox.enqueue(context, destination: "partner:\(planned.funderId)", payload: Array(payload.utf8), now: now)
        }
        return record
    }

    /// Adds `amountMinor` (negative to give back) to a partner's exposure and to its quota used on `day`.
    private func adjustPartner(_ context: WriteContext, funderId: String, day: Int64?, amountMinor: Int64) throws {
        let db = context.db
        try db.execute("UPDATE funder SET exposure_minor = exposure_minor + ? WHERE id = ?", [.integer(amountMinor), .text(funderId)])
        if let day {
            try db.execute("""
                INSERT INTO partner_quota(funder_id, business_day, used_minor) VALUES (?, ?, ?)
                ON CONFLICT(funder_id, business_day) DO UPDATE SET used_minor = used_minor + excluded.used_minor
                """, [.text(funderId), .integer(day), .integer(amountMinor)])
        }
    }

    /// The loan's last open tranche was funded: deploy the pool's reservations, tell the platform.
    /// `stateAlreadySet` when the caller's UPDATE already moved the loan to funded. `funding`, the
    /// transaction of the partner answer that completed the loan, is posted with the deployments
    /// as one transaction (one row and statement fewer on the hottest path); without it the
    /// deployments are a transaction of their own.
    struct PoolTranche {
        var trancheId: Int64
        var funderId: String
        var amountMinor: Int64
    }

    /// A partner answer's funding legs, posted as `tranche.funded`.
    struct Funding {
        var reference: String
        var legs: [Ledger.Leg]
    }

    private func markLoanFunded(_ context: WriteContext, loanRow: Int64, loanId: String, currency: String, now: Int64,
                                stateAlreadySet: Bool = false, funding: Funding? = nil, pools known: [PoolTranche]? = nil) throws {
        let db = context.db
        if !stateAlreadySet {
            try db.execute("UPDATE funding_state SET state = 'funded' WHERE loan_id = ? AND tranche_id = 0", [.integer(loanRow)])
        }
        let pools: [PoolTranche]
        if let known {
            pools = known
        } else {
            let selectPools = try db.cachedStatement(static: "SELECT id, funder_id, amount_minor FROM tranche WHERE loan_id = ? AND kind = 'pool' AND state = 'funded'")
            selectPools.reset()
            selectPools.bind(loanRow, at: 1)
            pools = try selectPools.fetchAllCurrent(rowsMax: Self.tranchesPerLoanMax) {
                PoolTranche(trancheId: $0.int64(0), funderId: $0.text(1), amountMinor: $0.int64(2))
            }
        }
        // The completing answer's funding carries the pools' deployment (reserved → deployed);
        // without one, the deployment is a transaction of its own. Chunked past the posting bound.
        var kind = funding == nil ? "tranche.deployed" : "tranche.funded"
        var reference = funding?.reference ?? (pools.count == 1 ? "tranche:\(pools[0].trancheId)" : "loan:\(loanRow)")
        var legs = funding?.legs ?? []
        legs.reserveCapacity(legs.count + 2 * pools.count)
        for pool in pools {
            if legs.count + 2 > Ledger.postingsPerTransactionMax {
                try Ledger.post(context, kind: kind, reference: reference, at: now, legs: legs)
                legs.removeAll(keepingCapacity: true)
                kind = "tranche.deployed"
                reference = "loan:\(loanRow)"
            }
            legs.append(Ledger.Leg(account: try Ledger.account(context, .poolDeployed, of: pool.funderId, currency: currency), amountMinor: pool.amountMinor))
            legs.append(Ledger.Leg(account: try Ledger.account(context, .poolReserved, of: pool.funderId, currency: currency), amountMinor: -pool.amountMinor))
        }
        if !legs.isEmpty { try Ledger.post(context, kind: kind, reference: reference, at: now, legs: legs) }
        var payload = TextBytes()
        payload.append("{\"type\":\"loan.funded\",\"loanId\":")
        payload.appendJSONString(loanId)
        payload.append("}")
        try Outbox.enqueue(context, destination: configuration.platformDestination, payload: payload.bytes, now: now)
    }

    // MARK: Confirmation

    private struct TrancheRow {
        var loanRow: Int64
        var funderId: String
        var amountMinor: Int64
        var state: TrancheState
        var shareBps: Int
        var quotaDay: Int64?
        var currency: String
        var loanId: String
        var loanState: LoanState
        var tranchesOpen: Int64
        var deadlineAt: Int64
    }

    func confirm(_ context: WriteContext, _ confirmation: FundingConfirmation, now: Int64) throws -> ConfirmationResult {
        guard !confirmation.funderId.isEmpty, confirmation.funderId.utf8.count <= 64 else {
            throw StoreError.invalidCommand(field: "confirmation.funderId", reason: "must be 1...64 bytes")
        }
        guard !confirmation.serial.isEmpty, confirmation.serial.utf8.count <= 64 else {
            throw StoreError.invalidCommand(field: "confirmation.serial", reason: "must be 1...64 bytes")
        }
        let db = context.db
        // One statement reads the loan and every tranche of it: the loan's terms, then its state
        // rows (clustered by loan, the loan's own first) each with its tranche's terms — the
        // answered tranche and, should it be the last open one, the pools its funding deploys.
        let selectLoan = try db.cachedStatement(static: """
            SELECT s.tranche_id, s.state, s.tranches_open, t.funder_id, t.amount_minor, t.kind, t.share_bps, t.quota_day, l.id, l.currency, l.loan_ref, l.deadline_at
            FROM loan_terms l
            JOIN funding_state s ON s.loan_id = l.id
            LEFT JOIN tranche_terms t ON s.tranche_id > 0 AND t.id = s.tranche_id
            WHERE l.id = (SELECT loan_id FROM tranche_terms WHERE id = ?)
            """)
        selectLoan.reset()
        selectLoan.bind(confirmation.trancheId, at: 1)
        var pools: [PoolTranche] = []
        var loan: (row: Int64, currency: String, loanId: String, state: LoanState?, tranchesOpen: Int64, deadlineAt: Int64)?
        var answered: (funderId: String, amountMinor: Int64, state: TrancheState?, shareBps: Int, quotaDay: Int64?)?
        do {
            defer { selectLoan.reset() }
            var rowsRead = 0
            while rowsRead <= Self.tranchesPerLoanMax, try selectLoan.step() {
                rowsRead += 1
                let s = selectLoan
                if loan == nil { loan = (s.int64(8), s.text(9), s.text(10), nil, 0, s.int64(11)) }
                let trancheId = s.int64(0)
                if trancheId == 0 {
                    loan?.state = LoanState(rawValue: s.text(1))
                    loan?.tranchesOpen = s.int64(2)
                } else if s.isNull(5) {
                    continue
                } else if trancheId == confirmation.trancheId {
                    if s.text(5) == FunderKind.partner.rawValue {
                        answered = (s.text(3), s.int64(4), TrancheState(rawValue: s.text(1)), s.int(6), s.isNull(7) ? nil : s.int64(7))
                    }
                } else if s.text(5) == FunderKind.pool.rawValue, s.text(1) == TrancheState.funded.rawValue {
                    pools.append(PoolTranche(trancheId: trancheId, funderId: s.text(3), amountMinor: s.int64(4)))
                }
            }
        }
        let row: TrancheRow?
        if let loan, let loanState = loan.state, let answered, let state = answered.state {
            row = TrancheRow(loanRow: loan.row, funderId: answered.funderId, amountMinor: answered.amountMinor, state: state, shareBps: answered.shareBps,
                             quotaDay: answered.quotaDay, currency: loan.currency, loanId: loan.loanId, loanState: loanState, tranchesOpen: loan.tranchesOpen,
                             deadlineAt: loan.deadlineAt)
        } else {
            row = nil
        }
        let next: TrancheState = confirmation.outcome == .funded ? .funded : .declined
        // Only a tranche still waiting for its answer takes a new confirmation. Anything else may
        // be a replay, which answers as first given; a fresh answer to an open tranche needs no
        // lookup, as the confirmation's unique (partner, serial) catches a reused serial below.
        let problem: StoreError?
        if let row, row.funderId == confirmation.funderId {
            if case .failure(let error) = row.state.transition(to: next) {
                problem = .invalidTransition(entity: "tranche", id: String(confirmation.trancheId), from: error.from, to: error.to)
            } else {
                problem = nil
            }
        } else {
            // Another partner's tranche answers "not found" too: a partner learns nothing of others' tranches.
            problem = .notFound(entity: "tranche", id: String(confirmation.trancheId))
        }
        if let problem {
            if let stored = try storedConfirmation(db, confirmation) { return try ConfirmationResult(encoded: stored) }
            throw problem
        }
        guard let row else { preconditionFailure("a confirmable tranche without its row") }
        var result = ConfirmationResult(trancheId: confirmation.trancheId, trancheState: next, loanId: row.loanId, loanState: row.loanState,
                                        replacement: nil, unfundedReason: nil)
        // The deadline has passed (the sweep ends a loan at `deadline_at <= now`) but the sweep
        // has not reached this loan yet: the answer comes too late to count, whatever it says.
        // The loan ends now as the sweep would end it — unfunded, `deadline_passed`, this tranche
        // expired with a cancellation queued for it — and the ack says so.
        let late = row.deadlineAt <= now
        if late {
            _ = try unfund(context, loanRow: row.loanRow, reason: .deadlinePassed, now: now)
            result.trancheState = .expired
            result.loanState = .unfunded
            result.unfundedReason = .deadlinePassed
        } else if next == .funded {
            // The tranche's state row, then the loan's (one open tranche fewer; funded at zero):
            // neighbours in funding_state. Two single-row statements: an IN list of the two keys
            // would have SQLite build a temporary b-tree for it on every call.
            let left = row.tranchesOpen - 1
            assert(left >= 0, "tranches_open went negative")
            let fundTranche = try db.cachedStatement(static: "UPDATE funding_state SET state = 'funded' WHERE loan_id = ? AND tranche_id = ?")
            fundTranche.reset()
            fundTranche.bind(row.loanRow, at: 1)
            fundTranche.bind(confirmation.trancheId, at: 2)
            try fundTranche.step()
            let countDown = try db.cachedStatement(static: "UPDATE funding_state SET state = ?, tranches_open = ? WHERE loan_id = ? AND tranche_id = 0")
            countDown.reset()
            countDown.bind(left == 0 ? LoanState.funded.rawValue : row.loanState.rawValue, at: 1)
            countDown.bind(left, at: 2)
            countDown.bind(row.loanRow, at: 3)
            try countDown.step()
            // Partner capital → partner deployed, by resolved account ids (no codes built).
            let funding = Funding(reference: "tranche:" + String(confirmation.trancheId), legs: [
                Ledger.Leg(account: try Ledger.account(context, .partnerDeployed, of: row.funderId, currency: row.currency), amountMinor: row.amountMinor),
                Ledger.Leg(account: try Ledger.account(context, .partnerCapital, of: row.funderId, currency: row.currency), amountMinor: -row.amountMinor),
            ])
            if left == 0 {
                try markLoanFunded(context, loanRow: row.loanRow, loanId: row.loanId, currency: row.currency, now: now,
                                   stateAlreadySet: true, funding: funding, pools: pools)
                result.loanState = .funded
            } else {
                try Ledger.post(context, kind: "tranche.funded", reference: funding.reference, at: now, legs: funding.legs)
            }
        } else {
            let decline = try db.cachedStatement(static: "UPDATE funding_state SET state = ? WHERE loan_id = ? AND tranche_id = ?")
            decline.reset()
            decline.bind(next.rawValue, at: 1)
            decline.bind(row.loanRow, at: 2)
            decline.bind(confirmation.trancheId, at: 3)
            try decline.step()
            try adjustPartner(context, funderId: row.funderId, day: row.quotaDay, amountMinor: -row.amountMinor)
            let failed = PlannedTranche(funderId: row.funderId, kind: .partner, shareBps: row.shareBps, amountMinor: row.amountMinor)
            switch try replace(context, loanRow: row.loanRow, failed: failed, now: now) {
            case .rerouted(let tranche, let loanState):
                result.replacement = tranche
                result.loanState = loanState
            case .unfunded(let code):
                result.unfundedReason = code
                result.loanState = .unfunded
            }
        }
        let action = (next == .funded ? "tranche.funded" : "tranche.declined") + (late ? "_late" : "")
        try AuditLog.append(context, at: now, actor: "partner:" + confirmation.funderId, action: action,
                            payload: Self.confirmationAuditPayload(trancheId: confirmation.trancheId, loanId: row.loanId, serial: confirmation.serial))
        // The confirmation row is also the idempotency record: unique per partner and serial,
        // and its tranche and outcome are the request a replay must match.
        let insertConfirmation = try db.cachedStatement(static:
            "INSERT INTO confirmation(funder_id, serial, tranche_id, outcome, at, response) VALUES (?, ?, ?, ?, ?, ?)")
        insertConfirmation.reset()
        insertConfirmation.bind(confirmation.funderId, at: 1)
        insertConfirmation.bind(confirmation.serial, at: 2)
        insertConfirmation.bind(confirmation.trancheId, at: 3)
        insertConfirmation.bind(confirmation.outcome.rawValue, at: 4)
        insertConfirmation.bind(now, at: 5)
        insertConfirmation.bind(result.encoded, at: 6)
        do {
            try insertConfirmation.step()
        } catch {
            // The serial was used for another tranche. This command has written already; failing
            // it rolls it back (DatabaseWriter redoes its batch with savepoints).
            guard error.isUniqueViolation else { throw error }
            throw StoreError.idempotencyConflict(scope: "confirmation", key: "\(confirmation.funderId)/\(confirmation.serial)")
        }
        return result
    }

    /// "tranche=… loan=… serial=…", the audit payload of an answer.
    static func confirmationAuditPayload(trancheId: Int64, loanId: String, serial: String) -> [UInt8] {
        var text = TextBytes(capacity: 32 + loanId.utf8.count + serial.utf8.count)
        text.append("tranche=")
        text.append(trancheId)
        text.append(" loan=")
        text.append(loanId)
        text.append(" serial=")
        text.append(serial)
        return text.bytes
    }

    /// The answer first given to this partner's serial, or nil if the serial is new. The same
    /// serial for another tranche or outcome is a conflict: nothing changes.
    private func storedConfirmation(_ db: Database, _ confirmation: FundingConfirmation) throws -> [UInt8]? {
        let select = try db.cachedStatement(static: "SELECT tranche_id, outcome, response FROM confirmation WHERE funder_id = ? AND serial = ?")
        select.reset()
        select.bind(confirmation.funderId, at: 1)
        select.bind(confirmation.serial, at: 2)
        defer { select.reset() }
        guard try select.step() else { return nil }
        guard select.int64(0) == confirmation.trancheId, select.text(1) == confirmation.outcome.rawValue, !select.isNull(2) else {
            throw StoreError.idempotencyConflict(scope: "confirmation", key: "\(confirmation.funderId)/\(confirmation.serial)")
        }
        return select.blob(2)
    }

    /// Decrements the loan's open-tranche count and returns what is left; at zero the same
    /// statement moves the loan to funded.
    private func closeOneOpenTranche(_ db: Database, loanRow: Int64) throws -> Int64 {
        guard let left = try db.fetchInt64("""
            UPDATE funding_state SET tranches_open = tranches_open - 1,
                                     state = CASE WHEN tranches_open = 1 THEN 'funded' ELSE state END
            WHERE loan_id = ? AND tranche_id = 0 RETURNING tranches_open
            """, [.integer(loanRow)]) else {
            throw StoreError.notFound(entity: "loan row", id: String(loanRow))
        }
        assert(left >= 0, "tranches_open went negative")
        return left
    }

    private enum Replacement {
        case rerouted(TrancheRecord, LoanState)
        case unfunded(RejectionCode)
    }

    /// A declined tranche: the router picks a fallback funder, or the loan is unfunded.
    private func replace(_ context: WriteContext, loanRow: Int64, failed: PlannedTranche, now: Int64) throws -> Replacement {
        let db = context.db
        let record = try loadLoan(db, row: loanRow)
        let active = record.tranches.filter { $0.state == .planned || $0.state == .requested || $0.state == .funded }
            .map { PlannedTranche(funderId: $0.funderId, kind: $0.kind, shareBps: $0.shareBps, amountMinor: $0.amountMinor) }
        let excluded = Set(record.tranches.filter { $0.state == .declined || $0.state == .expired }.map(\.funderId))
        let capacities = try snapshot(context, borrowerRef: nil, now: now)
        switch router.reroute(loan: record.loan, ruleId: record.ruleId, failed: failed, active: active, excluded: excluded, capacities: capacities, now: now) {
        case .rerouted(let planned):
            let tranche = try openTranche(context, loanRow: loanRow, loanId: record.loan.loanId, currency: record.loan.currency.code, planned, now: now)
            if tranche.state.isFinal, try closeOneOpenTranche(db, loanRow: loanRow) == 0 {
                try markLoanFunded(context, loanRow: loanRow, loanId: record.loan.loanId, currency: record.loan.currency.code, now: now, stateAlreadySet: true)
                return .rerouted(tranche, .funded)
            }
            return .rerouted(tranche, .awaitingFunding)
        case .unfunded(let rejection):
            _ = try unfund(context, loanRow: loanRow, reason: rejection.code, now: now)
            return .unfunded(rejection.code)
        }
    }

    /// Ends a loan unfunded: open tranches expire, funded ones are released with compensating
    /// postings, the borrower's outstanding and partners' exposure are given back.
    private func unfund(_ context: WriteContext, loanRow: Int64, reason: RejectionCode, now: Int64) throws -> ExpiryResult {
        let db = context.db
        let record = try loadLoan(db, row: loanRow)
        let currency = record.loan.currency.code
        var expired: [Int64] = []
        var released: [Int64] = []
        let quotaDays = try db.cachedStatement("SELECT id, quota_day FROM tranche WHERE loan_id = ?")
            .fetchAll([.integer(loanRow)]) { ($0.int64(0), $0.isNull(1) ? nil : $0.int64(1)) }
        let dayByTranche = Dictionary(quotaDays, uniquingKeysWith: { first, _ in first })
        for tranche in record.tranches {
            switch tranche.state {
            case .planned, .requested:
                try db.execute("UPDATE funding_state SET state = 'expired' WHERE loan_id = ? AND tranche_id = ?", [.integer(loanRow), .integer(tranche.id)])
                if tranche.kind == .partner {
                    try adjustPartner(context, funderId: tranche.funderId, day: dayByTranche[tranche.id] ?? nil, amountMinor: -tranche.amountMinor)
                }
                expired.append(tranche.id)
                if tranche.kind == .partner, tranche.state == .requested {
                    try enqueueCancellation(context, tranche, currency: currency, reason: "expired", now: now)
                }
            case .funded:
                try db.execute("UPDATE funding_state SET state = 'released' WHERE loan_id = ? AND tranche_id = ?", [.integer(loanRow), .integer(tranche.id)])
                let (from, to) = tranche.kind == .pool
                    ? (LedgerAccounts.poolReserved(tranche.funderId), LedgerAccounts.poolAvailable(tranche.funderId))
                    : (LedgerAccounts.partnerDeployed(tranche.funderId), LedgerAccounts.partnerCapital(tranche.funderId))
                try Ledger.post(context, .transfer(kind: "tranche.released", reference: "tranche:\(tranche.id)", at: now,
                                                   from: from, to: to, currency: currency, amountMinor: tranche.amountMinor))
                if tranche.kind == .partner {
                    // Released, it is neither requested nor funded: its quota comes back as a
                    // declined or expired tranche's does.
                    try adjustPartner(context, funderId: tranche.funderId, day: dayByTranche[tranche.id] ?? nil, amountMinor: -tranche.amountMinor)
                    try enqueueCancellation(context, tranche, currency: currency, reason: "released", now: now)
                }
                released.append(tranche.id)
            case .declined, .expired, .released:
                break
            }
        }
        try db.execute("UPDATE funding_state SET state = 'unfunded', tranches_open = 0 WHERE loan_id = ? AND tranche_id = 0", [.integer(loanRow)])
        try db.execute("UPDATE borrower SET outstanding_minor = outstanding_minor - ? WHERE borrower_ref = ?",
                       [.integer(record.loan.amountMinor), .text(record.loan.borrowerRef)])
        let payload = "{\"type\":\"loan.unfunded\",\"loanId\":\(jsonString(record.loan.loanId)),\"reason\":\(jsonString(reason.rawValue))}"
        try Outbox.enqueue(context, destination: configuration.platformDestination, payload: Array(payload.utf8), now: now)
        try AuditLog.append(context, at: now, actor: actor, action: "loan.unfunded",
                            payload: Array("loan=\(record.loan.loanId) reason=\(reason.rawValue) expired=\(expired.count) released=\(released.count)".utf8))
        return ExpiryResult(loanId: record.loan.loanId, expiredTrancheIds: expired, releasedTrancheIds: released)
    }

    /// Tells the partner its tranche no longer stands (a funded one released because the loan
    /// as a whole is unfunded, or a request that expired), committed with the state change.
    /// Added for the partner connectors (issue 6); the Gateway's dispatcher sends it.
    private func enqueueCancellation(_ context: WriteContext, _ tranche: TrancheRecord, currency: String, reason: String, now: Int64) throws {
        let payload = "{\"type\":\"funding.cancel\",\"loanId\":\(jsonString(tranche.loanId)),\"trancheId\":\(tranche.id),\"funderId\":\(jsonString(tranche.funderId)),\"amountMinor\":\(tranche.amountMinor),\"currency\":\(jsonString(currency)),\"reason\":\(jsonString(reason))}"
        try Outbox.enqueue(context, destination: "partner:\(tranche.funderId)", payload: Array(payload.utf8), now: now)
    }

    // MARK: Expiry

    /// Loans a sweep step looks at, at most: a step is one writer command, so this bounds how
    /// long the sweep holds the writer however far behind it is.
    static let sweepExaminedLoansMax = 2_000

    /// One step of the deadline sweep: walks loans by (deadline, row) from the cursor up to
    /// `now`, unfunds those still awaiting (at most `limit`), and moves the cursor past what it
    /// handled. `complete` when nothing due is left behind the cursor.
    func expireOverdue(_ context: WriteContext, now: Int64, limit: Int) throws -> (results: [ExpiryResult], complete: Bool) {
        let cursor = context.sweepCursor
        let rows = try context.db.cachedStatement("""
            SELECT id, deadline_at, state FROM loan
            WHERE deadline_at >= ?1 AND (deadline_at > ?1 OR id > ?2) AND deadline_at <= ?3
            ORDER BY deadline_at, id LIMIT ?4
            """)
            .fetchAll([.integer(cursor.deadlineAt), .integer(cursor.loanRow), .integer(now), .integer(Int64(Self.sweepExaminedLoansMax))]) {
                (row: $0.int64(0), deadline: $0.int64(1), awaiting: $0.text(2) == LoanState.awaitingFunding.rawValue)
            }
        var results: [ExpiryResult] = []
        var reached = cursor
        var complete = rows.count < Self.sweepExaminedLoansMax
        for loan in rows {
            if loan.awaiting {
                guard results.count < max(limit, 0) else {
                    complete = false
                    break
                }
                results.append(try unfund(context, loanRow: loan.row, reason: .deadlinePassed, now: now))
            }
            reached = SweepCursor(deadlineAt: loan.deadline, loanRow: loan.row)
        }
        try SweepCursor.store(reached, context)
        return (results, complete)
    }

    // MARK: Repayments

    func recordRepayment(_ context: WriteContext, _ repayment: Repayment, now: Int64) throws -> RepaymentResult {
        guard !repayment.repaymentId.isEmpty, repayment.repaymentId.utf8.count <= Loan.Limits.idBytesMax else {
            throw StoreError.invalidCommand(field: "repayment.repaymentId", reason: "must be 1...\(Loan.Limits.idBytesMax) bytes")
        }
        for (value, field) in [(repayment.principalMinor, "principalMinor"), (repayment.interestMinor, "interestMinor"), (repayment.penaltyAndFeesMinor, "penaltyAndFeesMinor")]
        where value < 0 || value > Loan.Limits.amountMinorMax {
            throw StoreError.invalidCommand(field: "repayment.\(field)", reason: "must be 0...\(Loan.Limits.amountMinorMax)")
        }
        guard repayment.principalMinor + repayment.interestMinor + repayment.penaltyAndFeesMinor > 0 else {
            throw StoreError.invalidCommand(field: "repayment", reason: "pays nothing")
        }
        var hashed = ByteWriter()
        hashed.write(repayment.repaymentId)
        hashed.write(repayment.loanId)
        hashed.write(repayment.principalMinor)
        hashed.write(repayment.interestMinor)
        hashed.write(repayment.penaltyAndFeesMinor)
        let requestHash = SHA256.hash(hashed.bytes)
        switch try IdempotencyRecords.lookup(context, scope: "repayment", key: repayment.repaymentId, requestHash: requestHash) {
        case .replay(let stored): return try RepaymentResult(encoded: stored)
        case .new: break
        }
        let db = context.db
        let record: LoanRecord
        do {
            record = try loadLoan(db, loanId: repayment.loanId)
        } catch StoreError.notFound {
            throw StoreError.notFound(entity: "loan", id: repayment.loanId)
        }
        guard record.state == .funded || record.state == .repaying else {
            throw StoreError.invalidTransition(entity: "loan", id: repayment.loanId, from: record.state.rawValue, to: LoanState.repaying.rawValue)
        }
        guard let loanRow = try db.fetchOne("SELECT id, principal_repaid_minor FROM loan WHERE loan_ref = ?", [.text(repayment.loanId)], { ($0.int64(0), $0.int64(1)) }) else {
            throw StoreError.notFound(entity: "loan", id: repayment.loanId)
        }
        let outstanding = record.loan.amountMinor - loanRow.1
        guard repayment.principalMinor <= outstanding else {
            throw StoreError.invalidCommand(field: "repayment.principalMinor", reason: "exceeds the outstanding principal \(outstanding)")
        }
        let funded = record.tranches.filter { $0.state == .funded }
        let split = RepaymentSplit.apportion(
            principalMinor: repayment.principalMinor, interestMinor: repayment.interestMinor, penaltyAndFeesMinor: repayment.penaltyAndFeesMinor,
            loanRateBps: record.loan.annualRateBps,
            tranches: funded.map { FundedTranche(funderId: $0.funderId, kind: $0.kind, shareBps: $0.shareBps, revenueTerms: router.funders[$0.funderId]?.revenueTerms ?? .proRata) })
        assert(split.totalMinor == repayment.principalMinor + repayment.interestMinor + repayment.penaltyAndFeesMinor, "repayment split does not sum to the payment")
        // Principal goes by what each tranche still has outstanding rather than by share, so
        // rounding over many repayments can never repay a tranche more than it lent; at the
        // start of a loan the two are the same.
        let repaidByTranche = Dictionary(try db.cachedStatement("SELECT id, principal_repaid_minor FROM tranche WHERE loan_id = ?")
            .fetchAll([.integer(loanRow.0)], rowsMax: 256) { ($0.int64(0), $0.int64(1)) }, uniquingKeysWith: { first, _ in first })
        let remaining = funded.map { $0.amountMinor - (repaidByTranche[$0.id] ?? 0) }
        let principalParts = repayment.principalMinor == 0 ? remaining.map { _ in Int64(0) }
            : Apportionment.largestRemainder(repayment.principalMinor, weights: remaining)
        let currency = record.loan.currency.code
        let total = repayment.principalMinor + repayment.interestMinor + repayment.penaltyAndFeesMinor
        try db.execute("""
            INSERT INTO repayment(repayment_ref, loan_id, principal_minor, interest_minor, penalty_and_fees_minor, platform_fee_minor, at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [.text(repayment.repaymentId), .integer(loanRow.0), .integer(repayment.principalMinor), .integer(repayment.interestMinor),
                  .integer(repayment.penaltyAndFeesMinor), .integer(split.platformFeeMinor), .integer(now)])
        let repaymentRow = db.lastInsertedRowID
        var postings = [LedgerPosting(account: LedgerAccounts.collections, currency: currency, amountMinor: total)]
        var parts: [RepaymentPart] = []
        for (index, (tranche, part)) in zip(funded, split.parts).enumerated() {
            let principal = principalParts[index]
            assert(principal <= remaining[index], "repayment principal exceeds a tranche's outstanding principal")
            try db.execute("INSERT INTO repayment_part(repayment_id, tranche_id, principal_minor, interest_minor) VALUES (?, ?, ?, ?)",
                           [.integer(repaymentRow), .integer(tranche.id), .integer(principal), .integer(part.interestMinor)])
            if principal > 0 {
                try db.execute("UPDATE funding_state SET principal_repaid_minor = principal_repaid_minor + ? WHERE loan_id = ? AND tranche_id = ?",
                               [.integer(principal), .integer(loanRow.0), .integer(tranche.id)])
                let deployed = tranche.kind == .pool ? LedgerAccounts.poolDeployed(tranche.funderId) : LedgerAccounts.partnerDeployed(tranche.funderId)
                postings.append(LedgerPosting(account: deployed, currency: currency, amountMinor: -principal))
                if tranche.kind == .partner {
                    try adjustPartner(context, funderId: tranche.funderId, day: nil, amountMinor: -principal)
                }
            }
            if part.interestMinor > 0 {
                postings.append(LedgerPosting(account: LedgerAccounts.interest(tranche.kind, tranche.funderId), currency: currency, amountMinor: -part.interestMinor))
            }
            parts.append(RepaymentPart(trancheId: tranche.id, funderId: tranche.funderId, principalMinor: principal, interestMinor: part.interestMinor))
        }
        if split.platformFeeMinor > 0 {
            postings.append(LedgerPosting(account: LedgerAccounts.platformFees, currency: currency, amountMinor: -split.platformFeeMinor))
        }
        try Ledger.post(context, LedgerTransaction(kind: "repayment", reference: "repayment:\(repayment.repaymentId)", at: now, postings: postings))
        let repaid = loanRow.1 + repayment.principalMinor
        let state: LoanState = repaid == record.loan.amountMinor ? .closed : .repaying
        try db.execute("UPDATE funding_state SET principal_repaid_minor = ?, state = ? WHERE loan_id = ? AND tranche_id = 0",
                       [.integer(repaid), .text(state.rawValue), .integer(loanRow.0)])
        if repayment.principalMinor > 0 {
            try db.execute("UPDATE borrower SET outstanding_minor = outstanding_minor - ? WHERE borrower_ref = ?",
                           [.integer(repayment.principalMinor), .text(record.loan.borrowerRef)])
        }
        try AuditLog.append(context, at: now, actor: actor, action: "loan.repayment",
                            payload: Array("loan=\(repayment.loanId) repayment=\(repayment.repaymentId) principal=\(repayment.principalMinor) interest=\(repayment.interestMinor)".utf8))
        let result = RepaymentResult(repaymentId: repayment.repaymentId, loanId: repayment.loanId, loanState: state, parts: parts, platformFeeMinor: split.platformFeeMinor)
        try IdempotencyRecords.record(context, scope: "repayment", key: repayment.repaymentId, requestHash: requestHash, response: result.encoded, now: now)
        return result
    }

    // MARK: Pools

    func deposit(_ context: WriteContext, funderId: String, amountMinor: Int64, reference: String, now: Int64) throws {
        guard let funder = router.funders[funderId], funder.kind == .pool else {
            throw StoreError.invalidCommand(field: "funderId", reason: "not a configured pool")
        }
        guard amountMinor > 0 else { throw StoreError.invalidCommand(field: "amountMinor", reason: "must be positive") }
        try Ledger.post(context, .transfer(kind: "pool.deposit", reference: reference, at: now, from: LedgerAccounts.poolCapital(funderId),
                                           to: LedgerAccounts.poolAvailable(funderId), currency: funder.currency.code, amountMinor: amountMinor))
        try AuditLog.append(context, at: now, actor: actor, action: "pool.deposit", payload: Array("pool=\(funderId) amount=\(amountMinor)".utf8))
    }

    // MARK: Reading routing inputs

    private func snapshot(_ context: WriteContext, borrowerRef: String?, now: Int64) throws -> CapacitySnapshot {
        let db = context.db
        var funders: [String: FunderCapacity] = [:]
        let day = businessDay(now)
        for funder in router.funders.values {
            switch funder.kind {
            case .pool:
                funders[funder.id] = FunderCapacity(availableMinor: try Ledger.balance(context, account: LedgerAccounts.poolAvailable(funder.id)))
            case .partner:
                let used = try db.fetchInt64("SELECT used_minor FROM partner_quota WHERE funder_id = ? AND business_day = ?", [.text(funder.id), .integer(day)]) ?? 0
                let exposure = try db.fetchInt64("SELECT exposure_minor FROM funder WHERE id = ?", [.text(funder.id)]) ?? 0
                funders[funder.id] = FunderCapacity(quotaUsedTodayMinor: used, exposureMinor: exposure)
            }
        }
        var outstanding: Int64 = 0
        if let borrowerRef {
            outstanding = try db.fetchInt64("SELECT outstanding_minor FROM borrower WHERE borrower_ref = ?", [.text(borrowerRef)]) ?? 0
        }
        return CapacitySnapshot(funders: funders, borrowerOutstandingMinor: outstanding)
    }

    private func allocationTotals(_ db: Database, for loan: Loan) throws -> AllocationTotals {
        guard let rule = router.matchingRule(for: loan) else { return AllocationTotals() }
        let key = AllocationKey(ruleId: rule.id, ruleVersion: router.ruleSet.version)
        var entry = AllocationTotals.Entry()
        let rows = try db.cachedStatement("SELECT funder_id, amount_minor FROM allocation_total WHERE rule_id = ? AND rule_version = ?")
            .fetchAll([.text(key.ruleId), .integer(Int64(key.ruleVersion))], rowsMax: RuleSet.sharesPerRuleMax) { ($0.text(0), $0.int64(1)) }
        for (funderId, amount) in rows {
            entry.perFunderMinor[funderId] = amount
            entry.totalMinor += amount
        }
        return AllocationTotals(byRule: [key: entry])
    }

    // MARK: Hashes of requests (idempotency)

    static func hash(_ loan: Loan) -> [UInt8] {
        var writer = ByteWriter()
        for text in [loan.loanId, loan.borrowerRef, loan.currency.code, loan.product, loan.riskGrade, loan.region, loan.channel] { writer.write(text) }
        writer.write(loan.amountMinor)
        writer.write(loan.termMonths)
        writer.write(loan.annualRateBps)
        writer.write(loan.approvedAt)
        return SHA256.hash(writer.bytes)
    }
}

/// Loads a loan and its tranches (shared by the writer and readers).
func loadLoan(_ db: Database, row: Int64? = nil, loanId: String? = nil) throws -> LoanRecord {
    let sql = """
        SELECT id, loan_ref, borrower_ref, amount_minor, currency, term_months, annual_rate_bps, product, risk_grade,
               region, channel, approved_at, deadline_at, rule_id, rule_version, state
        FROM loan WHERE \(row != nil ? "id" : "loan_ref") = ?
        """
    let argument: DatabaseValue = row.map { .integer($0) } ?? .text(loanId ?? "")
    guard let (loanRow, record) = try db.fetchOne(sql, [argument], { s -> (Int64, LoanRecord)? in
        guard let currency = Currency(code: s.text(4)), let state = LoanState(rawValue: s.text(15)) else { return nil }
        let loan = Loan(loanId: s.text(1), borrowerRef: s.text(2), amountMinor: s.int64(3), currency: currency, termMonths: s.int(5),
                        annualRateBps: s.int(6), product: s.text(7), riskGrade: s.text(8), region: s.text(9), channel: s.text(10),
                        approvedAt: s.int64(11))
        return (s.int64(0), LoanRecord(loan: loan, state: state, ruleId: s.text(13), ruleVersion: s.int(14), deadlineAt: s.int64(12), tranches: []))
    }) ?? nil else {
        throw StoreError.notFound(entity: "loan", id: loanId ?? row.map(String.init) ?? "")
    }
    var result = record
    result.tranches = try db.cachedStatement("SELECT id, funder_id, kind, share_bps, amount_minor, state FROM tranche WHERE loan_id = ? ORDER BY id")
        .fetchAll([.integer(loanRow)], rowsMax: 256) { s in
            TrancheRecord(id: s.int64(0), loanId: record.loan.loanId, funderId: s.text(1), kind: FunderKind(rawValue: s.text(2)) ?? .partner,
                          shareBps: s.int(3), amountMinor: s.int64(4), state: TrancheState(rawValue: s.text(5)) ?? .planned)
        }
    return result
}

/// A JSON string literal (quotes, backslashes and control characters escaped), as
/// `TextBytes.appendJSONString` writes it.
func jsonString(_ text: String) -> String {
    // Ids and codes almost never need escaping: then the text goes between quotes as it is.
    if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
        return "\"" + text + "\""
    }
    var quoted = TextBytes(capacity: text.utf8.count + 16)
    quoted.appendJSONString(text)
    return String(decoding: quoted.bytes, as: UTF8.self)
}
