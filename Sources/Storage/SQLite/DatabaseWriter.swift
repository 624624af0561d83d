import CSQLiteVFS
import Foundation

/// The one writer: a thread that owns the write connection. Callers queue work (bounded); the
/// thread takes up to `batchCommandsMax` jobs into one transaction (a failing job undoes only
/// itself, see `process`), commits, and only then answers every job, so an answer means the
/// effect is durable. A job may run twice before it is answered, so it must be a function of
/// the database and its inputs alone.
final class DatabaseWriter: @unchecked Sendable {
    // @unchecked: all mutable state below is guarded by `condition`; the context is touched
    // only by the writer thread.

    struct Configuration: Sendable {
        var queueCommandsMax: Int
        var batchCommandsMax: Int
        var batchWindowMicroseconds: Int
        /// See `StoreConfiguration`; pipelining needs the coalescing VFS on the write connection.
        var pipelinesSync: Bool
        var pipelinedBatchCommandsMin: Int
    }

    private let configuration: Configuration
    /// Generations handed to the syncer and known synced (guarded by `condition`).
    private var submittedGeneration: Int64 = 0
    private var syncedGeneration: Int64 = 0
    private let condition = NSCondition()
    private var queue: [any WriteJob] = []
    /// When each queued job arrived (monotonic nanoseconds), index for index with `queue`.
    private var queuedAtNanoseconds: [UInt64] = []
    private var closing = false
    private var finished = false
    /// Commands per second drained, smoothed; feeds the `Retry-After` estimate.
    private var drainRatePerSecond: Double = 10_000
    private let context: WriteContext
    private var thread: Thread?
    private let syncer: WALSyncer?

    init(context: WriteContext, configuration: Configuration) {
        precondition(configuration.queueCommandsMax > 0 && configuration.batchCommandsMax > 0)
        self.context = context
        self.configuration = configuration
        if configuration.pipelinesSync && context.db.usesCoalescingVFS, let walPath = context.db.walPath {
            self.syncer = WALSyncer(walPath: walPath)
        } else {
            self.syncer = nil
        }
        // The thread keeps its owner alive until `close()` ends it: never a dangling self.
        let thread = Thread { self.run() }
        thread.name = "jointlend.store.writer"
        self.thread = thread
        thread.start()
    }

    /// Totals since start, for metrics and benchmarks.
    struct Statistics: Sendable {
        var batches = 0
        var commands = 0
        /// Wall time the writer spent in batches (commands, commit, fsync).
        var busyNanoseconds: UInt64 = 0
        /// Each batch's wall time (as `busyNanoseconds`, batch by batch).
        var batchDurations = DurationHistogram()
        /// CPU time the writer thread spent in batches.
        var cpuNanoseconds: UInt64 = 0
        /// Batches run a second time, with a savepoint per command, because a command failed
        /// after changing rows.
        var redoneBatches = 0
        /// Summed over commands: time from being queued to being taken into a batch.
        var queuedNanoseconds: UInt64 = 0
        /// Summed over commands: wall time of the batch that applied and committed each.
        var applyingNanoseconds: UInt64 = 0
        /// Batches taken while the fsync of an earlier one was still running: applying and
        /// syncing overlapped (`pipelinedBatchCommandsMin` decides how soon).
        var batchesOverlappingSync = 0
    }

    private var statistics = Statistics()

    var currentStatistics: Statistics {
        condition.lock()
        defer { condition.unlock() }
        return statistics
    }

    private static func threadCPUNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    var syncerCounts: WALSyncer.Statistics { syncer?.counts ?? WALSyncer.Statistics() }
    var hasFailedSync: Bool { syncer?.failed != nil }

