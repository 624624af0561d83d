import Foundation
import HTTP
import LendingCore
import PartnerSigning
import Storage

/// A whole running gateway: configuration, contracts, store, API, HTTP server and the background
/// sweeper. `serve`, `demo` and the end-to-end tests all start it the same way.
public final class GatewayServer: Sendable {
    public struct Options: Sendable {
        public var configPath = "Config/gateway.json"
        /// Overrides the configuration's `server.host` / `server.port`.
        public var listenHost: String?
        public var listenPort: Int?
        /// Overrides the configuration's `dataDir`.
        public var dataDirectory: String?
        /// Registers test-only routes (contract provider states). Never on in production.
        public var testMode = false
        public var eventLoops: Int?
        /// Unix-seconds clock; the chaos test fast-forwards it.
        public var clock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
        public var logger = HTTP.Logger(label: "jointlend")
        /// The outbox dispatcher's settings (issue 6). Its `platformWebhookURL` defaults to the
        /// configuration's `platform.webhookUrl`.
        public var dispatcher = OutboxDispatcher.Configuration()
        public init() {}
    }

    public let config: GatewayConfig
    public let store: SQLiteStore
    public let api: GatewayAPI
    public let http: HTTPServer
    public let databasePath: String
    let sweeper: Sweeper
    public let dispatcher: OutboxDispatcher

