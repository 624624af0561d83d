import Synchronization

/// One partner's circuit breaker. Closed: calls pass and outcomes fill a sliding window; when
/// the window holds at least `requestsMin` outcomes and the failure rate reaches
/// `failureRatePercentOpen`, it opens. Open: calls are refused until `openSeconds` pass. Then
/// half-open: exactly one probe passes; its success closes the circuit (window cleared), its
/// failure opens it again. Time is the gateway's clock (unix seconds), so tests drive it.
public final class CircuitBreaker: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Outcomes remembered.
        public var windowRequests = 20
        /// Outcomes needed before the rate can open the circuit.
        public var requestsMin = 10
        public var failureRatePercentOpen = 50
        public var openSeconds: Int64 = 30

        public init() {}
    }

    public enum State: String, Sendable, Hashable {
        case closed, open, halfOpen = "half_open"
    }

    /// Whether a call may go now.
    public enum Permit: Sendable, Hashable {
        case allowed
        /// Refused; try again at this time (unix seconds).
        case refused(retryAt: Int64)
    }

    struct Inner {
        var state = State.closed
        var outcomes: [Bool] = []  // ring buffer, true = failure
        var next = 0
        var openedAt: Int64 = 0
        var probeInFlight = false
    }

    public let configuration: Configuration
    private let inner = Mutex(Inner())

    public init(configuration: Configuration = Configuration()) {
        precondition(configuration.windowRequests > 0 && configuration.requestsMin > 0 && configuration.requestsMin <= configuration.windowRequests,
                     "breaker window and minimum must be positive, minimum within the window")
        self.configuration = configuration
    }

    public var state: State { inner.withLock { $0.state } }

    public func permit(now: Int64) -> Permit {
        let c = configuration
        return inner.withLock { s in
            switch s.state {
            case .closed:
                return .allowed
            case .open:
                guard now >= s.openedAt + c.openSeconds else { return .refused(retryAt: s.openedAt + c.openSeconds) }
                s.state = .halfOpen
                s.probeInFlight = true
                return .allowed
            case .halfOpen:
                if s.probeInFlight { return .refused(retryAt: now + 1) }
                s.probeInFlight = true
                return .allowed
            }
        }
    }

    /// Records the outcome of a call that was allowed.
    public func record(success: Bool, now: Int64) {
        let c = configuration
        inner.withLock { s in
            switch s.state {
            case .halfOpen:
                s.probeInFlight = false
                if success {
                    s.state = .closed
                    s.outcomes.removeAll(keepingCapacity: true)
                    s.next = 0
                } else {
                    s.state = .open
                    s.openedAt = now
                }
            case .open:
                break  // a call allowed before the circuit opened finished late: nothing to learn
            case .closed:
                if s.outcomes.count < c.windowRequests {
                    s.outcomes.append(!success)
                } else {
                    s.outcomes[s.next] = !success
                    s.next = (s.next + 1) % c.windowRequests
                }
                let failures = s.outcomes.reduce(0) { $0 + ($1 ? 1 : 0) }
                if s.outcomes.count >= c.requestsMin, failures * 100 >= c.failureRatePercentOpen * s.outcomes.count {
                    s.state = .open
                    s.openedAt = now
                    s.outcomes.removeAll(keepingCapacity: true)
                    s.next = 0
                }
            }
        }
    }
}
