import CPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One epoll loop on its own thread, owning a `SO_REUSEPORT` listener and the connections it
/// accepted. Everything but `execute` and `beginShutdown` runs on the loop thread.
///
/// `@unchecked Sendable`: other threads only call `execute` (a locked queue plus an eventfd
/// wake-up); every other member is touched by the loop thread alone.
final class EventLoop: @unchecked Sendable {
    private static let listenerTag = UInt64.max
    private static let wakeTag = UInt64.max - 1
    private static let eventsMax: Int32 = 256
    private static let acceptsPerWakeMax = 128
    private static let readBufferBytes = 64 * 1024

    let core: ServerCore
    private let epollFD: Int32
    private let wakeFD: Int32
    private var listenerFD: Int32
    /// Jobs from other threads, and whether the loop has ended (then nothing more is taken, and
    /// the eventfd, closed, is never written again).
    private let jobs = Mutex<(pending: [LoopJob], closed: Bool)>(([], false))
    /// What `runJobs` took from `jobs`: swapped with the empty `pending` under the lock, so
    /// neither array is reallocated per wake-up and the lock is held for a swap only.
    private var takenJobs: [LoopJob] = []
    private var connections: [HTTPConnection?] = []
    private var liveConnectionCount = 0
    private var nextConnectionID: UInt64 = 1
    private var requestCounter: UInt64 = 0
    /// Written as 8 lowercase hex digits at the start of every request ID.
    private let requestIDPrefix: UInt32
    let readBuffer: UnsafeMutableRawBufferPointer
    private(set) var isStopping = false
    private var stopDeadlineNanoseconds: UInt64 = 0
    private var listenerPaused = false
    private(set) var nowNanoseconds: UInt64 = MonotonicClock.nanoseconds()