    /// Loads and validates everything, opens the store and seeds opening pool balances once.
    /// Nothing listens until `start()`.
    public init(options: Options) async throws {
        var config = try GatewayConfig.load(path: options.configPath)
        if let h = options.listenHost { config.runtime.server.host = h }
        if let p = options.listenPort { config.runtime.server.port = p }
        self.config = config
        let contracts = try PartnerContract.loadAll(directory: config.resolve(config.runtime.contractsDirectory))
        let secret = try Self.platformSecret(config)

        let dataDir = options.dataDirectory ?? config.resolve(config.runtime.dataDirectory)
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        databasePath = "\(dataDir)/jointlend.sqlite"
        var storeConfig = StoreConfiguration(path: databasePath, router: config.makeRouter())
        storeConfig.queueCommandsMax = config.runtime.storeQueueCommandsMax
        storeConfig.batchCommandsMax = config.runtime.storeBatchCommandsMax
        storeConfig.pipelinesSync = config.runtime.storePipelinesSync
        storeConfig.checkpointIntervalMilliseconds = config.runtime.storeCheckpointIntervalMilliseconds
        storeConfig.pipelinedBatchCommandsMin = config.runtime.storePipelinedBatchCommandsMin
        storeConfig.businessDayOffsetSeconds = config.businessDayUtcOffsetSeconds
        let store = try SQLiteStore(configuration: storeConfig)
        self.store = store
        let now = options.clock()
        for (id, balance) in config.poolBalancesMinor.sorted(by: { $0.key < $1.key }) where balance > 0 {
            if try await store.balance(account: LedgerAccounts.poolCapital(id)) == 0 {
                try await store.depositToPool(funderId: id, amountMinor: balance, reference: "opening-balance:\(id)", now: now)
            }
        }
        let metrics = Metrics()
        let queueMax = storeConfig.queueCommandsMax
        let readiness: @Sendable () -> String? = { [store] in
            if store.hasFailedSync { return "store stopped after a failed WAL fsync; restart the gateway" }
            return store.queuedCommandsCount >= queueMax ? "store queue is full" : nil
        }
        @Sendable func sample(_ histogram: DurationHistogram) -> (cumulativeCounts: [UInt64], count: UInt64, sum: Double) {
            (histogram.cumulativeCounts, histogram.count, Double(histogram.sumNanoseconds) / 1e9)
        }
        metrics.collectHistogram("jointlend_store_batch_duration_seconds", help: "Wall time of each writer batch, applying and committing its commands.",
                                 buckets: DurationHistogram.boundsSeconds) { [store] in sample(store.stageDurations.batches) }
        metrics.collectHistogram("jointlend_store_wal_sync_duration_seconds", help: "Wall time of each WAL fsync made for pipelined group commits.",
                                 buckets: DurationHistogram.boundsSeconds) { [store] in sample(store.stageDurations.walSyncs) }
        metrics.collect { [store] in
            let w = store.writerStatistics
            var samples: [(name: String, help: String, labels: String, value: Double)] = [
                ("jointlend_store_queue_depth", "Commands waiting for the store's writer.", "", Double(store.queuedCommandsCount)),
                ("jointlend_store_batches", "Transactions the writer has committed (group commits).", "", Double(w.batches)),
                ("jointlend_store_batches_overlapping_sync", "Batches the writer started while an earlier batch's WAL fsync was still running.", "",
                 Double(w.batchesOverlappingSync)),
                ("jointlend_store_commands", "Commands the writer has applied.", "", Double(w.commands)),
                ("jointlend_store_batch_size_mean", "Commands per committed transaction, on average since start.", "",
                 w.batches > 0 ? Double(w.commands) / Double(w.batches) : 0),
                ("jointlend_store_writer_busy_seconds", "Time the writer spent applying and committing batches.", "", Double(w.busyNanoseconds) / 1e9),
                ("jointlend_store_writer_cpu_seconds", "CPU time the writer thread spent applying and committing batches.", "", Double(w.cpuNanoseconds) / 1e9),
            ]
            let syncs = store.syncerCounts
            samples.append(("jointlend_store_wal_syncs", "WAL fsyncs made for pipelined group commits (each covers every batch committed before it).", "", Double(syncs.syncs)))
            samples.append(("jointlend_store_wal_sync_seconds", "Wall time spent in WAL fsyncs.", "", Double(syncs.syncNanoseconds) / 1e9))
            // Where a command's time goes, summed over commands; divided by
            // jointlend_store_commands it is the mean per phase.
            let phaseHelp = "Time commands spent per phase, summed over commands: queued for the writer, in the batch that applied and committed them, awaiting the WAL fsync."
            samples.append(("jointlend_store_command_phase_seconds", phaseHelp, #"phase="queued""#, Double(w.queuedNanoseconds) / 1e9))
            samples.append(("jointlend_store_command_phase_seconds", phaseHelp, #"phase="applying""#, Double(w.applyingNanoseconds) / 1e9))
            samples.append(("jointlend_store_command_phase_seconds", phaseHelp, #"phase="awaiting_sync""#, Double(syncs.awaitingSyncNanoseconds) / 1e9))
            if let depth = try? store.outboxDepth() {
                samples.append(("jointlend_outbox_depth", "Outbox messages waiting for delivery (pending or due for retry).", "", Double(depth)))
            }
            return samples
        }
        let api = try GatewayAPI(config: config, store: store, contracts: contracts, platformSecret: secret, metrics: metrics,
                                 clock: options.clock, readiness: readiness,
                                 positions: { [store, offset = config.businessDayUtcOffsetSeconds] id, now in
                                     try store.partnerPosition(funderId: id, now: now, businessDayOffsetSeconds: offset)
                                 },
                                 trancheFacts: { [store] id in try store.trancheFacts(id: id) },
                                 testRoutes: options.testMode ? TestModeRoutes(store: store, contracts: contracts, currency: config.currency, clock: options.clock).register : nil)
        self.api = api
        var http = HTTPServer.Configuration()
        http.host = config.runtime.server.host
        http.port = config.runtime.server.port
        if let loops = options.eventLoops ?? (config.runtime.server.eventLoops > 0 ? config.runtime.server.eventLoops : nil) { http.eventLoopCount = loops }
        http.bodyBytesMax = config.runtime.server.bodyBytesMax
        http.connectionsMax = config.runtime.server.connectionsMax
        http.headerReadTimeoutMilliseconds = config.runtime.server.headerReadTimeoutMilliseconds
        http.bodyReadTimeoutMilliseconds = config.runtime.server.bodyReadTimeoutMilliseconds
        http.idleTimeoutMilliseconds = config.runtime.server.idleTimeoutMilliseconds
        http.writeTimeoutMilliseconds = config.runtime.server.writeTimeoutMilliseconds
        http.shutdownGraceMilliseconds = config.runtime.server.shutdownGraceMilliseconds
        self.http = HTTPServer(configuration: http, responder: try api.makeResponder(), logger: options.logger,
                               observer: { [api] m in api.observe(m) })
        sweeper = Sweeper(store: store, clock: options.clock, intervalMilliseconds: config.runtime.sweepIntervalMilliseconds, logger: options.logger)
        // Partner connectors and the platform webhook: sends what the outbox holds (issue 6).
        var dispatch = options.dispatcher
        dispatch.platformWebhookURL = dispatch.platformWebhookURL ?? config.runtime.platform.webhookURL
        dispatch.platformDestination = storeConfig.platformDestination
        dispatcher = try OutboxDispatcher(configuration: dispatch, store: store, contracts: contracts, platformKeyId: config.runtime.platform.keyId,
                                          platformSecret: secret, clock: options.clock, logger: options.logger, metrics: metrics)
    }

    /// The platform's HMAC secret: the environment variable named in configuration when set,
    /// else the named file. Missing both is a configuration error (fail closed).
    static func platformSecret(_ config: GatewayConfig) throws(ConfigError) -> [UInt8] {
        let p = config.runtime.platform
        if let env = p.secretEnv, let v = ProcessInfo.processInfo.environment[env], !v.isEmpty { return Array(v.utf8) }
        if let file = p.secretFile, let data = FileManager.default.contents(atPath: config.resolve(file)),
           case let secret = KeyMaterial.trimmingOneNewline(Array(data)), secret.count >= 32 {
            return secret
        }
        throw ConfigError(file: "configuration", problems: [DecodingProblem(path: "$.platform", message: "no platform secret: set \(p.secretEnv ?? "secretEnv") or a readable secretFile of at least 32 bytes")])
    }

    public var port: Int { http.port }

    public func start() throws {
        try http.start()
        sweeper.start()
        dispatcher.start()
    }

    /// Graceful stop: no new connections, in-flight requests finish, background work ends, the
    /// store finishes its queue and closes.
    public func stop() {
        http.shutdown()
        sweeper.stop()
        dispatcher.stop()
        store.close()
    }
}

/// Ends every loan whose funding deadline passed, on a timer. Bounded per pass.
final class Sweeper: Sendable {
    let store: SQLiteStore
    let clock: @Sendable () -> Int64
    let intervalMilliseconds: Int
    let logger: HTTP.Logger
    let task = LockedBox<Task<Void, Never>?>(nil)
    static let loansPerPassMax = 1_000

    init(store: SQLiteStore, clock: @escaping @Sendable () -> Int64, intervalMilliseconds: Int, logger: HTTP.Logger) {
        self.store = store
        self.clock = clock
        self.intervalMilliseconds = intervalMilliseconds
        self.logger = logger
    }

    func start() {
        task.set(Task { [self] in
            while !Task.isCancelled {
                do {
                    let ended = try await store.expireOverdue(now: clock(), limit: Self.loansPerPassMax)
                    if !ended.isEmpty { logger.info("deadline sweep ended loans", metadata: ["loans": String(ended.count)]) }
                } catch {
                    logger.warning("deadline sweep failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(nanoseconds: UInt64(intervalMilliseconds) * 1_000_000)
            }
        })
    }

    func stop() { task.get()?.cancel() }
}

/// A value behind a lock, for the few pieces of mutable state shared across threads.
final class LockedBox<T>: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}
