import Foundation

/// Dedicated threads for the client's blocking exchanges (connect, send, `poll()`-bounded
/// reads). Blocking a libdispatch worker instead would take a thread from the pool Swift's async
/// tasks run on, and under load the server's handlers would wait for a thread. Threads start on
/// demand up to `threadsMax`; jobs beyond that queue (each exchange still ends by its deadline).
final class ExchangeThreads: @unchecked Sendable {
    // @unchecked: every field is read and written under `condition`.
    private let condition = NSCondition()
    private var jobs: [(@Sendable () -> Void)?] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private var stopping = false
    private let threadsMax: Int
    private let name: String

    init(threadsMax: Int, name: String) {
        self.threadsMax = max(1, threadsMax)
        self.name = name
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        let startThread = idle == 0 && threads < threadsMax
        if startThread { threads += 1 }
        condition.signal()
        condition.unlock()
        if startThread {
            let thread = Thread { [self] in run() }
            thread.name = name
            thread.start()
        }
    }

    /// Lets queued jobs finish, then ends the threads.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        condition.lock()
        while true {
            while head == jobs.count && !stopping {
                idle += 1
                condition.wait()
                idle -= 1
            }
            if head == jobs.count {  // stopping and nothing left
                threads -= 1
                condition.unlock()
                return
            }
            let job = jobs[head]
            jobs[head] = nil  // what a job captured is released as soon as it has run
            head += 1
            if head == jobs.count || (head > 1_024 && head * 2 > jobs.count) {  // compact now and then
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job?()
            condition.lock()
        }
    }
}
