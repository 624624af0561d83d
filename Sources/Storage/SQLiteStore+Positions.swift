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
