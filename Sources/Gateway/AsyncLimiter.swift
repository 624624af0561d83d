import Synchronization

/// At most `limit` holders at once; further callers wait (in order) without blocking a thread.
///
/// The dispatcher and the simulator bound their outbound calls with it: a named limit on
/// concurrent exchanges, so a burst of due messages queues here instead of in the client.
public final class AsyncLimiter: Sendable {
    struct State {
        var inUse = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var head = 0
    }

    public let limit: Int
    private let state = Mutex(State())

    public init(limit: Int) {
        precondition(limit > 0, "limit must be positive")
        self.limit = limit
    }

    public func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.inUse < limit {
                    s.inUse += 1
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }

    /// Hands the slot to the longest waiter, or frees it.
    public func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.head < s.waiters.count else {
                s.inUse -= 1
                s.waiters.removeAll(keepingCapacity: true)
                s.head = 0
                return nil
            }
            let c = s.waiters[s.head]
            s.head += 1
            return c
        }
        next?.resume()
    }

    public func withSlot<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }
}
