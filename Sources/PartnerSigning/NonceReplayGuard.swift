/// Remembers the nonces accepted per key for as long as their messages could still pass the
/// timestamp check, and rejects a second use. Memory is bounded: `entriesMax` nonces in all;
/// when that many are live, verification fails closed with `replayGuardFull` rather than forget
/// one early. The store's idempotency records remain the real guarantee against a double effect.
///
/// Called from several event-loop threads at once: nonces are spread over independently locked
/// shards so threads rarely wait on each other.
public final class NonceReplayGuard: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Live nonces kept in all, across keys. Sustained signed requests per second times
        /// `retentionSeconds` must fit, or requests are refused (`replayGuardFull`) until
        /// nonces expire: the default holds 6,666 a second at ±300 s, in about 130 MB when full.
        public var entriesMax: Int
        public static let defaultEntriesMax = 4_000_000
        /// How long a nonce is kept after it is accepted (through the second `now + retention`).
        /// Must cover the timestamp window both ways: a message stamped `tolerance` ahead stays
        /// acceptable until `2 × tolerance` after it first arrives.
        public var retentionSeconds: Int64
        public var shardCount: Int

        public init(entriesMax: Int = Configuration.defaultEntriesMax, retentionSeconds: Int64 = 2 * SigningScheme.defaultTimestampToleranceSeconds, shardCount: Int = 16) {
            self.entriesMax = entriesMax
            self.retentionSeconds = retentionSeconds
            self.shardCount = shardCount
        }
    }

    public let configuration: Configuration
    private let shards: [Shard]

    /// A guard shared by verifiers of `schemes`: it keeps nonces twice the widest tolerance among
    /// them (at least the default's), so no verifier's window outlasts what it remembers.
    public convenience init(entriesMax: Int = Configuration.defaultEntriesMax, covering schemes: [SigningScheme]) {
        let widest = schemes.map(\.timestampToleranceSeconds).reduce(SigningScheme.defaultTimestampToleranceSeconds, max)
        self.init(configuration: .init(entriesMax: entriesMax, retentionSeconds: 2 * widest))
    }

    public init(configuration: Configuration = Configuration()) {
        precondition(configuration.entriesMax >= 1 && configuration.shardCount >= 1 && configuration.retentionSeconds >= 0)
        self.configuration = configuration
        let shardCount = min(configuration.shardCount, configuration.entriesMax)
        let perShard = (configuration.entriesMax + shardCount - 1) / shardCount
        shards = (0..<shardCount).map { _ in Shard(entriesMax: perShard) }
    }

    /// Records (`keyID`, `nonce`) as seen at `now`, or throws `nonceReplayed` if it was seen within
    /// the retention window, or `replayGuardFull` if no room can be made.
    public func record(keyID: String, nonce: String, now: Int64) throws(SigningError) {
        let fingerprint = fingerprint(keyID: keyID, nonce: nonce)
        let shard = shards[Int(fingerprint % UInt64(shards.count))]
        try shard.record(fingerprint, now: now, expiresAt: now.addingReportingOverflow(configuration.retentionSeconds).partialValue)
    }

    /// Drawn per guard and never shown: without it, a sender cannot compute fingerprints, so cannot
    /// aim nonces at one shard or make two of its nonces collide.
    private let salt = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))

    /// What the guard keeps of a (key id, nonce) pair: 64 bits of a salted SipHash, not the
    /// strings, so an entry costs about 34 bytes (measured with 3.95 million live) and a lookup
    /// compares no strings. Two pairs share a fingerprint with probability (live entries) / 2^64 — below
    /// 10^-12 at 10 million — and the cost of that is one request refused as a replay, which
    /// its sender retries with a new nonce: the guard errs only on the side of refusing.
    func fingerprint(keyID: String, nonce: String) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(salt.0)
        hasher.combine(salt.1)
        hasher.combine(keyID)
        hasher.combine(nonce)
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }

    /// Live entries across all shards (for metrics and tests).
    public var count: Int { shards.reduce(0) { $0 + $1.count } }

    /// One lock's worth of nonces: a set for lookup and a queue in insertion order for eviction.
    /// Expiry is insertion time plus a constant, so the queue is ordered by expiry as long as the
    /// clock does not go back; if it does, entries are only kept longer, never dropped early.
    private final class Shard: @unchecked Sendable {
        private let lock = Lock()
        private let entriesMax: Int
        private var live: Set<UInt64> = []
        private var queue: [(expiresAt: Int64, fingerprint: UInt64)] = []
        private var head = 0

        init(entriesMax: Int) { self.entriesMax = entriesMax }

        var count: Int { lock.withLock { live.count } }

        func record(_ fingerprint: UInt64, now: Int64, expiresAt: Int64) throws(SigningError) {
            let outcome: SigningError? = lock.withLock {
                evict(now: now)
                // A replay is reported as such even when full; below the bound, one insert both
                // checks and records.
                if live.count >= entriesMax { return live.contains(fingerprint) ? .nonceReplayed : .replayGuardFull }
                guard live.insert(fingerprint).inserted else { return .nonceReplayed }
                queue.append((expiresAt, fingerprint))
                return nil
            }
            if let outcome { throw outcome }
        }

        private func evict(now: Int64) {
            // Strictly before: a nonce is still held in the second its retention ends, which is
            // the last second its message can pass a ±tolerance check.
            while head < queue.count, queue[head].expiresAt < now {
                live.remove(queue[head].fingerprint)
                head += 1
            }
            // Compact once the dead prefix is both large and most of the array.
            if head >= 1024, head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
        }
    }
}
