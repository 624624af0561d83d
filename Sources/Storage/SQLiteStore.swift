import LendingCore

/// The SQLite backend of `Store`: one writer thread with group commit, a pool of readers.
public final class SQLiteStore: Store {
    public let configuration: StoreConfiguration
    private let writer: DatabaseWriter
    private let readers: ReaderPool
    private let checkpointer: Checkpointer?
    private let engine: FundingEngine

    /// Opens (creating if needed) and migrates the database. Throws
    /// `DatabaseMigrator.MigrationError.unknownMigrations` for a database newer than this build.
    public init(configuration: StoreConfiguration) throws {
        guard configuration.queueCommandsMax > 0, configuration.batchCommandsMax > 0, configuration.readConnectionsMax > 0,
              configuration.batchWindowMicroseconds >= 0 else {
            throw StoreError.invalidCommand(field: "store configuration", reason: "queue, batch and reader limits must be positive")
        }
        var connection = Database.Configuration()
        connection.busyTimeoutMilliseconds = configuration.busyTimeoutMilliseconds
        if configuration.checkpointIntervalMilliseconds > 0 {
            // The background checkpointer does the routine work. Under constant writes its
            // PASSIVE checkpoints never catch up with the end of the WAL, so the WAL would never
            // restart: past this many pages the writer checkpoints itself, between batches.
            connection.walAutocheckpointPages = StoreConfiguration.walPagesMax
        }
        let db = try Database(path: configuration.path, configuration: connection)
        try StoreSchema.migrator.migrate(db)
        try db.inTransaction {
            for funder in configuration.router.funders.values.sorted(by: { $0.id < $1.id }) {
                try db.execute("INSERT OR IGNORE INTO funder(id, kind, currency) VALUES (?, ?, ?)",
                               [.text(funder.id), .text(funder.kind.rawValue), .text(funder.currency.code)])
            }
        }
        // Everything that can throw comes before the writer: once its thread runs, only
        // `close()` may end it.
        let context = try WriteContext(db: db)
        let checkpointer = configuration.checkpointIntervalMilliseconds > 0
            ? try Checkpointer(path: configuration.path, intervalMilliseconds: configuration.checkpointIntervalMilliseconds,
                               catchUpIntervalMilliseconds: StoreConfiguration.checkpointCatchUpIntervalMilliseconds,
                               catchUpFromFrames: StoreConfiguration.checkpointCatchUpFromFrames,
                               busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
            : nil
        self.configuration = configuration
        self.engine = FundingEngine(router: configuration.router, configuration: configuration)
        self.checkpointer = checkpointer
        self.readers = ReaderPool(path: configuration.path, connectionsMax: configuration.readConnectionsMax,
                                  busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
        self.writer = DatabaseWriter(
            context: context,
            configuration: .init(queueCommandsMax: configuration.queueCommandsMax, batchCommandsMax: configuration.batchCommandsMax,
                                 batchWindowMicroseconds: configuration.batchWindowMicroseconds, pipelinesSync: configuration.pipelinesSync,
                                 pipelinedBatchCommandsMin: configuration.pipelinedBatchCommandsMin))
    }

    deinit { close() }

    /// Idempotent: finishes queued commands, then stops the checkpointer and readers.
    public func close() {
        writer.close()
        checkpointer?.close()
        readers.close()
    }

    /// Runs `work` on the writer in its own savepoint of a group-committed transaction; returns
    /// once committed. For commands the protocol does not name yet.
    public func write<T: Sendable>(_ work: @escaping @Sendable (WriteContext) throws -> T) async throws -> T {
        try await writer.write(work)
    }

    /// Runs `body` on a read connection inside one read transaction (a consistent snapshot).
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try readers.read(body)
    }

    /// Commands waiting for the writer.
    public var queuedCommandsCount: Int { writer.queuedCount }

    /// Writer totals since open: batches, commands, the writer's wall and CPU time in them,
    /// summed over commands the time spent queued and in the batch that applied each, and the
    /// batches started while an earlier batch's fsync was still running.
    public var writerStatistics: (batches: Int, commands: Int, busyNanoseconds: UInt64, cpuNanoseconds: UInt64,
                                  queuedNanoseconds: UInt64, applyingNanoseconds: UInt64, batchesOverlappingSync: Int) {
        let s = writer.currentStatistics
        return (s.batches, s.commands, s.busyNanoseconds, s.cpuNanoseconds, s.queuedNanoseconds, s.applyingNanoseconds, s.batchesOverlappingSync)
    }

    /// True once a WAL fsync has failed: the store refuses every command until reopened.
    public var hasFailedSync: Bool { writer.hasFailedSync }

    /// WAL fsyncs the syncer made, batches they answered, and the wall time spent in them
    /// (pipelined group commit).
    /// Also the wall time in fsyncs, and, summed over commands, the time from their batch's
    /// commit to their answer.
    public var syncerCounts: (syncs: Int, batches: Int, syncNanoseconds: UInt64, awaitingSyncNanoseconds: UInt64) {
        let s = writer.syncerCounts
        return (s.syncs, s.batches, s.syncNanoseconds, s.awaitingSyncNanoseconds)
    }

    /// Each finished batch's wall time in the writer (applying and committing), and each WAL
    /// fsync's: where a latency spike came from. A batch is counted in `writerStatistics` when
    /// taken and here when finished, so under load this count trails it by the batch in hand.
    public var stageDurations: (batches: DurationHistogram, walSyncs: DurationHistogram) {
        (writer.currentStatistics.batchDurations, writer.syncerCounts.syncDurations)
    }

    /// Batches the writer ran again with a savepoint per command (a command failed after writing).
    public var writerRedoneBatchesCount: Int { writer.currentStatistics.redoneBatches }

    // MARK: Store

    public func intake(_ loan: Loan, now: Int64) async throws -> IntakeResult {
        let engine = self.engine
        return try await writer.write { try engine.intake($0, loan: loan, now: now) }
    }

    public func confirm(_ confirmation: FundingConfirmation, now: Int64) async throws -> ConfirmationResult {
        let engine = self.engine
        return try await writer.write { try engine.confirm($0, confirmation, now: now) }
    }

    /// Runs the deadline sweep in bounded steps (each one writer command, so other commands
    /// interleave) until nothing due is left or `limit` (at most 1,000) loans have ended.
    public func expireOverdue(now: Int64, limit: Int) async throws -> [ExpiryResult] {
        let engine = self.engine
        let bounded = min(max(limit, 0), 1_000)
        var ended: [ExpiryResult] = []
        while true {
            let remaining = bounded - ended.count
            let step = try await writer.write { try engine.expireOverdue($0, now: now, limit: remaining) }
            ended += step.results
            if step.complete || ended.count >= bounded { return ended }
        }
    }

    public func recordRepayment(_ repayment: Repayment, now: Int64) async throws -> RepaymentResult {
        let engine = self.engine
        return try await writer.write { try engine.recordRepayment($0, repayment, now: now) }
    }

    public func depositToPool(funderId: String, amountMinor: Int64, reference: String, now: Int64) async throws {
        let engine = self.engine
        try await writer.write { try engine.deposit($0, funderId: funderId, amountMinor: amountMinor, reference: reference, now: now) }
    }

    public func claimDueOutbox(now: Int64, limit: Int) async throws -> [OutboxMessage] {
        try await claimDueOutbox(now: now, limit: limit, droppingDestinations: [])
    }

    /// As `claimDueOutbox(now:limit:)`, except that a due message for one of
    /// `droppingDestinations` (a destination with nowhere to deliver to) is marked sent in the
    /// same command and returned with state `.sent`: no lease, and no completion to write later.
    public func claimDueOutbox(now: Int64, limit: Int, droppingDestinations: Set<String>) async throws -> [OutboxMessage] {
        let policy = configuration.outbox
        return try await writer.write { try Outbox.claimDue($0, now: now, limit: limit, policy: policy, droppingDestinations: droppingDestinations) }
    }

    public func markOutboxSent(id: Int64) async throws {
        try await writer.write { try Outbox.markSent($0, id: id) }
    }

    /// Marks delivered messages sent in one writer command (the dispatcher batches completions
    /// that enqueue no follow-up). A message already final or unknown is skipped without
    /// failing the rest; at most `outboxCompletionsPerCommandMax` ids. Returns the ids marked
    /// sent by this call, in the order given.
    public func completeOutbox(ids: [Int64]) async throws -> [Int64] {
        guard ids.count <= Self.outboxCompletionsPerCommandMax else {
            throw StoreError.invalidCommand(field: "outbox.ids", reason: "must hold at most \(Self.outboxCompletionsPerCommandMax) ids")
        }
        if ids.isEmpty { return [] }
        return try await writer.write { try Outbox.complete($0, ids: ids) }
    }

    /// The most ids one `completeOutbox(ids:)` call takes.
    public static var outboxCompletionsPerCommandMax: Int { Outbox.completionsPerCommandMax }

    public func markOutboxFailed(id: Int64, now: Int64) async throws -> OutboxMessage.State {
        let policy = configuration.outbox
        return try await writer.write { try Outbox.markFailed($0, id: id, now: now, policy: policy) }
    }

    public func post(_ transaction: LedgerTransaction) async throws -> Int64 {
        try Ledger.validate(transaction)
        return try await writer.write { try Ledger.post($0, transaction) }
    }

    public func appendAudit(actor: String, action: String, payload: [UInt8], now: Int64) async throws {
        _ = try await writer.write { try AuditLog.append($0, at: now, actor: actor, action: action, payload: payload) }
    }

    public func loan(id: String) async throws -> LoanRecord? {
        try read { db in
            do {
                return try loadLoan(db, loanId: id)
            } catch StoreError.notFound {
                return nil
            }
        }
    }

    public func balance(account: String) async throws -> Int64 {
        try read { try Ledger.balance($0, account: account) }
    }

    public func outboxMessage(id: Int64) async throws -> OutboxMessage? {
        try read { db in
            try db.fetchOne("SELECT id, destination, payload, attempts, next_attempt_at, state FROM outbox WHERE id = ?", [.integer(id)]) {
                OutboxMessage(id: $0.int64(0), destination: $0.text(1), payload: $0.blob(2), attempts: $0.int(3),
                              nextAttemptAt: $0.int64(4), state: OutboxMessage.State(rawValue: $0.int64(5)) ?? .pending)
            }
        }
    }

    public func verifyLedger() async throws -> String? {
        try read { try StoreVerifier.verifyLedger($0) }
    }

    public func verifyAudit() async throws -> String? {
        try read { try AuditLog.verify($0) }
    }
}
