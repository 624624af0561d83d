import HTTP
import PartnerSigning
import Storage
import Synchronization

/// Plays one partner bank from its contract: verifies the gateway's signatures (401 for a bad
/// one, as the bank would), accepts funding requests, posts signed confirmations after a delay,
/// answers status queries and cancellations, and injects faults on request with seeded
/// randomness. Used by `jointlend partner-sim`, the connector tests and the chaos test.
public final class PartnerSimulator: Sendable {
    /// Fault rates in percent (each drawn independently per request or callback).
    public struct Faults: Sendable, Hashable {
        public var declinePercent = 0.0
        /// Answer 503 without processing the request.
        public var serverErrorPercent = 0.0
        /// Process the request but answer only after `timeoutHoldMilliseconds` (past the
        /// gateway's timeout): the gateway cannot know the request was taken.
        public var timeoutPercent = 0.0
        public var lostCallbackPercent = 0.0
        public var duplicateCallbackPercent = 0.0
        /// Added before every answer.
        public var latencyMilliseconds = 0
        public var timeoutHoldMilliseconds = 3_000

        public init() {}
    }

    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0 picks a free port.
        public var port = 0
        /// The gateway, for callbacks: `http://host:port`.
        public var gatewayURL = "http://127.0.0.1:8080"
        public var callbackDelayMilliseconds = 10
        public var callbackAttemptsMax = 5
        public var callbackTimeoutMilliseconds = 2_000
        /// Callbacks in flight at once.
        public var callbacksInFlightMax = 16
        public var faults = Faults()
        public var seed: UInt64 = 1
        /// Funding requests remembered; beyond it new ones are refused with 503.
        public var requestsRememberedMax = 1_000_000

