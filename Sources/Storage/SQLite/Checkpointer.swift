import Foundation

/// Copies committed WAL pages back into the database file from its own thread and connection,
/// so the writer's COMMIT never waits for a checkpoint (and its fsync of the database file).
/// PASSIVE checkpoints never block the writer; the writer restarts the WAL once one completes.
///
/// Two cadences. While the WAL is short it checkpoints every `intervalMilliseconds`, so a page
/// the writer changes many times in that while (a table's last page, a hot account, a page of
/// funding state two answers share) is copied and written back once, with one fsync of the
/// database file for the lot. Once the WAL has grown past `catchUpFromFrames` since the last
/// pass, the writer will soon checkpoint the rest itself and restart the WAL, inside a COMMIT
/// that every caller of that batch waits for; from then on it checkpoints every
/// `catchUpIntervalMilliseconds`, so that what is left for the writer to copy is small. A WAL
/// that stopped growing (an idle store) goes back to the long interval.
final class Checkpointer: @unchecked Sendable {
    // @unchecked: `stopping`, `finished` and `passesRun` are guarded by `condition`; `db` is used by the
    // checkpointer thread only.
    private let db: Database
    private let intervalMilliseconds: Int
    private let catchUpIntervalMilliseconds: Int
    private let catchUpFromFrames: Int64
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var passesRun = 0

    init(path: String, intervalMilliseconds: Int, catchUpIntervalMilliseconds: Int, catchUpFromFrames: Int64,
         busyTimeoutMilliseconds: Int32) throws {
        var configuration = Database.Configuration()
        configuration.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        configuration.pageCacheKibibytes = 2_048
        db = try Database(path: path, configuration: configuration)
        self.intervalMilliseconds = intervalMilliseconds
        self.catchUpIntervalMilliseconds = min(catchUpIntervalMilliseconds, intervalMilliseconds)
        self.catchUpFromFrames = catchUpFromFrames
        // The thread keeps its owner alive until `close()` ends it: never a dangling self.
        let thread = Thread { self.run() }
        thread.start()
    }

    private func run() {
        condition.lock()
        var waitMilliseconds = intervalMilliseconds
        var lastWALFrames: Int64 = 0
        while !stopping {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitMilliseconds) / 1_000))
            if stopping { break }
            condition.unlock()
            // A failed checkpoint is retried at the next tick; the WAL only grows meanwhile.
            // Its second column is the WAL's length in frames.
            let walFrames = (try? db.fetchOne("PRAGMA wal_checkpoint(PASSIVE)") { $0.int64(1) }) ?? nil
            waitMilliseconds = Self.nextWait(walFrames: walFrames, lastWALFrames: lastWALFrames, catchUpFromFrames: catchUpFromFrames,
                                             interval: intervalMilliseconds, catchUpInterval: catchUpIntervalMilliseconds)
            if let walFrames { lastWALFrames = walFrames }
            condition.lock()
            passesRun += 1
        }
        db.close()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The wait before the next pass, from the WAL's length in frames at this pass (nil: the
    /// pass failed) and at the one before.
    static func nextWait(walFrames: Int64?, lastWALFrames: Int64, catchUpFromFrames: Int64, interval: Int, catchUpInterval: Int) -> Int {
        guard let walFrames, walFrames >= catchUpFromFrames, walFrames != lastWALFrames else { return interval }
        return catchUpInterval
    }

    /// Checkpoint passes made so far.
    var passes: Int {
        condition.lock()
        defer { condition.unlock() }
        return passesRun
    }

    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }
}
