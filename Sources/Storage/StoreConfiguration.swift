import LendingCore

/// Everything the SQLite store runs with; defaults in one place.
public struct StoreConfiguration: Sendable {
    /// The database file (created if missing).
    public var path: String
    /// Rule set, funders and jurisdiction routing decisions are taken with.
    public var router: Router
    /// Commands waiting for the writer; beyond this callers get `StoreError.overloaded`.
    public var queueCommandsMax = 20_000
    /// Commands per transaction (group commit). 1 gives one fsync per command.
    public var batchCommandsMax = 1_024
    /// How long the writer waits for more commands before committing a batch smaller than
    /// `batchCommandsMax`. 0: commit what is there; batches then grow with load by themselves.
    public var batchWindowMicroseconds = 0
    /// Pipelined group commit: the writer runs the next batch while a syncer thread fsyncs
    /// the WAL for the last one, and answers a batch only after its fsync (see `WALSyncer`).
    public var pipelinesSync = true
    /// With pipelining, while an fsync is in flight the writer starts a new batch only once
    /// this many commands wait (or the fsync ends), so few callers do not split into slivers.
    public var pipelinedBatchCommandsMin = StoreConfiguration.defaultPipelinedBatchCommandsMin
    /// 8, not the 32 of before: with 64 HTTP connections batches hold about 20 commands, so at
    /// 32 the writer sat out most of each fsync and applying and syncing ran one after the
    /// other. At 8 the next batch starts while the fsync runs: signed confirmations (benchmark
    /// (c)) rose in 4 of 4 alternated pairs, +1.8% to +11.7%, with p99 unchanged. Batches
    /// shrank from about 23 to 19 commands; the writer's CPU per command did not rise.
    public static let defaultPipelinedBatchCommandsMin = 8
    /// Read connections kept open.
    public var readConnectionsMax = 4
    public var busyTimeoutMilliseconds: Int32 = 5_000
    /// How often a background connection checkpoints the WAL into the database file while the
    /// WAL is short. Longer passes copy a page the writer rewrote many times once, with one
    /// database fsync for the lot: at 50 ms rather than 10 the checkpointer's CPU per HTTP
    /// confirmation fell from 0.19–0.21 to 0.14–0.16 of the writer's. Near the WAL's restart
    /// it checkpoints every `checkpointCatchUpIntervalMilliseconds` instead (see
    /// `Checkpointer`): without that, the
    /// writer's own checkpoint at the restart copied up to an interval's pages inside a COMMIT
    /// and set the p99 of signed confirmations (measured: 19 ms with 50 ms passes, 11 ms with 40).
    /// 0: the writer checkpoints itself inside COMMIT (SQLite's default behaviour).
    public var checkpointIntervalMilliseconds = StoreConfiguration.defaultCheckpointIntervalMilliseconds
    public static let defaultCheckpointIntervalMilliseconds = 50
    /// With the background checkpointer, the WAL size (4 KiB pages) past which the writer
    /// checkpoints itself so the WAL can restart (about 80 MB).
    public static let walPagesMax = 20_000
    /// The checkpointer's interval while a growing WAL is past `checkpointCatchUpFromFrames`.
    public static let checkpointCatchUpIntervalMilliseconds = 2
    /// Three quarters of `walPagesMax`: at 20k confirmations/s the last quarter takes about
    /// 0.2 s to fill, time for the catch-up passes to drain an interval's backlog.
    public static let checkpointCatchUpFromFrames = Int64(walPagesMax) * 3 / 4
    public var outbox = OutboxPolicy()
    /// Offset from UTC of the partners' business day (Asia/Shanghai: +8 h).
    public var businessDayOffsetSeconds: Int64 = 8 * 3_600
    /// Outbox destination for notifications to the lending platform.
    public var platformDestination = "platform"
    /// The actor recorded in audit entries for commands the store applies.
    public var auditActor = "gateway"

    public init(path: String, router: Router) {
        self.path = path
        self.router = router
    }
}
