/// What a partner holds right now, for `GET /v1/partners/{id}/position`.
public struct PartnerPosition: Sendable, Hashable {
    /// Outstanding principal counted against the exposure limit (requested and funded tranches).
    public var exposureMinor: Int64
    /// Requested or funded in the current business day (counted against the daily quota).
    public var quotaUsedTodayMinor: Int64
    /// Principal the partner has actually funded, from the ledger.
    public var fundedPrincipalMinor: Int64

    public init(exposureMinor: Int64, quotaUsedTodayMinor: Int64, fundedPrincipalMinor: Int64) {
        self.exposureMinor = exposureMinor
        self.quotaUsedTodayMinor = quotaUsedTodayMinor
        self.fundedPrincipalMinor = fundedPrincipalMinor
    }
}

extension SQLiteStore {
    /// Reads a partner's position in one consistent snapshot. `businessDayOffsetSeconds` is the
    /// partner's business-day offset from UTC.
    public func partnerPosition(funderId: String, now: Int64, businessDayOffsetSeconds: Int64) throws -> PartnerPosition {
        let day = (now + businessDayOffsetSeconds) / 86_400
        return try read { db in
            let exposure = try db.fetchInt64("SELECT exposure_minor FROM funder WHERE id = ?", [.text(funderId)]) ?? 0
            let used = try db.fetchInt64("SELECT used_minor FROM partner_quota WHERE funder_id = ? AND business_day = ?", [.text(funderId), .integer(day)]) ?? 0
            let funded = try Ledger.balance(db, account: LedgerAccounts.partnerDeployed(funderId))
            return PartnerPosition(exposureMinor: exposure, quotaUsedTodayMinor: used, fundedPrincipalMinor: funded)
        }
    }
}

extension SQLiteStore {
    /// Outbox messages waiting to be delivered (pending or failed and due again), for /metrics.
    public func outboxDepth() throws -> Int64 {
        try read { db in try db.fetchInt64("SELECT COUNT(*) FROM outbox WHERE state IN (0, 2)") ?? 0 }
    }
}

/// What a partner's confirmation must agree with: the tranche's funder, loan, amount and currency.
public struct TrancheFacts: Sendable, Hashable {
    public var funderId: String
    public var loanId: String
    public var amountMinor: Int64
    public var currency: String

    public init(funderId: String, loanId: String, amountMinor: Int64, currency: String) {
        self.funderId = funderId
        self.loanId = loanId
        self.amountMinor = amountMinor
        self.currency = currency
    }
}

extension SQLiteStore {
    /// The facts of tranche `id`, or nil when there is none. Amounts never change after planning,
    /// so a read before the confirmation's write is as good as one inside it.
    public func trancheFacts(id: Int64) throws -> TrancheFacts? {
        try read { db in
            try db.fetchOne("""
                SELECT t.funder_id, l.loan_ref, t.amount_minor, l.currency
                FROM tranche t JOIN loan l ON l.id = t.loan_id WHERE t.id = ?
                """, [.integer(id)]) { s in
                TrancheFacts(funderId: s.text(0), loanId: s.text(1), amountMinor: s.int64(2), currency: s.text(3))
            }
        }
    }
}