    /// Commands waiting to be taken by the writer (for tests and metrics).
    var queuedCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count
    }

    /// Runs `work` on the writer inside a savepoint of a group-committed transaction and returns
    /// its result once the transaction has committed.
    func write<T: Sendable>(_ work: @escaping @Sendable (WriteContext) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let job = TypedWriteJob(work: work, continuation: continuation)
            if let refusal = enqueue(job) { continuation.resume(throwing: refusal) }
        }
    }

    private func enqueue(_ job: any WriteJob) -> StoreError? {
        // After a failed fsync nothing more is accepted: what is on disk is unknown until reopened.
        if let failure = syncer?.failed { return .database(failure) }
        let now = DispatchTime.now().uptimeNanoseconds
        condition.lock()
        if closing {
            condition.unlock()
            return .closed
        }
        if queue.count >= configuration.queueCommandsMax {
            let milliseconds = Double(queue.count) / max(drainRatePerSecond, 1) * 1_000
            condition.unlock()
            return .overloaded(retryAfterMilliseconds: Int(min(max(milliseconds.rounded(.up), 1), 30_000)))
        }
        queue.append(job)
        queuedAtNanoseconds.append(now)
        let wakes = queue.count == 1 || queue.count == configuration.pipelinedBatchCommandsMin || queue.count == configuration.batchCommandsMax
        condition.unlock()
        // After unlocking, so the writer does not wake only to wait for this thread's lock.
        if wakes { condition.signal() }
        return nil
    }

    /// Stops taking work, finishes what is queued, and returns once the thread has ended.
    func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    // MARK: Writer thread

    private func run() {
        // Thread-local in the VFS: only this thread's commits are deferred.
        if syncer != nil { CSQLiteVFS_setDeferredCommitSync(1) }
        while let batch = nextBatch() {
            // Counted when taken, not after: the syncer may answer the batch's callers before
            // this thread gets back here, and a caller reading the totals must see its command.
            condition.lock()
            statistics.batches += 1
            statistics.commands += batch.count
            condition.unlock()
            let started = DispatchTime.now().uptimeNanoseconds
            let cpuStarted = Self.threadCPUNanoseconds()
            process(batch)
            let cpu = Self.threadCPUNanoseconds() - cpuStarted
            let elapsedNanoseconds = DispatchTime.now().uptimeNanoseconds - started
            let elapsed = Double(elapsedNanoseconds) / 1e9
            condition.lock()
            if elapsed > 0 { drainRatePerSecond = 0.8 * drainRatePerSecond + 0.2 * Double(batch.count) / elapsed }
            statistics.busyNanoseconds += elapsedNanoseconds
            statistics.batchDurations.record(nanoseconds: elapsedNanoseconds)
            statistics.applyingNanoseconds += elapsedNanoseconds &* UInt64(batch.count)
            statistics.cpuNanoseconds += UInt64(max(cpu, 0))
            condition.unlock()
        }
        syncer?.close()
        context.db.close()
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func nextBatch() -> [any WriteJob]? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !closing { condition.wait() }
        if queue.isEmpty { return nil }
        while syncedGeneration < submittedGeneration && queue.count < configuration.pipelinedBatchCommandsMin && !closing
            && syncer?.failed == nil {
            condition.wait()
        }
        if configuration.batchWindowMicroseconds > 0 && !closing {
            let deadline = Date(timeIntervalSinceNow: Double(configuration.batchWindowMicroseconds) / 1e6)
            while queue.count < configuration.batchCommandsMax && !closing {
                if !condition.wait(until: deadline) { break }
            }
        }
        if syncedGeneration < submittedGeneration { statistics.batchesOverlappingSync += 1 }
        let count = min(queue.count, configuration.batchCommandsMax)
        let batch = Array(queue.prefix(count))
        queue.removeFirst(count)
        let now = DispatchTime.now().uptimeNanoseconds
        for queuedAt in queuedAtNanoseconds.prefix(count) { statistics.queuedNanoseconds &+= now &- min(queuedAt, now) }
        queuedAtNanoseconds.removeFirst(count)
        return batch
    }

    /// Runs the batch optimistically without a savepoint per command: a SAVEPOINT copies every
    /// page a command first touches into its sub-journal, which cost the writer more than most
    /// commands' own statements. A command that fails before changing a row needs no undo. A
    /// command that fails after changing rows cannot be undone alone, so the transaction is
    /// rolled back and the batch run again with a savepoint per command (the exact path).
    private func process(_ batch: [any WriteJob]) {
        let db = context.db
        // After a failed fsync nothing runs: what the disk holds is unknown until the store reopens.
        if let failure = syncer?.failed {
            for job in batch { job.finish(batchError: StoreError.database(failure)) }
            return
        }
        do {
            if try !attempt(batch, savepointPerCommand: false) {
                condition.lock()
                statistics.redoneBatches += 1
                condition.unlock()
                let committed = try attempt(batch, savepointPerCommand: true)
                assert(committed, "a batch with savepoints always commits or throws")
            }
        } catch {
            if !db.isAutocommit { try? db.execute("ROLLBACK") }
            context.batchDidRollBack()
            let reported = (error as? DatabaseError).map(StoreError.database) ?? error
            for job in batch { job.finish(batchError: reported) }
            return
        }
        answerWhenDurable(batch)
    }

    /// Answers a committed batch: at once if its commit synced, else through the syncer after
    /// the fsync its commit deferred. A batch that wrote nothing still waits for the syncs of
    /// the batches before it, as its answers may rest on their rows.
    private func answerWhenDurable(_ batch: [any WriteJob]) {
        guard let syncer else {
            for job in batch { job.finish(batchError: nil) }
            return
        }
        if let failure = syncer.failed {
            for job in batch { job.finish(batchError: StoreError.database(failure)) }
            return
        }
        var wal: UnsafeMutableRawPointer?
        let generation = CSQLiteVFS_takePendingSync(&wal)
        guard generation > 0, let wal else {
            for job in batch { job.finish(batchError: nil) }
            return
        }
        condition.lock()
        submittedGeneration = max(submittedGeneration, generation)
        condition.unlock()
        if let failure = syncer.submit(batch, generation: generation, wal: wal, committedAtNanoseconds: DispatchTime.now().uptimeNanoseconds, onSynced: { [self] synced in
            condition.lock()
            syncedGeneration = max(syncedGeneration, synced)
            condition.signal()
            condition.unlock()
        }) {
            for job in batch { job.finish(batchError: StoreError.database(failure)) }
        }
    }

    /// One try at committing `batch`; false when, without savepoints, a command failed after
    /// changing rows (the transaction has then been rolled back and nothing is committed).
    private func attempt(_ batch: [any WriteJob], savepointPerCommand: Bool) throws -> Bool {
        let db = context.db
        try db.cachedStatement("BEGIN IMMEDIATE").execute()
        let savepoint = try db.cachedStatement("SAVEPOINT command")
        let release = try db.cachedStatement("RELEASE command")
        let rollback = try db.cachedStatement("ROLLBACK TO command")
        for job in batch {
            if savepointPerCommand { try savepoint.execute() }
            context.commandWillBegin()
            let changesBefore = db.totalChangesCount
            if !job.perform(context) {
                // An error inside a statement can make SQLite roll back the whole transaction
                // (SQLITE_FULL, SQLITE_IOERR): then every job of the batch is lost, not just this one.
                guard !db.isAutocommit else { throw job.failure ?? StoreError.closed }
                if savepointPerCommand {
                    try rollback.execute()
                } else if db.totalChangesCount != changesBefore {
                    try db.cachedStatement("ROLLBACK").execute()
                    context.batchDidRollBack()
                    return false
                }
                context.commandDidRollBack()
            }
            if savepointPerCommand { try release.execute() }
        }
        try context.batchWillCommit()
        try db.cachedStatement("COMMIT").execute()
        return true
    }
}

