import CPosix
import Dispatch
import Foundation
import Synchronization

/// An HTTP/1.1 server: one epoll event loop thread per core, each with its own `SO_REUSEPORT`
/// listener, keep-alive and pipelining (responses in request order), `Content-Length` bodies
/// only (see `HTTPRequestParser` for why chunked bodies get 411), a named limit on everything
/// (`Configuration`) and graceful shutdown.
///
/// ```swift
/// var router = Router()
/// router.onSync(.GET, "/healthz") { _, _ in .text("ok") }
/// router.post("/v1/loans") { request, context in ... }
/// let server = HTTPServer(configuration: configuration, responder: try router.freeze(), logger: logger)
/// try server.start()
/// server.runUntilTerminated()   // SIGTERM/SIGINT: graceful shutdown, then return
/// ```
public final class HTTPServer: Sendable {
    private struct State {
        var loops: [EventLoop] = []
        var threadsRunning = 0
        var port = 0
        var started = false
    }

    let core: ServerCore
    private let state = Mutex(State())
    private let stopped = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - transport: makes each accepted connection's transport; plain TCP by default, TLS later.
    ///   - observer: called once per finished request (on a loop thread or a handler's task);
    ///     keep it cheap.
    public init(
        configuration: Configuration, responder: RouterResponder, logger: Logger = Logger(label: "http"),
        transport: any HTTPTransportFactory = PlainTCPTransportFactory(),
        observer: (@Sendable (RequestMetrics) -> Void)? = nil
    ) {
        core = ServerCore(
            configuration: configuration, responder: responder, logger: logger, transportFactory: transport,
            observer: observer)
    }

    public var configuration: Configuration { core.configuration }

    /// The bound port (useful with `port: 0`); 0 before `start()`.
    public var port: Int { state.withLock { $0.port } }

    /// The running loops (tests drive their job queues directly).
    var loops: [EventLoop] { state.withLock { $0.loops } }

    /// Open connections right now, across loops.
    public var connectionCount: Int { core.connectionCount.load(ordering: .relaxed) }

    /// Binds every loop's listener and starts the loop threads. Throws on bad configuration or
    /// when the address cannot be bound; nothing is left open then.
    public func start() throws(HTTPServerError) {
        let configuration = core.configuration
        try configuration.validate()
        signal(SIGPIPE, SIG_IGN)
        var loops: [EventLoop] = []
        var port = configuration.port
        do {
            for _ in 0..<configuration.eventLoopCount {
                let listener = CPosix_tcp_listen(configuration.host, UInt16(port), 1, Int32(configuration.listenBacklog))
                guard listener >= 0 else { throw HTTPServerError.system(call: "listen on \(configuration.host):\(port)", errno: errno) }
                if port == 0 { port = Int(CPosix_local_port(listener)) }
                do {
                    loops.append(try EventLoop(core: core, listenerFD: listener))
                } catch {
                    Glibc.close(listener)
                    throw error
                }
            }
        } catch let error as HTTPServerError {
            // Loops never run own their listeners; run them stopped so they release everything.
            for loop in loops {
                loop.beginShutdown(graceMilliseconds: 0)
                loop.run()
            }
            throw error
        } catch {
            throw .system(call: "start", errno: 0)
        }
        let alreadyStarted = state.withLock { state in
            if state.started { return true }
            state.started = true
            state.loops = loops
            state.port = port
            state.threadsRunning = loops.count
            return false
        }
        if alreadyStarted {
            for loop in loops {
                loop.beginShutdown(graceMilliseconds: 0)
                loop.run()
            }
            throw .alreadyStarted
        }
        for (index, loop) in loops.enumerated() {
            let thread = Thread { [self] in
                // Foundation names a Linux thread only when set from the thread itself; the
                // name lets `top -H` and per-thread profiles tell the loops apart.
                Thread.current.name = "http-loop-\(index)"
                loop.run()
                let last = state.withLock { state in
                    state.threadsRunning -= 1
                    return state.threadsRunning == 0
                }
                if last { stopped.signal() }
            }
            thread.start()
        }
        core.logger.info(
            "listening", metadata: ["http.host": configuration.host, "http.port": "\(port)", "http.loops": "\(loops.count)"])
    }

    /// Graceful shutdown: stop accepting, close idle connections, let in-flight requests finish
    /// for up to `graceMilliseconds` (default `Configuration.shutdownGraceMilliseconds`), close
    /// the rest, and return once every loop thread has ended. Safe to call more than once.
    public func shutdown(graceMilliseconds: Int? = nil) {
        let (loops, wasRunning) = state.withLock { state in
            let running = state.started && !state.loops.isEmpty
            let loops = state.loops
            state.loops = []
            return (loops, running)
        }
        guard wasRunning else { return }
        let grace = max(0, graceMilliseconds ?? core.configuration.shutdownGraceMilliseconds)
        for loop in loops { loop.beginShutdown(graceMilliseconds: grace) }
        stopped.wait()
        core.logger.info("stopped", metadata: [:])
    }

    /// Blocks until SIGTERM or SIGINT, then shuts down gracefully and returns (exit 0 is the
    /// caller's). For the CLI's `serve`.
    public func runUntilTerminated() {
        let received = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { received.signal() }
            source.resume()
            sources.append(source)
        }
        received.wait()
        core.logger.info("shutting down", metadata: [:])
        for source in sources { source.cancel() }
        shutdown()
    }
}
