import LendingCore

/// What the partner connectors (Gateway's outbox dispatcher) need beyond the `Store` protocol:
/// follow-up messages scheduled in the future, retries on the dispatcher's own backoff, and the
/// tranche a message is about. Added as a separate file so the store's core stays untouched.
extension SQLiteStore {
    /// A tranche as the dispatcher sees it before sending anything about it.
    public struct TrancheStatus: Sendable, Hashable {
        public var trancheId: Int64
        public var funderId: String
        public var state: TrancheState
        public var loanId: String
        public var loanState: LoanState
        public var deadlineAt: Int64
    }

    /// A message to enqueue after another one completes, in the same transaction.
    public struct FollowUp: Sendable, Hashable {
        public var destination: String
        public var payload: [UInt8]
        /// Unix seconds before which it is not claimed.
        public var notBefore: Int64

        public init(destination: String, payload: [UInt8], notBefore: Int64) {
            self.destination = destination
            self.payload = payload
            self.notBefore = notBefore
        }
    }

    /// Enqueues a message due at `notBefore` (a status query scheduled for when a callback
    /// becomes overdue, for example).
    @discardableResult
    public func enqueueOutbox(destination: String, payload: [UInt8], notBefore: Int64) async throws -> Int64 {
        try await write { try Outbox.enqueue($0, destination: destination, payload: payload, now: notBefore) }
    }

    /// Marks `id` sent and, in the same transaction, enqueues `followUp`: a crash cannot lose
    /// the follow-up of a delivered message. A message already final is left as it is (another
    /// claim after an expired lease may have finished it) and the follow-up is not enqueued.
    public func completeOutbox(id: Int64, followUp: FollowUp? = nil) async throws {
        try await write { context in
            let db = context.db
            try db.execute("UPDATE outbox SET state = 1, attempts = attempts + 1 WHERE id = ? AND state IN (0, 2)", [.integer(id)])
            guard db.changesCount == 1 else { return }
            if let f = followUp { try Outbox.enqueue(context, destination: f.destination, payload: f.payload, now: f.notBefore) }
        }
    }

    /// Records a failed attempt with the caller's own next attempt time (backoff with jitter is
    /// the dispatcher's policy): `.failed`, or `.dead` once `attemptsMax` attempts were made.
    /// A message already final stays final and its state is returned.
    public func retryOutbox(id: Int64, nextAttemptAt: Int64, attemptsMax: Int) async throws -> OutboxMessage.State {
        try await write { context in
            let db = context.db
            guard let (attempts, raw) = try db.fetchOne("SELECT attempts, state FROM outbox WHERE id = ?", [.integer(id)], { ($0.int(0), $0.int64(1)) }) else {
                throw StoreError.notFound(entity: "outbox message", id: String(id))
            }
            let current = OutboxMessage.State(rawValue: raw) ?? .dead
            guard current == .pending || current == .failed else { return current }
            let made = attempts + 1
            let next: OutboxMessage.State = made >= attemptsMax ? .dead : .failed
            try db.execute("UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ? WHERE id = ?",
                           [.integer(next.rawValue), .integer(Int64(made)), .integer(nextAttemptAt), .integer(id)])
            return next
        }
    }

    /// Puts a claimed message back, due at `until`, without counting an attempt (the partner's
    /// circuit is open, or the message waits for a later check).
    public func deferOutbox(id: Int64, until: Int64) async throws {
        try await write { context in
            try context.db.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND state IN (0, 2)", [.integer(until), .integer(id)])
        }
    }

    /// Whether any message is due: a cheap read so an idle dispatcher does not take the writer.
    public func hasDueOutbox(now: Int64) throws -> Bool {
        try read { db in
            try db.fetchInt64("SELECT 1 FROM outbox WHERE state IN (0, 2) AND next_attempt_at <= ? LIMIT 1", [.integer(now)]) != nil
        }
    }

    /// Messages by state (pending, sent, failed, dead), for metrics and tests.
    public func outboxCountsByState() throws -> [OutboxMessage.State: Int] {
        try read { db in
            var counts: [OutboxMessage.State: Int] = [:]
            let rows = try db.makeStatement("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchAll { ($0.int64(0), $0.int(1)) }
            for (raw, n) in rows { if let s = OutboxMessage.State(rawValue: raw) { counts[s] = n } }
            return counts
        }
    }

    /// The tranche `trancheId` with its loan's state and deadline; nil if there is none.
    public func trancheStatus(id trancheId: Int64) throws -> TrancheStatus? {
        try read { db in
            try db.fetchOne("""
                SELECT t.funder_id, t.state, l.loan_ref, l.state, l.deadline_at
                FROM tranche t JOIN loan l ON l.id = t.loan_id WHERE t.id = ?
                """, [.integer(trancheId)]) { s -> TrancheStatus? in
                guard let state = TrancheState(rawValue: s.text(1)), let loanState = LoanState(rawValue: s.text(3)) else { return nil }
                return TrancheStatus(trancheId: trancheId, funderId: s.text(0), state: state, loanId: s.text(2), loanState: loanState, deadlineAt: s.int64(4))
            } ?? nil
        }
    }
}
