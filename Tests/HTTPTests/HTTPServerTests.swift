import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import HTTP

private func standardRoutes(_ router: inout Router) {
    router.onSync(.GET, "/healthz") { _, _ in .text("ok") }
    router.get("/slow/{milliseconds}") { _, context in
        let milliseconds = UInt64(context.parameters["milliseconds"] ?? "") ?? 0
        try await Task.sleep(nanoseconds: milliseconds * 1_000_000)
        return .text("slow \(milliseconds)")
    }
    router.onSync(.POST, "/echo") { request, context in
        Response(status: .ok, headers: ["X-Seen-Id": context.requestID], body: request.body)
    }
}

@Suite(.serialized) struct HTTPServerTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await offPool {
            let server = try startServer(routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            for index in 0..<3 {
                client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n\(index)")
                let responses = try client.responses(1)
                #expect(responses.first?.status == 200)
                #expect(responses.first?.bodyText == "\(index)")
                #expect(responses.first?.reusable == true)
            }
            #expect(!client.peerClosed)
        }
    }

    @Test func http10KeepAliveIsAnnouncedAndPlainHttp10Closes() async throws {
        try await offPool {
            let server = try startServer(routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            client.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(try client.responses(1).first?.headers["Connection"] == "keep-alive")
            client.send("GET /slow/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(try client.responses(1).first?.headers["Connection"] == "keep-alive")
            client.send("GET /healthz HTTP/1.0\r\n\r\n")
            #expect(try client.responses(1).first?.headers["Connection"] == "close")
            #expect(client.waitForClose(milliseconds: 2_000))
        }
    }

    @Test func pipelinedResponsesKeepRequestOrderAcrossAsyncAndSyncHandlers() async throws {
        try await offPool {
            let server = try startServer(routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            client.send(
                "GET /slow/150 HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "GET /slow/10 HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nlast")
            let responses = try client.responses(4)
            #expect(responses.map(\.bodyText) == ["slow 150", "ok", "slow 10", "last"])
            #expect(Set(responses.compactMap { $0.headers["X-Request-Id"] }).count == 4)
        }
    }

    @Test func expectContinueIsAnsweredBeforeTheBody() async throws {
        try await offPool {
            let server = try startServer(routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            client.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            var interim = ""
            let deadline = nowMilliseconds() + 2_000
            while !interim.contains("\r\n\r\n") && nowMilliseconds() < deadline {
                client.pump(milliseconds: 20)
                interim = String(decoding: client.peek(), as: UTF8.self)
            }
            #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n")
            client.send("body")
            let responses = try client.responses(1)
            #expect(responses.first?.status == 200)
            #expect(responses.first?.bodyText == "body")
        }
    }

    @Test func requestIDIsTakenWhenSaneAndGeneratedOtherwise() async throws {
        try await offPool {
            let server = try startServer(routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            client.send("POST /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: partner-req.1\r\nContent-Length: 0\r\n\r\n")
            client.send("POST /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad id\"\r\nContent-Length: 0\r\n\r\n")
            let responses = try client.responses(2)
            #expect(responses[0].headers["X-Request-Id"] == "partner-req.1")
            #expect(responses[0].headers["X-Seen-Id"] == "partner-req.1")
            let generated = try #require(responses[1].headers["X-Request-Id"])
            #expect(generated != "bad id\"" && RequestContext.isSaneRequestID(generated))
            // `<8 lowercase hex digits per loop>-<hex counter>`.
            let idBytes = Array(generated.utf8)
            let isHex = { (byte: UInt8) in (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) }
            #expect(idBytes.count >= 10 && idBytes.count <= 25 && idBytes[8] == 0x2D, "\(generated)")
            #expect(idBytes.prefix(8).allSatisfy(isHex) && idBytes.dropFirst(9).allSatisfy(isHex), "\(generated)")
            #expect(responses[1].headers["X-Seen-Id"] == generated)
        }
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\nHost: t\r\n\r\n", 400),
        ("GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413),
        ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        ("GET / HTTP/1.1\r\nHost: t\r\n" + String(repeating: "X-A: b\r\n", count: 101) + "\r\n", 431),
        ("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "b", count: 17000) + "\r\n\r\n", 431),
    ])
    func badRequestIsAnsweredWithItsStatusThenClosed(input: String, status: Int) async throws {
        try await offPool {
            let server = try startServer(routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            // A valid request first: the error must not disturb what came before it.
            client.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + input + "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            let responses = try client.responses(3)
            #expect(responses.map(\.status) == [200, status])
            #expect(responses.last?.headers["Connection"] == "close")
            #expect(responses.last?.bodyText.hasPrefix(#"{"error":{"code":""#) == true)
            #expect(client.waitForClose(milliseconds: 3_000))
        }
    }

    @Test func unknownRouteAndMethodAreJSONErrorsOnALiveConnection() async throws {
        try await offPool {
            let server = try startServer(routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            client.send("GET /nope HTTP/1.1\r\nHost: t\r\n\r\nDELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            let responses = try client.responses(2)
            #expect(responses.map(\.status) == [404, 405])
            let head = try client.responses(1, requestWasHead: true)
            #expect(head.first?.status == 200)
            #expect(head.first?.headers["Content-Length"] == "2")
            #expect(head.first?.body.isEmpty == true)
            #expect(!client.peerClosed)
        }
    }

    @Test func slowlorisIsClosedAfterTheHeaderTimeout() async throws {
        try await offPool {
            var configuration = testConfiguration()
            configuration.headerReadTimeoutMilliseconds = 200
            let server = try startServer(configuration, routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            let start = nowMilliseconds()
            client.send("GET /healthz HTTP/1.1\r\nHost: t\r\n")
            // One byte every 20 ms keeps the connection busy but never finishes the head.
            while !client.peerClosed && nowMilliseconds() - start < 3_000 {
                if !client.send("X") { break }
                client.pump(milliseconds: 20)
            }
            let elapsed = nowMilliseconds() - start
            #expect(client.waitForClose(milliseconds: 500))
            #expect(elapsed < 1_500, "closed after \(elapsed) ms")
            #expect(elapsed >= 150, "closed after \(elapsed) ms")
        }
    }

    @Test func aSilentNewConnectionGetsTheHeaderTimeoutNotTheIdleOne() async throws {
        try await offPool {
            var configuration = testConfiguration()
            configuration.headerReadTimeoutMilliseconds = 200
            configuration.idleTimeoutMilliseconds = 60_000
            let server = try startServer(configuration, routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            let start = nowMilliseconds()
            #expect(client.waitForClose(milliseconds: 3_000))
            let elapsed = nowMilliseconds() - start
            #expect(elapsed >= 150 && elapsed < 1_500, "closed after \(elapsed) ms")
        }
    }

    @Test func idleKeepAliveAndStalledBodyAreClosed() async throws {
        try await offPool {
            var configuration = testConfiguration()
            configuration.idleTimeoutMilliseconds = 150
            configuration.bodyReadTimeoutMilliseconds = 150
            let server = try startServer(configuration, routes: standardRoutes)
            defer { server.shutdown() }
            let idle = try RawClient(port: server.port)
            idle.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try idle.responses(1).first?.status == 200)
            #expect(idle.waitForClose(milliseconds: 2_000))
            let stalled = try RawClient(port: server.port)
            stalled.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            #expect(stalled.waitForClose(milliseconds: 2_000))
            #expect(try stalled.responses(1, milliseconds: 100).isEmpty)
        }
    }

    @Test func aHandlerThatNeverAnswersLosesItsConnection() async throws {
        try await offPool {
            var configuration = testConfiguration()
            configuration.handlerTimeoutMilliseconds = 200
            let server = try startServer(configuration, routes: standardRoutes)
            defer { server.shutdown(graceMilliseconds: 0) }
            let client = try RawClient(port: server.port)
            let start = nowMilliseconds()
            client.send("GET /slow/60000 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(client.waitForClose(milliseconds: 3_000))
            let elapsed = nowMilliseconds() - start
            #expect(elapsed >= 150 && elapsed < 1_500, "closed after \(elapsed) ms")
        }
    }

    @Test func aClientThatStopsReadingIsClosedAfterTheWriteTimeout() async throws {
        try await offPool {
            var configuration = testConfiguration()
            configuration.writeTimeoutMilliseconds = 200
            let big = [UInt8](repeating: 0x61, count: 32 * 1024 * 1024)
            let server = try startServer(configuration) { router in
                router.onSync(.GET, "/big") { _, _ in Response(body: big) }
            }
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            client.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            let start = nowMilliseconds()
            while server.connectionCount == 0 && nowMilliseconds() < start + 1_000 { usleep(1_000) }
            #expect(server.connectionCount == 1)
            // The client never reads: the socket buffers fill and the server's output stalls.
            while server.connectionCount > 0 && nowMilliseconds() < start + 3_000 { usleep(10_000) }
            let elapsed = nowMilliseconds() - start
            #expect(server.connectionCount == 0)
            #expect(elapsed >= 150 && elapsed < 2_000, "closed after \(elapsed) ms")
        }
    }

    /// Clients that pipeline requests and never read: what the server holds for them all stays
    /// near `outputBacklogBytesMax`, not `connections × writeBufferBytesMax`, and a client that
    /// reads its answers is still served meanwhile.
    @Test func slowReadersTogetherHoldNoMoreThanTheBacklogBudget() async throws {
        try await offPool {
            var configuration = testConfiguration()
            configuration.outputBacklogBytesMax = 256 * 1024
            let page = [UInt8](repeating: 0x62, count: 16 * 1024)
            let server = try startServer(configuration) { router in
                router.get("/page") { _, _ in Response(body: page) }
                router.onSync(.GET, "/healthz") { _, _ in Response.json(#"{"status":"ok"}"#) }
            }
            defer { server.shutdown() }
            let requests = String(repeating: "GET /page HTTP/1.1\r\nHost: t\r\n\r\n", count: 1_000)
            var clients: [RawClient] = []
            for _ in 0..<8 {
                let client = try RawClient(port: server.port)
                client.send(requests)
                clients.append(client)
            }
            // Let the server write what it will: the backlog stops moving once everyone is paused.
            var last = -1
            let start = nowMilliseconds()
            while nowMilliseconds() < start + 3_000 {
                usleep(200_000)
                let now = server.core.backloggedBytes.load(ordering: .relaxed)
                if now == last && now > 0 { break }
                last = now
            }
            let held = server.core.backloggedBytes.load(ordering: .relaxed)
            // Budget plus, per connection, what its pipelined requests (16, and one in hand) may produce.
            let bound = configuration.outputBacklogBytesMax + 8 * (configuration.pipelinedRequestsMax + 1) * (page.count + 256)
            #expect(held > 0 && held <= bound, "held \(held) bytes for 8 clients that do not read (bound \(bound))")
            let reader = try RawClient(port: server.port)
            reader.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try reader.responses(1).first?.status == 200, "a client that reads is not held back by the others")
            withExtendedLifetime(clients) {}
        }
    }

    @Test func connectionsBeyondTheLimitGet503() async throws {
        try await offPool {
            var configuration = testConfiguration()
            configuration.connectionsMax = 1
            configuration.eventLoopCount = 1
            let server = try startServer(configuration, routes: standardRoutes)
            defer { server.shutdown() }
            let first = try RawClient(port: server.port)
            first.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try first.responses(1).first?.status == 200)
            let second = try RawClient(port: server.port)
            let refused = try second.responses(1)
            #expect(refused.first?.status == 503)
            #expect(refused.first?.headers["Retry-After"] == "1")
            #expect(second.waitForClose(milliseconds: 2_000))
            #expect(server.connectionCount == 1)
        }
    }

    @Test func gracefulShutdownFinishesInFlightRequestThenStopsAccepting() async throws {
        let server = try startServer(routes: standardRoutes)
        let port = server.port
        let busy = try RawClient(port: port)
        let idle = try RawClient(port: port)
        idle.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try idle.responses(1).first?.status == 200)
        busy.send("GET /slow/300 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await Task.sleep(nanoseconds: 50_000_000)
        let start = nowMilliseconds()
        await shutdownAsync(server)
        let took = nowMilliseconds() - start
        let responses = try busy.responses(1)
        #expect(responses.first?.status == 200)
        #expect(responses.first?.bodyText == "slow 300")
        #expect(idle.waitForClose(milliseconds: 100))
        #expect(took < 2_000, "shutdown took \(took) ms")
        #expect(throws: RawClient.RawClientError.self) { _ = try RawClient(port: port) }
    }

    @Test func shutdownGraceBoundsAHandlerThatNeverFinishes() async throws {
        let server = try startServer(routes: standardRoutes)
        let client = try RawClient(port: server.port)
        client.send("GET /slow/60000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await Task.sleep(nanoseconds: 50_000_000)
        let start = nowMilliseconds()
        await shutdownAsync(server, graceMilliseconds: 200)
        let took = nowMilliseconds() - start
        #expect(took >= 150 && took < 1_500, "shutdown took \(took) ms")
        #expect(client.waitForClose(milliseconds: 500))
    }

    @Test func sigtermEndsRunUntilTerminatedAfterAGracefulShutdown() async throws {
        let server = try startServer(routes: standardRoutes)
        let port = server.port
        let returned = DispatchSemaphore(value: 0)
        // Ignored until the server's own handling is in place: a SIGTERM that arrives before
        // it (a loaded machine can delay the thread) must not end the test process.
        signal(SIGTERM, SIG_IGN)
        let thread = Thread {
            server.runUntilTerminated()
            returned.signal()
        }
        thread.start()
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(returned.wait(timeout: .now()) == .timedOut)
        var ended = false
        let start = nowMilliseconds()
        while !ended && nowMilliseconds() - start < 3_000 {
            // Repeated: one sent before the signal source was installed is lost.
            kill(getpid(), SIGTERM)
            ended = returned.wait(timeout: .now() + .milliseconds(100)) == .success
        }
        #expect(ended)
        #expect(throws: RawClient.RawClientError.self) { _ = try RawClient(port: port) }
    }

    @Test func observerSeesRoutePatternStatusAndDuration() async throws {
        try await offPool {
            let seen = Mutex<[RequestMetrics]>([])
            let server = try startServer(observer: { metrics in seen.withLock { $0.append(metrics) } }, routes: standardRoutes)
            defer { server.shutdown() }
            let client = try RawClient(port: server.port)
            client.send("GET /slow/20 HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.responses(2).count == 2)
            let metrics = seen.withLock { $0 }
            #expect(metrics.map(\.routePattern).sorted() == ["", "/slow/{milliseconds}"])
            let slow = try #require(metrics.first { $0.routePattern == "/slow/{milliseconds}" })
            #expect(slow.status == 200 && slow.method == .GET)
            #expect(slow.durationNanoseconds >= 20_000_000)
            #expect(metrics.first { $0.routePattern == "" }?.status == 404)
        }
    }

    @Test func invalidConfigurationNamesTheField() {
        var configuration = testConfiguration()
        configuration.headerReadTimeoutMilliseconds = 0
        let server = HTTPServer(configuration: configuration, responder: try! Router().freeze(), logger: silentLogger)
        #expect(throws: HTTPServerError.invalidConfiguration(field: "headerReadTimeoutMilliseconds", reason: "must be positive")) {
            try server.start()
        }
    }
}

/// Async handlers run on their connection's event loop: the handler starts there and, after a
/// suspension resumed from a foreign thread, continues there — no hop through the global pool.
@Suite struct LoopExecutorTests {
    @Test func asyncHandlerStartsAndResumesOnItsEventLoopThread() async throws {
        // A sync route runs inline on the loop, so it tells which thread the connection's loop is.
        let loopThread = Mutex<UInt>(0)
        let seen = Mutex<[(UInt, UInt)]>([])
        let server = try startServer { router in
            router.onSync(.GET, "/where") { _, _ in
                loopThread.withLock { $0 = UInt(pthread_self()) }
                return .text("ok")
            }
            router.get("/hop") { _, _ in
                let before = currentThread()
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    Thread.detachNewThread { continuation.resume() }
                }
                let after = currentThread()
                seen.withLock { $0.append((before, after)) }
                return .text("ok")
            }
        }
        try await offPool {
            let client = try RawClient(port: server.port)
            client.send("GET /where HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.responses(1).first?.status == 200)
            for _ in 0..<5 {
                client.send("GET /hop HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try client.responses(1).first?.status == 200)
            }
        }
        await shutdownAsync(server)
        let loop = loopThread.withLock { $0 }
        let pairs = seen.withLock { $0 }
        #expect(loop != 0)
        #expect(pairs.count == 5)
        for (before, after) in pairs {
            #expect(before == loop, "the handler started off its loop thread")
            #expect(after == loop, "the handler resumed off its loop thread")
        }
    }
}

/// The loop's job queue: what other threads, the loop itself and tasks preferring the loop
/// queue all runs, once each, on the loop thread, in the order each thread queued it.
@Suite struct EventLoopJobTests {
    @Test func jobsFromManyThreadsRunOnceInOrderOnTheLoopThread() async throws {
        let server = try startServer { router in
            router.onSync(.GET, "/healthz") { _, _ in .text("ok") }
        }
        let loop = try #require(server.loops.first)
        let threadsCount = 4
        let jobsPerThread = 5_000
        // Per submitting thread: the indices in the order they ran; plus follow-ups the jobs
        // queued from the loop itself, and any job seen off the loop thread.
        let ran = Mutex<[[Int]]>(Array(repeating: [], count: threadsCount))
        let followUps = Atomic<Int>(0)
        let offLoop = Atomic<Int>(0)
        let group = DispatchGroup()
        for thread in 0..<threadsCount {
            group.enter()
            Thread.detachNewThread {
                for index in 0..<jobsPerThread {
                    loop.execute {
                        if !loop.isCurrentThread { offLoop.add(1, ordering: .relaxed) }
                        ran.withLock { $0[thread].append(index) }
                        if index % 10 == 0 {
                            loop.execute { followUps.add(1, ordering: .relaxed) }
                        }
                    }
                }
                group.leave()
            }
        }
        // Tasks on the loop resumed from other threads: their jobs take the same queue.
        let resumed = try await withThrowingTaskGroup(of: Bool.self) { tasks in
            for _ in 0..<200 {
                tasks.addTask(executorPreference: loop) {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        Thread.detachNewThread { continuation.resume() }
                    }
                    return loop.isCurrentThread
                }
            }
            var onLoop = 0
            for try await wasOnLoop in tasks where wasOnLoop { onLoop += 1 }
            return onLoop
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { continuation.resume() }
        }
        // The last job of all: once it ran, everything queued before it (and its follow-ups) has.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            loop.execute { loop.execute { continuation.resume() } }
        }
        await shutdownAsync(server)
        #expect(resumed == 200)
        #expect(offLoop.load(ordering: .relaxed) == 0)
        #expect(followUps.load(ordering: .relaxed) == threadsCount * jobsPerThread / 10)
        for (thread, indices) in ran.withLock({ $0 }).enumerated() {
            #expect(indices == Array(0..<jobsPerThread), "thread \(thread)'s jobs ran out of order or not once each")
        }
    }

    @Test func loopThreadsAreNamed() async throws {
        let server = try startServer { router in
            router.onSync(.GET, "/healthz") { _, _ in .text("ok") }
        }
        // A job run by each loop: its thread has named itself by then (before running the loop).
        for loop in server.loops {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                loop.execute { continuation.resume() }
            }
        }
        // Linux keeps each thread's name in /proc; the loops run until shutdown.
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        await shutdownAsync(server)
        // Other suites may run servers at the same time: at least this server's two loops.
        #expect(names.contains("http-loop-0"))
        #expect(names.contains("http-loop-1"))
    }
}

/// The calling thread (a synchronous function, so async code may ask).
private func currentThread() -> UInt { UInt(pthread_self()) }

/// The buffered standard-error sink's writer: lines come out whole and in order, and a flood
/// beyond its bound is dropped and counted rather than held.
@Suite struct BufferedLogWriterTests {
    @Test func linesComeOutInOrderAndOverflowIsCounted() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let writer = BufferedLogWriter(fd: fds[1], flushesInBackground: false)
        let reader = Thread.detachNewThreadAndCollect(fd: fds[0])
        for i in 0..<1_000 { writer.append("line \(i)") }
        writer.flush()
        let big = String(repeating: "x", count: 1_024 * 1_024)
        for _ in 0..<6 { writer.append(big) }  // 3 fit in 4 MiB with their newlines; 3 are dropped
        writer.flush()
        close(fds[1])
        let text = reader.wait()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(Array(lines.prefix(1_000)) == (0..<1_000).map { "line \($0)" })
        let kept = lines.filter { $0 == big }.count
        #expect(kept == 3)
        #expect(lines.contains { $0.contains("log lines dropped") && $0.contains("\"dropped\":\"3\"") })
    }
}

private final class PipeCollector: @unchecked Sendable {
    // @unchecked: `bytes` is written by the reading thread before `done` signals, read after.
    var bytes: [UInt8] = []
    let done = DispatchSemaphore(value: 0)
    func wait() -> String {
        done.wait()
        return String(decoding: bytes, as: UTF8.self)
    }
}

private extension Thread {
    static func detachNewThreadAndCollect(fd: Int32) -> PipeCollector {
        let collector = PipeCollector()
        Thread.detachNewThread {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { break }
                collector.bytes.append(contentsOf: chunk[0..<n])
            }
            collector.done.signal()
        }
        return collector
    }
}
