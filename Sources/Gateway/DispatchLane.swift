import Storage
import Synchronization

/// One destination's queue of claimed messages, worked by at most `concurrencyMax` tasks.
final class DispatchLane: Sendable {
    struct State {
        var queue: [OutboxMessage] = []
        var head = 0
        var running = 0
    }

    let concurrencyMax: Int
    let state = Mutex(State())

    init(concurrencyMax: Int) { self.concurrencyMax = max(1, concurrencyMax) }

    func submit(_ m: OutboxMessage, _ work: @escaping @Sendable (OutboxMessage) async -> Void) {
        let startWorker = state.withLock { s -> Bool in
            s.queue.append(m)
            guard s.running < concurrencyMax else { return false }
            s.running += 1
            return true
        }
        guard startWorker else { return }
        Task { [self] in
            while let next = take() { await work(next) }
        }
    }

    /// The next message, or nil after the worker has been counted out (atomically, so a message
    /// submitted meanwhile starts a new worker).
    private func take() -> OutboxMessage? {
        state.withLock { s in
            guard s.head < s.queue.count else {
                s.queue.removeAll(keepingCapacity: true)
                s.head = 0
                s.running -= 1
                return nil
            }
            let m = s.queue[s.head]
            s.head += 1
            if s.head >= 1_024 {
                s.queue.removeFirst(s.head)
                s.head = 0
            }
            return m
        }
    }
}
