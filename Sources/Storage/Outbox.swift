/// A message committed together with the state change that caused it; the dispatcher sends it
/// after commit. Nothing is sent that the database does not know about, and nothing it knows
/// about is forgotten after a crash.
public struct OutboxMessage: Sendable, Equatable {
    public enum State: Int64, Sendable {
        /// Waiting for its first attempt.
        case pending = 0
        /// Delivered; final.
        case sent = 1
        /// An attempt failed; due again at `nextAttemptAt`.
        case failed = 2
        /// Gave up after `OutboxPolicy.attemptsMax` attempts; final, needs an operator.
        case dead = 3
    }

    public var id: Int64
    public var destination: String
    public var payload: [UInt8]
    public var attempts: Int
    public var nextAttemptAt: Int64
    public var state: State
}

/// Retry policy for outbox messages: exponential backoff, capped, then dead.
public struct OutboxPolicy: Sendable {
    /// Delay after the first failure; doubles per further failure.
    public var backoffBaseSeconds: Int64 = 1
    /// Longest delay between attempts.
    public var backoffMaxSeconds: Int64 = 300
    /// Attempts after which a message is dead.
    public var attemptsMax = 10
    /// A claimed message is hidden from other claims this long; if the sender crashes it is
    /// claimed again afterwards (at-least-once delivery; partners deduplicate by request id).
    public var claimLeaseSeconds: Int64 = 30
    /// Messages one claim may return.
    public var claimMessagesMax = 256

    public init() {}

    public func backoffSeconds(afterAttempts attempts: Int) -> Int64 {
        let exponent = min(max(attempts - 1, 0), 30)
        return min(backoffBaseSeconds << Int64(exponent), backoffMaxSeconds)
    }
}

enum Outbox {
    static let destinationBytesMax = 256
    static let payloadBytesMax = 64 * 1024

    @discardableResult
    static func enqueue(_ context: WriteContext, destination: String, payload: [UInt8], now: Int64) throws -> Int64 {
        guard !destination.isEmpty, destination.utf8.count <= destinationBytesMax else {
            throw StoreError.invalidCommand(field: "outbox.destination", reason: "must be 1...\(destinationBytesMax) bytes")
        }
        guard payload.count <= payloadBytesMax else {
            throw StoreError.invalidCommand(field: "outbox.payload", reason: "must be at most \(payloadBytesMax) bytes")
        }
        let insert = try context.db.cachedStatement(static:
            "INSERT INTO outbox(destination, payload, attempts, next_attempt_at, state) VALUES (?, ?, 0, ?, 0)")
        insert.reset()
        insert.bind(destination, at: 1)
        insert.bind(payload, at: 2)
        insert.bind(now, at: 3)
        try insert.step()
        return context.db.lastInsertedRowID
    }

    /// Due messages, leased. Those for one of `droppingDestinations` (nowhere to deliver to) are
    /// marked sent instead, as a delivery would mark them, and returned with state `.sent`: one
    /// write each and no completion command later.
    static func claimDue(_ context: WriteContext, now: Int64, limit: Int, policy: OutboxPolicy,
                         droppingDestinations: Set<String> = []) throws -> [OutboxMessage] {
        let db = context.db
        let due = try db.cachedStatement("""
            SELECT id, destination, payload, attempts, next_attempt_at, state FROM outbox
            WHERE state IN (0, 2) AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?
            """).fetchAll([.integer(now), .integer(Int64(min(max(limit, 0), policy.claimMessagesMax)))]) {
            OutboxMessage(id: $0.int64(0), destination: $0.text(1), payload: $0.blob(2), attempts: $0.int(3),
                          nextAttemptAt: $0.int64(4), state: OutboxMessage.State(rawValue: $0.int64(5)) ?? .pending)
        }
        var claimed = due
        let lease = try db.cachedStatement(static: "UPDATE outbox SET next_attempt_at = ? WHERE id = ?")
        for index in claimed.indices {
            if !droppingDestinations.isEmpty && droppingDestinations.contains(claimed[index].destination) {
                let drop = try db.cachedStatement(static: "UPDATE outbox SET state = 1, attempts = attempts + 1 WHERE id = ?")
                drop.reset()
                drop.bind(claimed[index].id, at: 1)
                try drop.step()
                claimed[index].state = .sent
                claimed[index].attempts += 1
                continue
            }
            lease.reset()
            lease.bind(now + policy.claimLeaseSeconds, at: 1)
            lease.bind(claimed[index].id, at: 2)
            try lease.step()
        }
        return claimed
    }

    /// Completions one `complete(_:ids:)` command may carry, so one command cannot hold the
    /// writer for long.
    static let completionsPerCommandMax = 1_024

    /// Marks each of `ids` sent if it is still open (pending or failed); one already final, or
    /// unknown, is left as it is and does not stop the others. Returns the ids marked sent now.
    static func complete(_ context: WriteContext, ids: [Int64]) throws -> [Int64] {
        guard ids.count <= completionsPerCommandMax else {
            throw StoreError.invalidCommand(field: "outbox.ids", reason: "must hold at most \(completionsPerCommandMax) ids")
        }
        let db = context.db
        let update = try db.cachedStatement(static: "UPDATE outbox SET state = 1, attempts = attempts + 1 WHERE id = ? AND state IN (0, 2)")
        var completed: [Int64] = []
        completed.reserveCapacity(ids.count)
        for id in ids {
            update.reset()
            update.bind(id, at: 1)
            try update.step()
            if db.changesCount == 1 { completed.append(id) }
        }
        return completed
    }

    static func markSent(_ context: WriteContext, id: Int64) throws {
        let db = context.db
        try db.execute("UPDATE outbox SET state = 1, attempts = attempts + 1 WHERE id = ? AND state IN (0, 2)", [.integer(id)])
        if db.changesCount == 0 { try requireOpen(db, id: id, to: "sent") }
    }

    static func markFailed(_ context: WriteContext, id: Int64, now: Int64, policy: OutboxPolicy) throws -> OutboxMessage.State {
        let db = context.db
        guard let attempts = try db.fetchOne("SELECT attempts, state FROM outbox WHERE id = ?", [.integer(id)], { ($0.int(0), $0.int64(1)) }) else {
            throw StoreError.notFound(entity: "outbox message", id: String(id))
        }
        guard attempts.1 == OutboxMessage.State.pending.rawValue || attempts.1 == OutboxMessage.State.failed.rawValue else {
            throw StoreError.invalidTransition(entity: "outbox message", id: String(id), from: stateName(attempts.1), to: "failed")
        }
        let made = attempts.0 + 1
        let state: OutboxMessage.State = made >= policy.attemptsMax ? .dead : .failed
        try db.execute("UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ? WHERE id = ?", [
            .integer(state.rawValue), .integer(Int64(made)), .integer(now + policy.backoffSeconds(afterAttempts: made)), .integer(id),
        ])
        return state
    }

    private static func requireOpen(_ db: Database, id: Int64, to: String) throws {
        guard let state = try db.fetchInt64("SELECT state FROM outbox WHERE id = ?", [.integer(id)]) else {
            throw StoreError.notFound(entity: "outbox message", id: String(id))
        }
        throw StoreError.invalidTransition(entity: "outbox message", id: String(id), from: stateName(state), to: to)
    }

    static func stateName(_ raw: Int64) -> String {
        switch OutboxMessage.State(rawValue: raw) {
        case .pending: "pending"
        case .sent: "sent"
        case .failed: "failed"
        case .dead: "dead"
        case nil: "unknown(\(raw))"
        }
    }
}
