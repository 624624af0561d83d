import CPosix

/// One server-side connection: parses requests, runs handlers, writes responses in request
/// order, and enforces the timeouts. Lives on its loop's thread only.
final class HTTPConnection {
    /// A response position in pipelining order: filled at once by sync handlers and errors,
    /// later by async handlers.
    private struct Slot {
        var bytes: [UInt8]?
        /// When the request was dispatched (async slots only): bounds a handler that never answers.
        var startNanoseconds: UInt64 = 0
    }

    let id: UInt64
    /// `unowned(unsafe)`: the loop closes every connection before it ends, and this is read
    /// for every request, so the reference-count traffic of `unowned` is not worth paying.
    private unowned(unsafe) let loop: EventLoop
    private let transport: any HTTPTransport
    private let fd: Int32
    private let remoteAddress: String?
    private var parser: HTTPRequestParser
    /// Copied from the configuration: read for every request.
    private let pipelinedRequestsMax: Int
    private let writeBufferBytesMax: Int
    private let outputBacklogBytesMax: Int
    /// This connection's share of `ServerCore.backloggedBytes`.
    private var backlogAccounted = 0
    private var output: [UInt8] = []
    private var outputIndex = 0
    private var slots: [Slot] = []
    private var slotsHead = 0
    /// Sequence number of `slots[slotsHead]`.
    private var headSequence: UInt64 = 0
    /// No more requests are read; close once every response is written.
    private var closeAfterResponses = false
    private var lingering = false
    private var isClosed = false
    private var interest: UInt32
    private var requestStartNanoseconds: UInt64?
    private var bodyStartNanoseconds: UInt64?
    private var lastActivityNanoseconds: UInt64
    private var lastWriteProgressNanoseconds: UInt64
    private var lingerDeadlineNanoseconds: UInt64 = 0
    /// The transport's read needs the socket writable first (TLS renegotiation).
    private var readWaitsForWritable = false
    private var hasServedRequest = false

    init(loop: EventLoop, id: UInt64, transport: any HTTPTransport, remoteAddress: String?) {
        self.loop = loop
        self.id = id
        self.transport = transport
        self.fd = transport.fileDescriptor
        self.remoteAddress = remoteAddress
        self.parser = HTTPRequestParser(limits: loop.core.configuration.parserLimits)
        self.pipelinedRequestsMax = loop.core.configuration.pipelinedRequestsMax
        self.writeBufferBytesMax = loop.core.configuration.writeBufferBytesMax
        self.outputBacklogBytesMax = loop.core.configuration.outputBacklogBytesMax
        self.interest = CPosix_EPOLLIN
        self.lastActivityNanoseconds = loop.nowNanoseconds
        self.lastWriteProgressNanoseconds = loop.nowNanoseconds
    }

    private var pendingResponseCount: Int { slots.count - slotsHead }
    private var unsentByteCount: Int { output.count - outputIndex }

    /// Whether another request may be parsed now (the pipelining and output bounds).
    private var acceptsRequests: Bool {
        !lingering && !closeAfterResponses
            && pendingResponseCount < pipelinedRequestsMax
            && unsentByteCount < writeBufferBytesMax
            && (backlogAccounted == 0 && pendingResponseCount == 0 || loop.core.backloggedBytes.load(ordering: .relaxed) < outputBacklogBytesMax)
    }

    private var wantsInput: Bool { lingering || acceptsRequests }

    // MARK: Events

    func handle(events: UInt32) {
        if events & CPosix_EPOLLIN != 0 { readAvailable() }
        if !isClosed && events & CPosix_EPOLLOUT != 0 {
            if readWaitsForWritable {
                readWaitsForWritable = false
                readAvailable()
            }
            if !isClosed { flush() }
        }
        // Both directions are gone (or the socket failed): nothing can be answered any more.
        if !isClosed && events & (CPosix_EPOLLHUP | CPosix_EPOLLERR) != 0 { close() }
        if !isClosed { updateInterest() }
    }

