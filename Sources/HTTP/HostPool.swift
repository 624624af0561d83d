import Synchronization

/// Connection slots and idle connections for one host:port. A slot is held for a whole
/// exchange; `connectionsPerHostMax` slots bound the concurrency, and waiters are served in order.
final class HostPool: Sendable {
    typealias Lease = Result<ClientConnection?, HTTPClientError>

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Lease, Never>
    }

    private struct State {
        var inUse = 0
        var idle: [ClientConnection] = []
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        /// Set by `closeIdle()` at shutdown: connections released afterwards are closed, not pooled.
        var closed = false
    }

    private let configuration: HTTPClient.Configuration
    private let state = Mutex(State())

    init(configuration: HTTPClient.Configuration) {
        self.configuration = configuration
    }

    deinit {
        // Every connection has one owner that closes it; a pool going away closes what it holds.
        let idle = state.withLock { $0.idle }
        for connection in idle { connection.close() }
    }

    /// A slot and, when one is pooled and fresh, an idle connection (`nil`: connect a new one).
    func acquire(deadline: UInt64) async -> Lease {
        let immediate: Lease? = state.withLock { state in
            guard state.inUse < configuration.connectionsPerHostMax else { return nil }
            state.inUse += 1
            return .success(takeIdle(&state))
        }
        if let immediate { return immediate }
        return await withCheckedContinuation { continuation in
            let waiterID: UInt64? = state.withLock { state in
                if state.inUse < configuration.connectionsPerHostMax {
                    state.inUse += 1
                    continuation.resume(returning: .success(takeIdle(&state)))
                    return nil
                }
                guard state.waiters.count < configuration.waitersPerHostMax else {
                    continuation.resume(returning: .failure(.timeout))
                    return nil
                }
                state.nextWaiterID += 1
                state.waiters.append(Waiter(id: state.nextWaiterID, continuation: continuation))
                return state.nextWaiterID
            }
            guard let waiterID else { return }
            let now = MonotonicClock.nanoseconds()
            let wait = deadline > now ? deadline - now : 0
            Task { [self] in
                try? await Task.sleep(nanoseconds: wait)
                let expired = state.withLock { state -> Waiter? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                    return state.waiters.remove(at: index)
                }
                expired?.continuation.resume(returning: .failure(.timeout))
            }
        }
    }

    /// Ends an exchange: its connection (if reusable) goes to the next waiter or the idle list.
    func release(_ connection: ClientConnection?) {
        let handOff: (Waiter, ClientConnection?)? = state.withLock { state in
            if !state.waiters.isEmpty {
                return (state.waiters.removeFirst(), connection)
            }
            state.inUse -= 1
            if let connection {
                if !state.closed && state.idle.count < configuration.idleConnectionsPerHostMax {
                    state.idle.append(connection)
                } else {
                    connection.close()
                }
            }
            return nil
        }
        if let (waiter, connection) = handOff { waiter.continuation.resume(returning: .success(connection)) }
    }

    func closeIdle() {
        let idle = state.withLock { state in
            let idle = state.idle
            state.idle.removeAll()
            state.closed = true
            return idle
        }
        for connection in idle { connection.close() }
    }

    /// The most recently used idle connection that has not idled out; older ones are closed.
    private func takeIdle(_ state: inout State) -> ClientConnection? {
        let now = MonotonicClock.nanoseconds()
        let idleLimit = UInt64(configuration.idleTimeoutMilliseconds) * 1_000_000
        while let connection = state.idle.popLast() {
            if now - connection.lastUsedNanoseconds < idleLimit { return connection }
            connection.close()
        }
        return nil
    }
}
