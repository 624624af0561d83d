import Foundation

/// Copies committed WAL pages back into the database file from its own thread and connection,
/// so the writer's COMMIT never waits for a checkpoint (and its fsync of the database file).
/// PASSIVE checkpoints never block the writer; the writer restarts the WAL once one completes.
final class Checkpointer: @unchecked Sendable {
    // @unchecked: `stopping` and `finished` are guarded by `condition`; `db` is used by the
    // checkpointer thread only.
    private let db: Database
    private let intervalMilliseconds: Int
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false

    init(path: String, intervalMilliseconds: Int, busyTimeoutMilliseconds: Int32) throws {
        var configuration = Database.Configuration()
        configuration.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        configuration.pageCacheKibibytes = 2_048
        db = try Database(path: path, configuration: configuration)
        self.intervalMilliseconds = intervalMilliseconds
        // The thread keeps its owner alive until `close()` ends it: never a dangling self.
        let thread = Thread { self.run() }
        thread.start()
    }

    private func run() {
        condition.lock()
        while !stopping {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(intervalMilliseconds) / 1_000))
            if stopping { break }
            condition.unlock()
            // A failed checkpoint is retried at the next tick; the WAL only grows meanwhile.
            try? db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            condition.lock()
        }
        db.close()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }
}