    private func readAvailable() {
        guard wantsInput else { return }
        switch transport.read(into: loop.readBuffer) {
        case let .bytes(count):
            if lingering { return }  // discarded: the final response is out
            if requestStartNanoseconds == nil { requestStartNanoseconds = loop.nowNanoseconds }
            parser.append(UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count]))
            processInput()
            flush()
        case let .wouldBlock(interest):
            readWaitsForWritable = interest == .write
        case .closed:
            if lingering || (pendingResponseCount == 0 && unsentByteCount == 0) {
                close()
            } else {
                // The client half-closed after pipelining: answer what it sent, then close.
                closeAfterResponses = true
            }
        case .failed:
            close()
        }
    }

    private func processInput() {
        while acceptsRequests {
            let request: Request?
            do {
                request = try parser.next()
            } catch {
                refuse(error)
                return
            }
            guard let request else {
                if parser.isReadingBody && bodyStartNanoseconds == nil {
                    bodyStartNanoseconds = loop.nowNanoseconds
                    // Limits were checked on the head, so the body is welcome.
                    if parser.isAwaitingContinue { enqueue(Self.continueResponse) }
                }
                return
            }
            bodyStartNanoseconds = nil
            hasServedRequest = true
            requestStartNanoseconds = parser.bufferedByteCount > 0 ? loop.nowNanoseconds : nil
            dispatch(request)
        }
    }

    private static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// A request that cannot be parsed: answer its status, then close.
    private func refuse(_ error: HTTPParseError) {
        closeAfterResponses = true
        let requestID = loop.makeRequestID()
        var bytes: [UInt8] = []
        HTTPError(error).response.serialize(into: &bytes, requestID: requestID, close: true)
        loop.core.observer?(RequestMetrics(method: nil, routePattern: "", status: error.status.code, durationNanoseconds: 0))
        enqueue(bytes)
    }

    private func dispatch(_ request: Request) {
        let core = loop.core
        let requestID: String
        if let offered = request.headers["X-Request-Id"], RequestContext.isSaneRequestID(offered) {
            requestID = offered
        } else {
            requestID = loop.makeRequestID()
        }
        let close = !request.keepAlive || loop.isStopping
        if close { closeAfterResponses = true }
        let omitBody = request.method == .HEAD
        let http10 = request.version == .http1_0
        let start = loop.nowNanoseconds
        let context = RequestContext(requestID: requestID, remoteAddress: remoteAddress, logger: core.logger)
        let response: Response
        var pattern = ""
        switch core.responder.resolve(request.method, path: request.path) {
        case .notFound:
            response = HTTPError.notFound.response
        case let .methodNotAllowed(allowed):
            response = HTTPError.methodNotAllowed(allowed: allowed).response
        case let .route(route, parameters):
            pattern = route.pattern
            let routed = context.with(parameters: parameters, routePattern: route.pattern)
            switch route.handler {
            case let .sync(handler):
                response = Logger.$currentRequestID.withValue(requestID) {
                    do {
                        return try handler(request, routed)
                    } catch {
                        return RouterResponder.render(error, context: routed)
                    }
                }
            case let .async(handler):
                runAsync(handler, request, routed, close: close, omitBody: omitBody, http10: http10, start: start)
                return
            }
        }
        let handlerCloses = response.asksToClose
        if handlerCloses { closeAfterResponses = true }
        if pendingResponseCount == 0 {
            // Nothing is waiting ahead of it: serialise straight into the output.
            response.serialize(into: &output, requestID: requestID, close: close || handlerCloses, omitBody: omitBody, announceKeepAlive: http10)
        } else {
            var bytes: [UInt8] = []
            response.serialize(into: &bytes, requestID: requestID, close: close || handlerCloses, omitBody: omitBody, announceKeepAlive: http10)
            slots.append(Slot(bytes: bytes))
        }
        if let observer = core.observer {
            observer(RequestMetrics(
                method: request.method, routePattern: pattern, status: response.status.code,
                durationNanoseconds: MonotonicClock.nanoseconds() &- start))
        }
    }

    private func runAsync(
        _ handler: @escaping AsyncHandler, _ request: Request, _ context: RequestContext,
        close: Bool, omitBody: Bool, http10: Bool, start: UInt64
    ) {
        let sequence = headSequence + UInt64(pendingResponseCount)
        slots.append(Slot(bytes: nil, startNanoseconds: start))
        let loop = self.loop
        let fd = self.fd
        let connectionID = id
        let observer = loop.core.observer
        // On the connection's own loop: no thread hop to start, none to finish (see EventLoop).
        Task(executorPreference: loop) {
            let response = await Logger.$currentRequestID.withValue(context.requestID) {
                do {
                    return try await handler(request, context)
                } catch {
                    return RouterResponder.render(error, context: context)
                }
            }
            let handlerCloses = response.asksToClose
            observer?(RequestMetrics(
                method: request.method, routePattern: context.routePattern, status: response.status.code,
                durationNanoseconds: MonotonicClock.nanoseconds() &- start))
            let framing = ResponseFraming(
                requestID: context.requestID, close: close || handlerCloses, omitBody: omitBody, announceKeepAlive: http10)
            // Normally the task runs on the loop already (its executor preference): answer now,
            // without queueing one more job. Elsewhere (the loop ended, or an executor the
            // handler chose) the loop is asked to do it.
            if loop.isCurrentThread {
                loop.connection(fd: fd, id: connectionID)?.complete(sequence: sequence, response: response, framing: framing)
            } else {
                var serialized: [UInt8] = []
                framing.serialize(response, into: &serialized)
                let bytes = serialized
                loop.execute {
                    loop.connection(fd: fd, id: connectionID)?.complete(sequence: sequence, bytes: bytes, close: handlerCloses)
                }
            }
        }
    }

    /// How an async handler's response is written, fixed when it was dispatched.
    private struct ResponseFraming {
        var requestID: String
        var close: Bool
        var omitBody: Bool
        var announceKeepAlive: Bool

        func serialize(_ response: Response, into out: inout [UInt8]) {
            response.serialize(into: &out, requestID: requestID, close: close, omitBody: omitBody, announceKeepAlive: announceKeepAlive)
        }
    }

    /// An async handler's response, on the loop: serialised straight into the output when
    /// nothing is pending ahead of it (no intermediate array), into its slot otherwise.
    private func complete(sequence: UInt64, response: Response, framing: ResponseFraming) {
        guard !isClosed, sequence >= headSequence else { return }
        if framing.close { closeAfterResponses = true }
        let index = slotsHead + Int(sequence - headSequence)
        guard index < slots.count else { return }
        if index == slotsHead {
            framing.serialize(response, into: &output)
            slots[index].bytes = []
        } else {
            var bytes: [UInt8] = []
            framing.serialize(response, into: &bytes)
            slots[index].bytes = bytes
        }
        drainReadySlots()
        processInput()  // reading may have paused on the pipelining bound
        flush()
        if !isClosed { updateInterest() }
    }

    /// An async handler's response arrived on the loop.
    func complete(sequence: UInt64, bytes: [UInt8], close: Bool) {
        guard !isClosed, sequence >= headSequence else { return }
        if close { closeAfterResponses = true }
        let index = slotsHead + Int(sequence - headSequence)
        guard index < slots.count else { return }
        slots[index].bytes = bytes
        drainReadySlots()
        processInput()  // reading may have paused on the pipelining bound
        flush()
        if !isClosed { updateInterest() }
    }

    /// Queues a finished response behind any still pending.
    private func enqueue(_ bytes: [UInt8]) {
        if pendingResponseCount == 0 {
            output.append(contentsOf: bytes)
        } else {
            slots.append(Slot(bytes: bytes))
        }
    }

    private func drainReadySlots() {
        while slotsHead < slots.count, let bytes = slots[slotsHead].bytes {
            output.append(contentsOf: bytes)
            slots[slotsHead].bytes = nil
            slotsHead += 1
            headSequence += 1
        }
        if slotsHead == slots.count {
            slots.removeAll(keepingCapacity: true)
            slotsHead = 0
        }
    }

    // MARK: Writing and closing

    private func flush() {
        while outputIndex < output.count {
            let result = output.withUnsafeBytes { raw in
                transport.write(UnsafeRawBufferPointer(rebasing: raw[outputIndex...]))
            }
            switch result {
            case let .bytes(count):
                outputIndex += count
                lastWriteProgressNanoseconds = loop.nowNanoseconds
            case .wouldBlock:
                accountBacklog()
                return
            case .closed, .failed:
                close()
                return
            }
        }
        accountBacklog()
        if outputIndex > 0 {
            output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
            outputIndex = 0
            lastActivityNanoseconds = loop.nowNanoseconds
        }
        if closeAfterResponses && pendingResponseCount == 0 && !lingering { startLingeringClose() }
    }

    /// Half-close, then drain what the client still sends for a bounded time, so it reads the
    /// final response instead of a reset caused by unread bytes.
    private func startLingeringClose() {
        transport.shutdownWrite()
        lingering = true
        lingerDeadlineNanoseconds = loop.nowNanoseconds + UInt64(loop.core.configuration.closeLingerMilliseconds) * 1_000_000
    }

    private func updateInterest() {
        var wanted: UInt32 = wantsInput ? CPosix_EPOLLIN : 0
        if unsentByteCount > 0 || readWaitsForWritable { wanted |= CPosix_EPOLLOUT }
        if wanted != interest {
            interest = wanted
            loop.setInterest(fd, wanted)
        }
    }

    /// Server shutdown: idle connections close now, busy ones after their in-flight responses.
    func beginShutdown() {
        guard !isClosed else { return }
        if pendingResponseCount > 0 || unsentByteCount > 0 {
            closeAfterResponses = true
            updateInterest()
        } else if !parser.isReadingBody {
            close()
        }
        // A request whose body is arriving is in flight: it is read, answered with
        // `Connection: close` (the loop is stopping), then the connection closes.
    }

    func expireDeadlines(now: UInt64) {
        let configuration = loop.core.configuration
        func expired(_ since: UInt64, _ milliseconds: Int) -> Bool {
            now > since && now - since > UInt64(milliseconds) * 1_000_000
        }
        if lingering {
            if now > lingerDeadlineNanoseconds { close() }
        } else if unsentByteCount > 0 {
            if expired(lastWriteProgressNanoseconds, configuration.writeTimeoutMilliseconds) { close() }
        } else if pendingResponseCount > 0 {
            // A handler that does not answer in time cannot hold the connection; its late
            // response is dropped (the connection id no longer matches).
            if slots[slotsHead].bytes == nil && expired(slots[slotsHead].startNanoseconds, configuration.handlerTimeoutMilliseconds) {
                loop.core.logger.warning("handler timed out; connection closed", metadata: ["http.connection": "\(id)"])
                close()
            }
        } else if let bodyStart = bodyStartNanoseconds {
            if expired(bodyStart, configuration.bodyReadTimeoutMilliseconds) { close() }
        } else if let requestStart = requestStartNanoseconds {
            if expired(requestStart, configuration.headerReadTimeoutMilliseconds) { close() }
        } else if expired(
            lastActivityNanoseconds,
            // A connection that never sent a request gets the header timeout, not the longer idle one.
            hasServedRequest ? configuration.idleTimeoutMilliseconds : configuration.headerReadTimeoutMilliseconds)
        {
            close()
        }
    }

    /// Brings this connection's share of the server-wide backlog to what it holds unsent now.
    /// A write that takes everything (the usual case) touches no shared counter.
    private func accountBacklog() {
        let held = isClosed ? 0 : unsentByteCount
        guard held != backlogAccounted else { return }
        loop.core.backloggedBytes.add(held - backlogAccounted, ordering: .relaxed)
        backlogAccounted = held
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        accountBacklog()
        loop.removeConnection(fd)
        transport.close()
    }
}
