import PartnerSigning
import Storage

/// The running gateway's settings from `Config/gateway.json` (every one optional, defaults here).
public struct RuntimeSettings: Sendable {
    public struct Server: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        /// Event-loop threads; 0 means one per core.
        public var eventLoops = 0
        public var bodyBytesMax = 1 << 20
        public var connectionsMax = 20_000
        public var headerReadTimeoutMilliseconds = 10_000
        public var bodyReadTimeoutMilliseconds = 30_000
        public var idleTimeoutMilliseconds = 60_000
        public var writeTimeoutMilliseconds = 30_000
        public var shutdownGraceMilliseconds = 10_000
    }

    /// The lending platform: how its requests are verified and where its webhooks go.
    public struct Platform: Sendable {
        public var keyId = "platform-dev-1"
        /// File with the HMAC secret (relative to the configuration's folder), used when `env` is unset.
        public var secretFile: String? = "keys/platform-dev.secret"
        /// Environment variable holding the HMAC secret; preferred when set.
        public var secretEnv: String? = "JL_PLATFORM_SECRET"
        public var webhookURL: String? = nil
        public var timestampToleranceSeconds: Int64 = 300
    }

    public struct RateLimit: Sendable {
        public var ratePerSecond: Int
        public var burst: Int
    }

    public var server = Server()
    public var platform = Platform()
    public var contractsDirectory = "../Contracts"
    public var dataDirectory = "../data"
    public var platformRateLimit = RateLimit(ratePerSecond: 100_000, burst: 200_000)
    public var partnerRateLimit = RateLimit(ratePerSecond: 50_000, burst: 100_000)
    public var storeQueueCommandsMax = 20_000
    public var storeBatchCommandsMax = 1_024
    public var storePipelinesSync = true
    public var storeCheckpointIntervalMilliseconds = StoreConfiguration.defaultCheckpointIntervalMilliseconds
    public var storePipelinedBatchCommandsMin = StoreConfiguration.defaultPipelinedBatchCommandsMin
    /// Nonces the replay guard keeps (`server.replayNoncesMax`): sustained signed requests per
    /// second × twice the timestamp tolerance must fit, or requests are refused until some expire.
    public var replayNoncesMax = NonceReplayGuard.Configuration.defaultEntriesMax
    /// How often the deadline sweeper and the outbox dispatcher look for work.
    public var sweepIntervalMilliseconds = 1_000

    static func decode(_ root: ObjectReader) -> RuntimeSettings {
        var r = RuntimeSettings()
        if let s = root.object("server", required: false) {
            s.rejectUnknown(["host", "port", "eventLoops", "bodyBytesMax", "connectionsMax", "headerReadTimeoutMilliseconds",
                             "bodyReadTimeoutMilliseconds", "idleTimeoutMilliseconds", "writeTimeoutMilliseconds", "shutdownGraceMilliseconds", "replayNoncesMax"])
            r.server.host = s.string("host", required: false, bytesMax: 64) ?? r.server.host
            r.server.port = s.int("port", required: false, in: 0...65_535) ?? r.server.port
            r.server.eventLoops = s.int("eventLoops", required: false, in: 0...256) ?? r.server.eventLoops
            r.server.bodyBytesMax = s.int("bodyBytesMax", required: false, in: 1_024...(16 << 20)) ?? r.server.bodyBytesMax
            r.server.connectionsMax = s.int("connectionsMax", required: false, in: 1...1_000_000) ?? r.server.connectionsMax
            let ms = 1...3_600_000
            r.server.headerReadTimeoutMilliseconds = s.int("headerReadTimeoutMilliseconds", required: false, in: ms) ?? r.server.headerReadTimeoutMilliseconds
            r.server.bodyReadTimeoutMilliseconds = s.int("bodyReadTimeoutMilliseconds", required: false, in: ms) ?? r.server.bodyReadTimeoutMilliseconds
            r.server.idleTimeoutMilliseconds = s.int("idleTimeoutMilliseconds", required: false, in: ms) ?? r.server.idleTimeoutMilliseconds
            r.server.writeTimeoutMilliseconds = s.int("writeTimeoutMilliseconds", required: false, in: ms) ?? r.server.writeTimeoutMilliseconds
            r.server.shutdownGraceMilliseconds = s.int("shutdownGraceMilliseconds", required: false, in: 0...600_000) ?? r.server.shutdownGraceMilliseconds
            r.replayNoncesMax = s.int("replayNoncesMax", required: false, in: 1_000...100_000_000) ?? r.replayNoncesMax
        }
        if let p = root.object("platform", required: false) {
            p.rejectUnknown(["keyId", "secretFile", "secretEnv", "webhookUrl", "timestampToleranceSeconds"])
            r.platform.keyId = p.string("keyId", required: false, bytesMax: 64) ?? r.platform.keyId
            if p.raw("secretFile") != nil { r.platform.secretFile = p.string("secretFile", bytesMax: 512) }
            if p.raw("secretEnv") != nil { r.platform.secretEnv = p.string("secretEnv", bytesMax: 128) }
            r.platform.webhookURL = p.string("webhookUrl", required: false, bytesMax: 256)
            r.platform.timestampToleranceSeconds = p.int64("timestampToleranceSeconds", required: false, in: 1...3_600) ?? 300
        }
        r.contractsDirectory = root.string("contractsDir", required: false, bytesMax: 512) ?? r.contractsDirectory
        r.dataDirectory = root.string("dataDir", required: false, bytesMax: 512) ?? r.dataDirectory
        if let l = root.object("rateLimits", required: false) {
            l.rejectUnknown(["platform", "partner"])
            for (key, apply) in [("platform", { (x: RateLimit) in r.platformRateLimit = x }), ("partner", { (x: RateLimit) in r.partnerRateLimit = x })] {
                guard let o = l.object(key, required: false) else { continue }
                o.rejectUnknown(["ratePerSecond", "burst"])
                if let rate = o.int("ratePerSecond", in: 1...10_000_000), let burst = o.int("burst", in: 1...10_000_000) {
                    apply(RateLimit(ratePerSecond: rate, burst: burst))
                }
            }
        }
        if let st = root.object("store", required: false) {
            st.rejectUnknown(["queueCommandsMax", "batchCommandsMax", "pipelinedSync", "pipelinedBatchCommandsMin", "checkpointIntervalMilliseconds"])
            r.storeCheckpointIntervalMilliseconds = st.int("checkpointIntervalMilliseconds", required: false, in: 0...60_000) ?? r.storeCheckpointIntervalMilliseconds
            r.storePipelinesSync = st.bool("pipelinedSync", required: false) ?? r.storePipelinesSync
            r.storePipelinedBatchCommandsMin = st.int("pipelinedBatchCommandsMin", required: false, in: 1...100_000) ?? r.storePipelinedBatchCommandsMin
            r.storeQueueCommandsMax = st.int("queueCommandsMax", required: false, in: 1...1_000_000) ?? r.storeQueueCommandsMax
            r.storeBatchCommandsMax = st.int("batchCommandsMax", required: false, in: 1...100_000) ?? r.storeBatchCommandsMax
        }
        if let ob = root.object("outbox", required: false) {
            ob.rejectUnknown(["sweepIntervalMilliseconds"])
            r.sweepIntervalMilliseconds = ob.int("sweepIntervalMilliseconds", required: false, in: 10...60_000) ?? r.sweepIntervalMilliseconds
        }
        return r
    }
}