protocol WriteJob: AnyObject, Sendable {
    /// Runs the job; false when it threw (its savepoint must be rolled back).
    func perform(_ context: WriteContext) -> Bool
    var failure: (any Error)? { get }
    /// Answers the caller: the job's own result, or `batchError` if the transaction did not commit.
    func finish(batchError: (any Error)?)
}

final class TypedWriteJob<T: Sendable>: WriteJob, @unchecked Sendable {
    // @unchecked: the result is written by the writer thread only, before `finish` hands it over.
    private let work: @Sendable (WriteContext) throws -> T
    private let continuation: CheckedContinuation<T, any Error>
    /// The last run's value, initialized only while `hasValue`. Kept out of line as a plain `T`:
    /// `perform` runs unspecialized (through the protocol), and a stored `Result<T, Error>?`
    /// made it look up that type's metadata at run time on every command.
    private let value = UnsafeMutablePointer<T>.allocate(capacity: 1)
    private var hasValue = false
    private(set) var failure: (any Error)?

    init(work: @escaping @Sendable (WriteContext) throws -> T, continuation: CheckedContinuation<T, any Error>) {
        self.work = work
        self.continuation = continuation
    }

    deinit {
        if hasValue { value.deinitialize(count: 1) }
        value.deallocate()
    }

    /// Runs the job; a batch run again (see `DatabaseWriter.process`) runs it again, and only
    /// the last run's outcome is kept.
    func perform(_ context: WriteContext) -> Bool {
        if hasValue {
            value.deinitialize(count: 1)
            hasValue = false
        }
        do {
            value.initialize(to: try work(context))
            hasValue = true
            failure = nil
            return true
        } catch let error as DatabaseError {
            failure = StoreError.database(error)
            return false
        } catch {
            failure = error
            return false
        }
    }

    func finish(batchError: (any Error)?) {
        if let batchError {
            continuation.resume(throwing: batchError)
        } else if let failure {
            continuation.resume(throwing: failure)
        } else if hasValue {
            hasValue = false
            continuation.resume(returning: value.move())
        } else {
            continuation.resume(throwing: StoreError.closed)
        }
    }
}
