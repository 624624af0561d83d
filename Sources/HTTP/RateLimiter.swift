import Synchronization

/// A token bucket per caller: each caller id (a partner id, `platform`, ...) gets `burst`
/// requests at once and `ratePerSecond` more each second.
///
/// The handler or middleware supplies the caller id after authenticating it, then calls
/// `check(callerID:)`, which throws a 429 `HTTPError` with `Retry-After` when the bucket is
/// empty. Buckets are bounded by `callersMax`; when full, idle (refilled) buckets are dropped
/// and, failing that, new callers are refused (fail closed).
public final class RateLimiter: Sendable {
    public struct Policy: Sendable, Equatable {
        public var ratePerSecond: Int
        public var burst: Int

        public init(ratePerSecond: Int, burst: Int) {
            precondition(ratePerSecond > 0 && burst > 0, "rate and burst must be positive")
            self.ratePerSecond = ratePerSecond
            self.burst = burst
        }
    }

    public enum Decision: Sendable, Equatable {
        case allowed
        case limited(retryAfterSeconds: Int)
    }

    private struct Bucket {
        /// Tokens scaled by 10^9, so refills by elapsed nanoseconds stay exact integers.
        var scaledTokens: Int64
        var updatedNanoseconds: UInt64
        /// The caller's policy, looked up once when its bucket is made.
        let policy: Policy
    }

    private static let scale: Int64 = 1_000_000_000
    private let defaultPolicy: Policy
    private let policies: [String: Policy]
    private let callersMax: Int
    private let clock: @Sendable () -> UInt64
    private let buckets = Mutex<[String: Bucket]>([:])

    /// - Parameters:
    ///   - defaultPolicy: for callers without their own policy.
    ///   - policies: per caller id.
    ///   - callersMax: buckets kept at most.
    ///   - clock: monotonic nanoseconds (tests pass a fake).
    public init(
        defaultPolicy: Policy, policies: [String: Policy] = [:], callersMax: Int = 10_000,
        clock: (@Sendable () -> UInt64)? = nil
    ) {
        self.defaultPolicy = defaultPolicy
        self.policies = policies
        self.callersMax = callersMax
        self.clock = clock ?? { MonotonicClock.nanoseconds() }
    }

    public func acquire(callerID: String) -> Decision {
        let now = clock()
        return buckets.withLock { buckets in
            // A known caller's bucket is found and updated in place: one hash per request.
            if let index = buckets.index(forKey: callerID) {
                return Self.take(&buckets.values[index], now: now)
            }
            if buckets.count >= callersMax {
                evictIdle(&buckets, now: now)
                if buckets.count >= callersMax { return .limited(retryAfterSeconds: 1) }
            }
            let policy = policies[callerID] ?? defaultPolicy
            var bucket = Bucket(scaledTokens: Int64(policy.burst) * Self.scale, updatedNanoseconds: now, policy: policy)
            let decision = Self.take(&bucket, now: now)
            buckets[callerID] = bucket
            return decision
        }
    }

    /// Refills `bucket` to `now`, then takes a token if there is one.
    private static func take(_ bucket: inout Bucket, now: UInt64) -> Decision {
        refill(&bucket, now: now)
        if bucket.scaledTokens >= scale {
            bucket.scaledTokens -= scale
            return .allowed
        }
        let missing = scale - bucket.scaledTokens
        let perSecond = Int64(bucket.policy.ratePerSecond) * scale
        let seconds = (missing + perSecond - 1) / perSecond
        return .limited(retryAfterSeconds: max(1, Int(seconds)))
    }

    /// Throws 429 `rate_limited` with `Retry-After` when `callerID` is over its rate.
    public func check(callerID: String) throws(HTTPError) {
        if case let .limited(seconds) = acquire(callerID: callerID) {
            throw HTTPError(
                .tooManyRequests, code: "rate_limited", message: "too many requests; retry later",
                headers: ["Retry-After": String(seconds)])
        }
    }

    private static func refill(_ bucket: inout Bucket, now: UInt64) {
        let policy = bucket.policy
        let capacity = Int64(policy.burst) * Self.scale
        let elapsed = now > bucket.updatedNanoseconds ? now - bucket.updatedNanoseconds : 0
        // Cap the elapsed time first so the product cannot overflow.
        let fullAfterNanoseconds = UInt64(capacity / Int64(policy.ratePerSecond)) + 1
        let added = Int64(min(elapsed, fullAfterNanoseconds)) * Int64(policy.ratePerSecond)
        bucket.scaledTokens = min(capacity, bucket.scaledTokens + added)
        bucket.updatedNanoseconds = now
    }

    private func evictIdle(_ buckets: inout [String: Bucket], now: UInt64) {
        for (caller, var bucket) in buckets {
            Self.refill(&bucket, now: now)
            if bucket.scaledTokens >= Int64(bucket.policy.burst) * Self.scale { buckets[caller] = nil }
        }
    }
}