        public init() {}
    }

    /// Counters of what the simulated bank saw and did.
    public struct Stats: Sendable, Hashable {
        public var fundingRequests = 0
        public var duplicateRequests = 0
        public var signatureRejections = 0
        public var serverErrorsInjected = 0
        public var timeoutsInjected = 0
        public var statusQueries = 0
        public var cancellations = 0
        public var callbacksPosted = 0
        public var callbacksLost = 0
        public var callbacksDuplicated = 0
        public var callbacksFailed = 0
        public var declined = 0
        public var funded = 0
    }

    struct Entry {
        var tranche: PartnerWire.Tranche
        var code: String?
        var cancelled = false
    }

    public let contract: PartnerContract
    public let configuration: Configuration
    let wire: PartnerWire
    let signer: PartnerSigner
    let verifier: PartnerVerifier
    let gateway: Mutex<PartnerEndpoint>
    let fundedCode: String
    let declinedCode: String
    let clock: @Sendable () -> Int64
    let logger: HTTP.Logger
    let random: SeededRandom
    let client: HTTPClient
    let callbackSlots: AsyncLimiter
    let entries = Mutex<[String: Entry]>([:])
    let counters = Mutex(Stats())
    let server = Mutex<HTTPServer?>(nil)
    static let pendingCode = "PROCESSING"

    public struct SetupError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public init(contract: PartnerContract, configuration: Configuration, clock: @escaping @Sendable () -> Int64, logger: HTTP.Logger) throws {
        guard let keys = contract.simulatorKeys else {
            throw SetupError(description: "contract \(contract.partnerId) has no `simulator` keys (test-only bank keys)")
        }
        guard let funded = contract.resultCodes.filter({ $0.value == .funded }).keys.sorted().first,
              let declined = contract.resultCodes.filter({ $0.value == .declined }).keys.sorted().first else {
            throw SetupError(description: "contract \(contract.partnerId) needs a funded and a declined result code")
        }
        self.contract = contract
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        fundedCode = funded
        declinedCode = declined
        wire = try PartnerWire(contract: contract)
        signer = try PartnerSigner(scheme: contract.scheme, keyRing: keys.partnerSigningKeys)
        verifier = try PartnerVerifier(scheme: contract.scheme, keyRing: keys.gatewayVerifyingKeys, replayGuard: NonceReplayGuard(covering: [contract.scheme]))
        do { gateway = Mutex(try PartnerEndpoint(url: configuration.gatewayURL)) } catch {
            throw SetupError(description: "--gateway: \(error.description)")
        }
        random = SeededRandom(seed: configuration.seed)
        client = HTTPClient()
        callbackSlots = AsyncLimiter(limit: max(1, configuration.callbacksInFlightMax))
    }

    public var stats: Stats { counters.withLock { $0 } }

    /// Points callbacks at another gateway (one started after the simulator, on port 0).
    public func setGatewayURL(_ url: String) throws(PartnerEndpoint.ParseError) {
        let e = try PartnerEndpoint(url: url)
        gateway.withLock { $0 = e }
    }
    public var port: Int { server.withLock { $0?.port ?? 0 } }

    public func start() throws {
        var router = HTTP.Router()
        let base = wire.endpoint.basePath
        let e = contract.endpoints
        router.post(base + e.fundingRequest) { [self] req, _ in try await fundingRequest(req) }
        router.on(e.statusQuery.contains("{serial}") ? .GET : .POST, base + e.statusQuery) { [self] req, _ in try await statusQuery(req) }
        router.post(base + e.cancellation) { [self] req, _ in try await cancellation(req) }
        var http = HTTPServer.Configuration()
        http.host = configuration.host
        http.port = configuration.port
        http.eventLoopCount = 1
        http.handlerTimeoutMilliseconds = configuration.faults.timeoutHoldMilliseconds + configuration.faults.latencyMilliseconds + 5_000
        let s = HTTPServer(configuration: http, responder: try router.freeze(), logger: logger)
        try s.start()
        server.withLock { $0 = s }
    }

    /// Blocks until SIGTERM or SIGINT (the `partner-sim` command).
    public func runUntilTerminated() {
        server.withLock { $0 }?.runUntilTerminated()
    }

    public func stop() {
        server.withLock { $0?.shutdown(graceMilliseconds: 100) }
    }

    // Not in stop(): a callback still in flight would strand its connection (see OutboxDispatcher).
    deinit { client.shutdown() }

    // MARK: Handlers

    func authenticate(_ req: Request) throws(HTTPError) {
        do {
            try verifier.verify(.request, method: req.method.rawValue, pathAndQuery: req.target, headers: req.headers.fields, body: req.body, now: clock())
        } catch {
            counters.withLock { $0.signatureRejections += 1 }
            throw HTTPError(.unauthorized, code: "signature_invalid", message: "signature could not be verified")
        }
    }

    func fundingRequest(_ req: Request) async throws -> Response {
        try authenticate(req)
        await pause(configuration.faults.latencyMilliseconds)
        if random.chance(percent: configuration.faults.serverErrorPercent) {
            counters.withLock { $0.serverErrorsInjected += 1 }
            throw HTTPError(.serviceUnavailable, code: "busy", message: "injected server error")
        }
        let t: PartnerWire.Tranche
        do { t = try wire.tranche(fromBody: req.body) } catch {
            throw HTTPError(.badRequest, code: "invalid_field", message: error.message, field: error.field)
        }
        let isNew = try entries.withLock { entries throws(HTTPError) -> Bool in
            if entries[t.serial] != nil { return false }
            guard entries.count < configuration.requestsRememberedMax else { throw HTTPError(.serviceUnavailable, code: "full", message: "simulator memory full") }
            entries[t.serial] = Entry(tranche: t)
            return true
        }
        counters.withLock { if isNew { $0.fundingRequests += 1 } else { $0.duplicateRequests += 1 } }
        if isNew {
            Task { [self] in await decideAndCallBack(t) }
        }
        if random.chance(percent: configuration.faults.timeoutPercent) {
            counters.withLock { $0.timeoutsInjected += 1 }
            await pause(configuration.faults.timeoutHoldMilliseconds)
        }
        return try signedResponse(wire.answerBody(t, code: Self.pendingCode))
    }

    func statusQuery(_ req: Request) async throws -> Response {
        try authenticate(req)
        await pause(configuration.faults.latencyMilliseconds)
        counters.withLock { $0.statusQueries += 1 }
        let serial: String
        do { serial = try wire.serial(inStatusQueryTarget: req.target, body: req.body) } catch {
            throw HTTPError(.badRequest, code: "invalid_field", message: error.message, field: error.field)
        }
        guard let entry = entries.withLock({ $0[serial] }) else { return try signedNotFound() }
        return try signedResponse(wire.answerBody(entry.tranche, code: entry.code ?? Self.pendingCode))
    }

    func cancellation(_ req: Request) async throws -> Response {
        try authenticate(req)
        let t: PartnerWire.Tranche
        do { t = try wire.tranche(fromBody: req.body) } catch {
            throw HTTPError(.badRequest, code: "invalid_field", message: error.message, field: error.field)
        }
        let known = entries.withLock { entries -> Bool in
            guard entries[t.serial] != nil else { return false }
            entries[t.serial]?.cancelled = true
            return true
        }
        guard known else { return try signedNotFound() }
        counters.withLock { $0.cancellations += 1 }
        return try signedResponse(wire.answerBody(t, code: "CANCELLED"))
    }

    /// A bank signs its "no such request" like any answer: the gateway acts on no unsigned one.
    func signedNotFound() throws -> Response {
        try signedResponse(.object([("error", .object([("code", .string("not_found")), ("message", .string("no such request"))]))]), status: .notFound)
    }

    func signedResponse(_ body: JSONValue, status: HTTPStatus = .ok) throws -> Response {
        let m = try PartnerWire.sign(.response, method: .POST, target: "", body: body, signer: signer, timestamp: clock(), nonce: PartnerSigner.makeNonce())
        var r = Response.json(bytes: m.body, status: status)
        for h in m.headers where h.name.lowercased() != "content-type" { r.headers.add(name: h.name, value: h.value) }
        return r
    }

    // MARK: Callbacks

    func decideAndCallBack(_ t: PartnerWire.Tranche) async {
        await pause(configuration.callbackDelayMilliseconds)
        let declined = random.chance(percent: configuration.faults.declinePercent)
        let code = declined ? declinedCode : fundedCode
        let cancelled = entries.withLock { entries -> Bool in
            entries[t.serial]?.code = code
            return entries[t.serial]?.cancelled ?? false
        }
        counters.withLock { if declined { $0.declined += 1 } else { $0.funded += 1 } }
        if cancelled { return }
        if random.chance(percent: configuration.faults.lostCallbackPercent) {
            counters.withLock { $0.callbacksLost += 1 }
            return
        }
        let copies = random.chance(percent: configuration.faults.duplicateCallbackPercent) ? 2 : 1
        if copies == 2 { counters.withLock { $0.callbacksDuplicated += 1 } }
        for _ in 0..<copies { await postCallback(t, code: code) }
    }

    /// Posts one confirmation, retrying a few times on failure like a bank's notifier would.
    func postCallback(_ t: PartnerWire.Tranche, code: String) async {
        let target = "/v1/partners/\(contract.partnerId)/confirmations"
        let gateway = self.gateway.withLock { $0 }
        for attempt in 0..<configuration.callbackAttemptsMax {
            do {
                // Signed afresh per attempt: a new nonce, so the gateway's replay guard passes it.
                let m = try PartnerWire.sign(.callback, method: .POST, target: target, body: wire.answerBody(t, code: code), signer: signer,
                                             timestamp: clock(), nonce: PartnerSigner.makeNonce())
                let r = try await callbackSlots.withSlot { try await client.execute(
                    HTTPClient.Request(method: .POST, host: gateway.host, port: gateway.port, target: m.target, headers: m.headers, body: m.body),
                    timeoutMilliseconds: configuration.callbackTimeoutMilliseconds) }
                if (200..<300).contains(r.status) || r.status == 409 {
                    counters.withLock { $0.callbacksPosted += 1 }
                    return
                }
                if (400..<500).contains(r.status), r.status != 429 { break }
            } catch {
                // Retried below.
            }
            await pause(50 << min(attempt, 6))
        }
        counters.withLock { $0.callbacksFailed += 1 }
    }

    func pause(_ milliseconds: Int) async {
        guard milliseconds > 0 else { return }
        try? await Task.sleep(nanoseconds: UInt64(milliseconds) * 1_000_000)
    }
}