    init(core: ServerCore, listenerFD: Int32) throws(HTTPServerError) {
        self.core = core
        self.listenerFD = listenerFD
        epollFD = CPosix_epoll_create()
        guard epollFD >= 0 else { throw .system(call: "epoll_create1", errno: errno) }
        wakeFD = CPosix_eventfd(0)
        guard wakeFD >= 0 else {
            let code = errno
            Glibc.close(epollFD)
            throw .system(call: "eventfd", errno: code)
        }
        readBuffer = .allocate(byteCount: Self.readBufferBytes, alignment: 16)
        var generator = SystemRandomNumberGenerator()
        requestIDPrefix = UInt32.random(in: 0...UInt32.max, using: &generator)
        if CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_ADD, wakeFD, CPosix_EPOLLIN, Self.wakeTag) != 0
            || CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_ADD, listenerFD, CPosix_EPOLLIN, Self.listenerTag) != 0
        {
            let code = errno
            Glibc.close(epollFD)
            Glibc.close(wakeFD)
            readBuffer.deallocate()
            throw .system(call: "epoll_ctl", errno: code)
        }
    }

    /// Jobs queued by the loop thread itself: no lock and no wake-up, run before the next wait.
    private var localJobs: [LoopJob] = []
    /// The round of local jobs being run (double-buffered with `localJobs`, as `takenJobs`).
    private var runningLocalJobs: [LoopJob] = []
    /// The loop thread's id, set when `run` starts (0 before); read from any thread.
    private let loopThread = Atomic<UInt>(0)

    /// Runs `job` on the loop thread soon. Safe from any thread. From the loop thread it costs
    /// an append; from another, a locked append and — only when the queue was empty, so the
    /// loop may be asleep — one eventfd write, however many jobs follow before the loop wakes.
    /// False, and the job dropped, once the loop has ended.
    @discardableResult
    func execute(_ job: @escaping @Sendable () -> Void) -> Bool {
        submit(.closure(job))
    }

    /// Whether the caller runs on this loop's thread (so it may touch the loop's state).
    var isCurrentThread: Bool {
        // Relaxed suffices: only the loop thread itself can see its own id here.
        let loop = loopThread.load(ordering: .relaxed)
        return loop != 0 && loop == UInt(pthread_self())
    }

    private func submit(_ job: LoopJob) -> Bool {
        if isCurrentThread {
            localJobs.append(job)
            return true
        }
        return jobs.withLock { state in
            guard !state.closed else { return false }
            let wasEmpty = state.pending.isEmpty
            state.pending.append(job)
            // Under the lock, so the loop cannot have closed the eventfd meanwhile.
            if wasEmpty { _ = CPosix_eventfd_signal(wakeFD) }
            return true
        }
    }

    /// Stop accepting, close idle connections, let in-flight requests finish until the deadline.
    func beginShutdown(graceMilliseconds: Int) {
        execute { [self] in
            guard !isStopping else { return }
            isStopping = true
            stopDeadlineNanoseconds = nowNanoseconds + UInt64(graceMilliseconds) * 1_000_000
            closeListener()
            for connection in connections.compactMap({ $0 }) { connection.beginShutdown() }
        }
    }

    /// The loop body; returns once stopped and every connection is closed.
    func run() {
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: Int(Self.eventsMax))
        let datas = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(Self.eventsMax))
        defer {
            events.deallocate()
            datas.deallocate()
        }
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        let tickNanoseconds = UInt64(core.configuration.tickMilliseconds) * 1_000_000
        var nextTick = MonotonicClock.nanoseconds() + tickNanoseconds
        while true {
            // Local jobs waiting: look for events without sleeping, then run them.
            let timeout = localJobs.isEmpty ? Int32(core.configuration.tickMilliseconds) : 0
            let count = CPosix_epoll_wait_split(epollFD, events, datas, Self.eventsMax, timeout)
            nowNanoseconds = MonotonicClock.nanoseconds()
            if count < 0 && errno != EINTR {
                core.logger.critical("epoll_wait failed", metadata: ["errno": "\(errno)"])
                break
            }
            for index in 0..<Int(max(0, count)) {
                switch datas[index] {
                case Self.listenerTag: acceptConnections()
                case Self.wakeTag: runJobs()
                default:
                    let fd = Int(truncatingIfNeeded: datas[index])
                    if fd < connections.count, let connection = connections[fd] {
                        connection.handle(events: events[index])
                    }
                }
            }
            runLocalJobs()
            if nowNanoseconds >= nextTick {
                nextTick = nowNanoseconds + tickNanoseconds
                expireDeadlines()
            }
            if isStopping && (liveConnectionCount == 0 || nowNanoseconds >= stopDeadlineNanoseconds) { break }
        }
        for connection in connections.compactMap({ $0 }) { connection.close() }
        // From here task jobs go to the global executor; what is queued already runs now
        // (async completions for closed connections do nothing). The thread id is cleared
        // first: a thread that later gets the same id must not take the lock-free path.
        runLocalJobs(roundsMax: 1_000)
        loopThread.store(0, ordering: .relaxed)
        let remaining = jobs.withLock { state in
            state.closed = true
            let taken = state.pending
            state.pending.removeAll()
            return taken
        }
        for job in remaining { job.run(on: self) }
        closeListener()
        Glibc.close(epollFD)
        Glibc.close(wakeFD)
        readBuffer.deallocate()
    }

    private func runJobs() {
        _ = CPosix_eventfd_drain(wakeFD)
        var taken = takenJobs
        takenJobs = []
        jobs.withLock { state in swap(&state.pending, &taken) }
        for job in taken { job.run(on: self) }
        taken.removeAll(keepingCapacity: true)
        takenJobs = taken
    }

    /// Runs what the loop queued for itself, including what those jobs queue in turn (bounded
    /// by rounds so a job that keeps requeueing cannot starve the sockets).
    private func runLocalJobs(roundsMax: Int = 16) {
        var rounds = 0
        while !localJobs.isEmpty && rounds < roundsMax {
            swap(&localJobs, &runningLocalJobs)
            for job in runningLocalJobs { job.run(on: self) }
            runningLocalJobs.removeAll(keepingCapacity: true)
            rounds += 1
        }
    }

    private func closeListener() {
        guard listenerFD >= 0 else { return }
        _ = CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_DEL, listenerFD, 0, 0)
        Glibc.close(listenerFD)
        listenerFD = -1
    }

    private func acceptConnections() {
        for _ in 0..<Self.acceptsPerWakeMax {
            let fd = CPosix_accept4(listenerFD, nil, nil)
            if fd < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Level-triggered: stop listening until the next tick or accept would spin.
                    core.logger.error("accept failed: out of resources", metadata: ["errno": "\(errno)"])
                    pauseListener()
                    return
                default:
                    core.logger.error("accept failed", metadata: ["errno": "\(errno)"])
                    return
                }
            }
            admit(fd)
        }
    }

    private func admit(_ fd: Int32) {
        if core.connectionCount.add(1, ordering: .relaxed).newValue > core.connectionsMax {
            core.connectionCount.subtract(1, ordering: .relaxed)
            if core.transportFactory.isPlaintext { Self.writeOverloaded(fd) }
            Glibc.close(fd)
            return
        }
        _ = CPosix_set_nodelay(fd)
        let transport: any HTTPTransport
        do {
            transport = try core.transportFactory.serverTransport(acceptedSocket: fd)
        } catch {
            core.connectionCount.subtract(1, ordering: .relaxed)
            Glibc.close(fd)
            return
        }
        var address = [CChar](repeating: 0, count: 16)
        let remote = CPosix_peer_ipv4(fd, &address, 16) == 0
            ? String(decoding: address.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
        let connection = HTTPConnection(loop: self, id: nextConnectionID, transport: transport, remoteAddress: remote)
        nextConnectionID += 1
        if CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_ADD, fd, CPosix_EPOLLIN, UInt64(fd)) != 0 {
            core.connectionCount.subtract(1, ordering: .relaxed)
            transport.close()
            return
        }
        let index = Int(fd)
        if index >= connections.count {
            connections.append(contentsOf: repeatElement(nil, count: index + 1 - connections.count + 64))
        }
        connections[index] = connection
        liveConnectionCount += 1
        if isStopping { connection.beginShutdown() }
    }

    private static let overloadedResponse: [UInt8] = {
        var bytes: [UInt8] = []
        HTTPError.overloaded.response.serialize(into: &bytes, requestID: nil, close: true)
        return bytes
    }()

    private static func writeOverloaded(_ fd: Int32) {
        _ = overloadedResponse.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private func pauseListener() {
        guard listenerFD >= 0, !listenerPaused else { return }
        _ = CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_DEL, listenerFD, 0, 0)
        listenerPaused = true
    }

    private func expireDeadlines() {
        if listenerPaused && listenerFD >= 0 && !isStopping {
            listenerPaused = CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_ADD, listenerFD, CPosix_EPOLLIN, Self.listenerTag) != 0
        }
        for case let connection? in connections { connection.expireDeadlines(now: nowNanoseconds) }
    }

    // MARK: Called by connections

    func setInterest(_ fd: Int32, _ events: UInt32) {
        _ = CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_MOD, fd, events, UInt64(fd))
    }

    func removeConnection(_ fd: Int32) {
        _ = CPosix_epoll_ctl(epollFD, CPosix_EPOLL_CTL_DEL, fd, 0, 0)
        connections[Int(fd)] = nil
        liveConnectionCount -= 1
        core.connectionCount.subtract(1, ordering: .relaxed)
    }

    /// Finds the connection an async handler answered, if it is still the same one.
    func connection(fd: Int32, id: UInt64) -> HTTPConnection? {
        let index = Int(fd)
        guard index < connections.count, let connection = connections[index], connection.id == id else { return nil }
        return connection
    }

    /// `<8 hex digits random per loop>-<hex counter>`: unique per process run, and short
    /// enough (up to 2^24 requests per loop) to be a small string that needs no allocation.
    func makeRequestID() -> String {
        requestCounter &+= 1
        let counter = requestCounter
        var digits = 1
        while digits < 16 && counter >> (4 * UInt64(digits)) != 0 { digits += 1 }
        let prefix = UInt64(requestIDPrefix)
        return String(unsafeUninitializedCapacity: 9 + digits) { buffer in
            for position in 0..<8 { buffer[position] = Self.hexDigit(prefix >> (4 * UInt64(7 - position))) }
            buffer[8] = 0x2D
            for position in 0..<digits {
                buffer[9 + position] = Self.hexDigit(counter >> (4 * UInt64(digits - 1 - position)))
            }
            return 9 + digits
        }
    }

    /// The lowercase hex digit of the low nibble of `value`.
    @inline(__always)
    private static func hexDigit(_ value: UInt64) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value) & 0xF
        return nibble < 10 ? 0x30 + nibble : 0x57 + nibble
    }
}

/// Tasks that prefer the loop (`Task(executorPreference: loop)`) run their jobs on the loop
/// thread: a request's handler, and its continuation when the store answers, need no hop to
/// the global pool and back.
extension EventLoop: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        if !submit(.task(unowned)) {
            // The loop has ended: the task goes on in the global pool.
            globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
        }
    }
}

/// Work queued on a loop. A task's job is kept as it is: wrapping it in a closure would cost
/// an allocation for every resumption of every request's task.
enum LoopJob: Sendable {
    case closure(@Sendable () -> Void)
    case task(UnownedJob)

    func run(on loop: EventLoop) {
        switch self {
        case let .closure(body): body()
        case let .task(job): job.runSynchronously(on: loop.asUnownedTaskExecutor())
        }
    }
}
