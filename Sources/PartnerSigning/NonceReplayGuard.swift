/// Remembers the nonces accepted per key for as long as their messages could still pass the
/// timestamp check, and rejects a second use. Memory is bounded: `entriesMax` nonces in all;
/// when that many are live, verification fails closed with `replayGuardFull` rather than forget
/// one early. The store's idempotency records remain the real guarantee against a double effect.
///
/// Called from several event-loop threads at once: nonces are spread over independently locked
/// shards so threads rarely wait on each other.
public final class NonceReplayGuard: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Live nonces kept in all, across keys.
        public var entriesMax: Int
        /// How long a nonce is kept after it is accepted (through the second `now + retention`).
        /// Must cover the timestamp window both ways: a message stamped `tolerance` ahead stays
        /// acceptable until `2 × tolerance` after it first arrives.
        public var retentionSeconds: Int64
        public var shardCount: Int

        public init(entriesMax: Int = 1_000_000, retentionSeconds: Int64 = 2 * SigningScheme.defaultTimestampToleranceSeconds, shardCount: Int = 16) {
            self.entriesMax = entriesMax
            self.retentionSeconds = retentionSeconds
            self.shardCount = shardCount
        }
    }

    public let configuration: Configuration
    private let shards: [Shard]

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
        let entry = Entry(keyID: keyID, nonce: nonce)
        let shard = shards[Int(UInt(bitPattern: entry.hash) % UInt(shards.count))]
        try shard.record(entry, now: now, expiresAt: now.addingReportingOverflow(configuration.retentionSeconds).partialValue)
    }

    /// A (key id, nonce) pair with its hash computed once: the shard is chosen by it, and the
    /// shard's set (lookup, insert, every rehash as it grows) reuses it instead of hashing both
    /// strings again each time.
    struct Entry: Hashable {
        let keyID: String
        let nonce: String
        /// Seeded per process by `Hasher`, so a sender cannot aim nonces at one shard.
        let hash: Int

        init(keyID: String, nonce: String) {
            self.keyID = keyID
            self.nonce = nonce
            var hasher = Hasher()
            hasher.combine(keyID)
            hasher.combine(nonce)
            hash = hasher.finalize()
        }

        static func == (a: Entry, b: Entry) -> Bool { a.hash == b.hash && a.keyID == b.keyID && a.nonce == b.nonce }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    /// Live entries across all shards (for metrics and tests).
    public var count: Int { shards.reduce(0) { $0 + $1.count } }

    /// One lock's worth of nonces: a set for lookup and a queue in insertion order for eviction.
    /// Expiry is insertion time plus a constant, so the queue is ordered by expiry as long as the
    /// clock does not go back; if it does, entries are only kept longer, never dropped early.
    private final class Shard: @unchecked Sendable {
        private let lock = Lock()
        private let entriesMax: Int
        private var live: Set<Entry> = []
        private var queue: [(expiresAt: Int64, entry: Entry)] = []
        private var head = 0

        init(entriesMax: Int) { self.entriesMax = entriesMax }

        var count: Int { lock.withLock { live.count } }

        func record(_ entry: Entry, now: Int64, expiresAt: Int64) throws(SigningError) {
            let outcome: SigningError? = lock.withLock {
                evict(now: now)
                // A replay is reported as such even when full; below the bound, one insert both
                // checks and records.
                if live.count >= entriesMax { return live.contains(entry) ? .nonceReplayed : .replayGuardFull }
                guard live.insert(entry).inserted else { return .nonceReplayed }
                queue.append((expiresAt, entry))
                return nil
            }
            if let outcome { throw outcome }
        }

        private func evict(now: Int64) {
            // Strictly before: a nonce is still held in the second its retention ends, which is
            // the last second its message can pass a ±tolerance check.
            while head < queue.count, queue[head].expiresAt < now {
                live.remove(queue[head].entry)
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
