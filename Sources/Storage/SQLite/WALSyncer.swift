import CSQLite
import CSQLiteVFS
import Foundation
import Synchronization

/// The second stage of pipelined group commit. The writer commits a batch with its WAL sync
/// deferred (see `CSQLiteVFS_setDeferredCommitSync`): the frames are in the kernel, not yet on
/// disk. It hands the batch here and goes on with the next one; this thread fsyncs the WAL —
/// one `fdatasync` for every batch that arrived meanwhile — and only then answers their jobs.
/// So no answer precedes durability, and the writer never sits idle in an fsync.
///
/// An fsync that fails leaves it unknown what reached the disk (and Linux may not report the
/// loss again), so the syncer fails those jobs and every later one: the store must be reopened,
/// which replays what the WAL really holds.
final class WALSyncer: @unchecked Sendable {
    // @unchecked: `pending`, `failure`, `closing` and the counters are guarded by `condition`;
    // the descriptor is the syncer thread's own.
    private struct Item {
        var jobs: [any WriteJob]
        var generation: Int64
        var committedAtNanoseconds: UInt64
        var wal: UnsafeMutableRawPointer
        var onSynced: @Sendable (Int64) -> Void
    }

    /// Batches waiting for an fsync before the writer must wait for the syncer.
    static let batchesWaitingMax = 8

    private let walPath: String
    private let condition = NSCondition()
    private var pending: [Item] = []
    private var inFlight = 0
    private var closing = false
    private var finished = false
    private(set) var failure: DatabaseError?
    /// Set once `failure` is: every command's enqueue asks, and must not take the lock to.
    private let hasFailed = Atomic<Bool>(false)
    private var statistics = Statistics()

    /// Totals since start, for metrics and benchmarks.
    struct Statistics: Sendable {
        var syncs = 0
        var batches = 0
        /// Wall time spent in fsyncs.
        var syncNanoseconds: UInt64 = 0
        /// Each fsync's wall time.
        var syncDurations = DurationHistogram()
        /// Summed over commands: time from their batch's commit to their answer (the fsync it
        /// waited for, and any before it).
        var awaitingSyncNanoseconds: UInt64 = 0
    }

    init(walPath: String) {
        self.walPath = walPath
        let thread = Thread { self.run() }
        thread.name = "jointlend.store.syncer"
        thread.start()
    }

    /// Queues a committed batch; waits while too many are queued. Returns false, having
    /// answered nothing, if the syncer has failed (the caller then fails the jobs).
    func submit(_ jobs: [any WriteJob], generation: Int64, wal: UnsafeMutableRawPointer, committedAtNanoseconds: UInt64,
                onSynced: @escaping @Sendable (Int64) -> Void) -> DatabaseError? {
        condition.lock()
        while pending.count >= Self.batchesWaitingMax && failure == nil { condition.wait() }
        if let failure {
            condition.unlock()
            return failure
        }
        pending.append(Item(jobs: jobs, generation: generation, committedAtNanoseconds: committedAtNanoseconds, wal: wal, onSynced: onSynced))
        condition.unlock()
        // After unlocking: a syncer woken while the writer still held the lock would only block
        // on it again.
        condition.broadcast()
        return nil
    }

    /// The failure, if an fsync has failed; nil while sound.
    var failed: DatabaseError? {
        guard hasFailed.load(ordering: .acquiring) else { return nil }
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// Waits until every submitted batch has been synced and answered.
    func drain() {
        condition.lock()
        while !pending.isEmpty || inFlight > 0 { condition.wait() }
        condition.unlock()
    }

    /// Drains, then ends the thread.
    func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    /// fsyncs, batches answered, and time spent.
    var counts: Statistics {
        condition.lock()
        defer { condition.unlock() }
        return statistics
    }

    private func run() {
        var fd: Int32 = -1
        while true {
            condition.lock()
            while pending.isEmpty && !closing { condition.wait() }
            if pending.isEmpty && closing {
                finished = true
                condition.broadcast()
                condition.unlock()
                break
            }
            let items = pending
            pending.removeAll(keepingCapacity: true)
            inFlight = items.count
            let failedBefore = failure
            condition.broadcast()
            condition.unlock()

            let syncStarted = DispatchTime.now().uptimeNanoseconds
            let outcome = failedBefore ?? sync(&fd)
            let syncElapsed = DispatchTime.now().uptimeNanoseconds - syncStarted
            if let outcome {
                // Recorded before any job hears of it: whoever is answered with the error finds
                // the store already refusing.
                condition.lock()
                if failure == nil { failure = outcome }
                hasFailed.store(true, ordering: .releasing)
                condition.unlock()
            }
            if let last = items.last {
                // Every item names the same WAL; the newest generation covers the older ones.
                if outcome == nil { CSQLiteVFS_markSynced(last.wal, last.generation) }
                // Also after a failure: the writer must not wait for a sync that will not come.
                last.onSynced(last.generation)
            }
            var awaited: UInt64 = 0
            let answeredAt = DispatchTime.now().uptimeNanoseconds
            for item in items {
                awaited &+= (answeredAt &- min(item.committedAtNanoseconds, answeredAt)) &* UInt64(item.jobs.count)
                for job in item.jobs { job.finish(batchError: outcome.map(StoreError.database)) }
            }
            condition.lock()
            statistics.awaitingSyncNanoseconds &+= awaited
            inFlight = 0
            statistics.syncs += 1
            statistics.batches += items.count
            statistics.syncNanoseconds += syncElapsed
            statistics.syncDurations.record(nanoseconds: syncElapsed)
            condition.broadcast()
            condition.unlock()
        }
        if fd >= 0 { Glibc.close(fd) }
    }

    /// One fdatasync of the WAL through this thread's own descriptor: it covers every write
    /// any descriptor of the file made before it.
    private func sync(_ fd: inout Int32) -> DatabaseError? {
        if fd < 0 {
            fd = open(walPath, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                return DatabaseError(extendedResultCode: DatabaseError.ioErrorFsync, message: "cannot open the WAL to sync it (errno \(errno))")
            }
        }
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            return DatabaseError(extendedResultCode: DatabaseError.ioErrorFsync, message: "WAL fsync failed (errno \(errno)); reopen the store")
        }
        return nil
    }
}
