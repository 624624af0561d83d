import Foundation
import HTTP
import LendingCore
import PartnerSigning
import Storage
import Synchronization

/// Sends what the store's outbox holds, after commit: funding requests, status queries and
/// cancellations to partners (signed in each partner's scheme), and the platform's webhook of
/// every loan's final funding state.
///
/// - Per destination a lane with a concurrency cap (`concurrencyPerPartnerMax`); claimed
///   messages wait in memory (at most `messagesInMemoryMax`) and are deduplicated by id, so a
///   lease that runs out while a message waits cannot send it twice from this process.
/// - Failures retry with exponential backoff and jitter, up to `attemptsMax`, then the message
///   is dead (and, for a funding request, a status query is still scheduled: the partner may
///   have received it).
/// - A circuit breaker per partner: while open, messages are put back without using an attempt.
/// - When a funding request is accepted, a status query is scheduled `callbackOverdueSeconds`
///   later in the same transaction; it does nothing if the callback came first.
/// - Nothing here ends a loan: the deadline sweeper does, whatever the partners do.
public final class OutboxDispatcher: Sendable {
    public struct Configuration: Sendable {
        /// How often an idle dispatcher looks for due messages (a cheap read, not the writer).
        public var pollIntervalMilliseconds = 10
        /// Delivered messages (without a follow-up) whose "sent" marks are written together as one
        /// store command: at every poll, or as soon as this many wait. A crash before that
        /// command commits re-delivers them once their lease runs out (at-least-once, as always).
        /// Capped at `SQLiteStore.outboxCompletionsPerCommandMax`.
        public var completionBatchMax = 256
        /// Claimed messages held in memory across all lanes.
        public var messagesInMemoryMax = 4_096
        public var requestTimeoutMilliseconds = 5_000
        public var attemptsMax = 10
        public var backoffBaseSeconds: Int64 = 1
        public var backoffMaxSeconds: Int64 = 300
        /// Calls in flight per partner (and to the platform).
        public var concurrencyPerPartnerMax = 8
        /// Calls in flight in all partners and the platform (each holds one of `HTTPClient`'s
        /// exchange threads while it runs).
        public var exchangesInFlightMax = 32
        /// A funding request accepted this long ago without a callback gets a status query.
        public var callbackOverdueSeconds: Int64 = 120
        /// A status query answered "processing" is asked again after this long.
        public var statusRecheckSeconds: Int64 = 120
        /// Times a funding request is sent again after a partner said it never got it.
        public var resendsMax = 3
        public var breaker = CircuitBreaker.Configuration()
        /// Partner id → base URL, replacing the contract's (tests, sandboxes).
        public var partnerBaseURLs: [String: String] = [:]
        /// Where the platform's webhook goes; nil drops platform notifications (logged, counted).
        public var platformWebhookURL: String?
        public var platformDestination = "platform"
        /// Seed of the backoff jitter; printed in the start-up log so a run can be replayed.
        public var jitterSeed: UInt64 = UInt64.random(in: 1...UInt64.max)

        public init() {}
    }

    struct Connector: Sendable {
        let contract: PartnerContract
        let wire: PartnerWire
        let signer: PartnerSigner
        let verifier: PartnerVerifier
        let breaker: CircuitBreaker
    }

    public let configuration: Configuration
    let store: SQLiteStore
    let connectors: [String: Connector]
    let platformSigner: PartnerSigner
    let platformEndpoint: PartnerEndpoint?
    let client: HTTPClient
    let clock: @Sendable () -> Int64
    let logger: HTTP.Logger
    let metrics: Metrics
    let random: SeededRandom
    let exchangeSlots: AsyncLimiter
    let lanes = Mutex<[String: DispatchLane]>([:])
    let inMemory = Mutex<Set<Int64>>([])
    let task = Mutex<Task<Void, Never>?>(nil)
    /// Ids delivered and waiting for their batched completion; they stay in `inMemory` until
    /// it is written, so this process cannot claim and send them again meanwhile.
    let pendingCompletions = Mutex<[Int64]>([])
    /// Set by `stop()`: completions are written at once, as no further poll will write them.
    let stopping = Mutex(false)

    public init(
        configuration: Configuration, store: SQLiteStore, contracts: [PartnerContract], platformKeyId: String, platformSecret: [UInt8],
        clock: @escaping @Sendable () -> Int64, logger: HTTP.Logger, metrics: Metrics = Metrics()
    ) throws {
        self.configuration = configuration
        self.store = store
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        random = SeededRandom(seed: configuration.jitterSeed)
        exchangeSlots = AsyncLimiter(limit: max(1, configuration.exchangesInFlightMax))
        let guardForResponses = NonceReplayGuard(covering: contracts.map(\.scheme))
        var connectors: [String: Connector] = [:]
        for c in contracts {
            let wire: PartnerWire
            do { wire = try PartnerWire(contract: c, baseURL: configuration.partnerBaseURLs[c.partnerId]) } catch {
                throw ConfigError(file: c.directory, problems: [DecodingProblem(path: "$.endpoints.baseUrl", message: error.description)])
            }
            connectors[c.partnerId] = Connector(contract: c, wire: wire, signer: try c.makeSigner(), verifier: try c.makeVerifier(replayGuard: guardForResponses),
                                                breaker: CircuitBreaker(configuration: configuration.breaker))
        }
        self.connectors = connectors
        let platformKey = try SigningKey(algorithm: .hmacSHA256, material: platformSecret)
        platformSigner = try PartnerSigner(scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
                                           keyRing: SigningKeyRing([.init(id: platformKeyId, key: platformKey)]))
        if let url = configuration.platformWebhookURL {
            do { platformEndpoint = try PartnerEndpoint(url: url) } catch {
                throw ConfigError(file: "configuration", problems: [DecodingProblem(path: "$.platform.webhookUrl", message: error.description)])
            }
        } else {
            platformEndpoint = nil
        }
        var http = HTTPClient.Configuration()
        http.connectionsPerHostMax = configuration.concurrencyPerPartnerMax
        http.idleConnectionsPerHostMax = configuration.concurrencyPerPartnerMax
        http.connectTimeoutMilliseconds = min(1_000, configuration.requestTimeoutMilliseconds)
        client = HTTPClient(configuration: http)
        metrics.describe(counter: "jointlend_outbox_deliveries_total", help: "Outbox delivery attempts by destination, message type and result.")
        metrics.describe(gauge: "jointlend_partner_breaker_open", help: "1 while a partner's circuit breaker is open or half-open.")
        metrics.collect { [connectors] in
            connectors.keys.sorted().map { id in
                ("jointlend_partner_breaker_open", "1 while a partner's circuit breaker is open or half-open.", Metrics.render([("partner", id)]),
                 connectors[id]?.breaker.state == .closed ? 0 : 1)
            }
        }
    }

    // MARK: Running

    public func start() {
        logger.info("outbox dispatcher started", metadata: ["jitter.seed": String(configuration.jitterSeed), "partners": String(connectors.count)])
        task.withLock { t in
            t = Task { [self] in
                while !Task.isCancelled {
                    let claimed = await runOnce()
                    if claimed == 0 { try? await Task.sleep(nanoseconds: UInt64(configuration.pollIntervalMilliseconds) * 1_000_000) }
                }
                await flushCompletions()
            }
        }
    }

    /// Stops claiming; lanes finish the messages they hold. Pooled connections close when the
    /// dispatcher goes away (after its last exchange): `HTTPClient.shutdown()` while an exchange
    /// is in flight would strand that exchange's connection unclosed.
    public func stop() {
        stopping.withLock { $0 = true }
        task.withLock { $0?.cancel() }
    }

    deinit { client.shutdown() }

    /// Messages claimed and not yet finished.
    public var messagesInFlight: Int { inMemory.withLock { $0.count } }

    public func breakerState(partnerId: String) -> CircuitBreaker.State? { connectors[partnerId]?.breaker.state }

    /// One poll: claims what is due (as much as memory allows) and hands it to the lanes.
    /// Returns how many messages were claimed.
    @discardableResult
    public func runOnce() async -> Int {
        await flushCompletions()
        let now = clock()
        let room = configuration.messagesInMemoryMax - messagesInFlight
        guard room > 0 else { return 0 }
        do {
            guard try store.hasDueOutbox(now: now) else { return 0 }
            // With no platform webhook a platform message is dropped: the claim marks it sent
            // (no lease, no completion command), and it is counted below per type as `process`
            // would count it.
            let dropping: Set<String> = platformEndpoint == nil ? [configuration.platformDestination] : []
            let messages = try await store.claimDueOutbox(now: now, limit: room, droppingDestinations: dropping)
            var dropped: [String: Int] = [:]
            for m in messages {
                if m.state == .sent {
                    dropped[Self.platformMessageType(m.payload) ?? "unknown", default: 0] += 1
                    continue
                }
                guard inMemory.withLock({ $0.insert(m.id).inserted }) else { continue }
                lane(m.destination).submit(m) { [self] m in await process(m) }
            }
            for (type, count) in dropped {
                metrics.increment("jointlend_outbox_deliveries_total", [("destination", "platform"), ("type", type), ("result", "dropped")], by: Double(count))
                metrics.increment("jointlend_outbox_deliveries_total", [("destination", configuration.platformDestination), ("type", type), ("result", "done")],
                                  by: Double(count))
            }
            return messages.count
        } catch {
            logger.warning("outbox claim failed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    func lane(_ destination: String) -> DispatchLane {
        lanes.withLock { lanes in
            if let l = lanes[destination] { return l }
            let l = DispatchLane(concurrencyMax: configuration.concurrencyPerPartnerMax)
            lanes[destination] = l
            return l
        }
    }

    // MARK: Processing one message

    enum Delivery {
        case done(SQLiteStore.FollowUp?)
        case retry(String)
        case later(Int64)
    }

    func process(_ m: OutboxMessage) async {
        // A completion left to the batch keeps its id in memory until the batch is written.
        var completionBatched = false
        defer { if !completionBatched { _ = inMemory.withLock { $0.remove(m.id) } } }
        let payload: OutboxPayload
        do { payload = try OutboxPayload(m.payload) } catch {
            logger.error("outbox message unreadable; marked dead", metadata: ["outbox.id": String(m.id), "error": "\(error)"])
            _ = try? await store.retryOutbox(id: m.id, nextAttemptAt: clock(), attemptsMax: 0)
            return
        }
        let delivery: Delivery
        if m.destination == configuration.platformDestination {
            delivery = await notifyPlatform(payload)
        } else if m.destination.hasPrefix("partner:"), let c = connectors[String(m.destination.dropFirst(8))] {
            delivery = await deliver(payload, to: c)
        } else {
            logger.error("outbox destination unknown; marked dead", metadata: ["outbox.id": String(m.id), "destination": m.destination])
            _ = try? await store.retryOutbox(id: m.id, nextAttemptAt: clock(), attemptsMax: 0)
            return
        }
        completionBatched = await apply(delivery, to: m, payload: payload)
    }

    /// Records the delivery's outcome. Returns true when the completion was left to the batch
    /// (`completeLater`), which then owns the id's place in memory.
    @discardableResult
    func apply(_ delivery: Delivery, to m: OutboxMessage, payload: OutboxPayload) async -> Bool {
        let now = clock()
        do {
            switch delivery {
            case .done(nil):
                metrics.increment("jointlend_outbox_deliveries_total", [("destination", m.destination), ("type", payload.type), ("result", "done")])
                await completeLater(m.id)
                return true
            case .done(let followUp?):
                // The follow-up must commit with the completion: this one goes alone.
                metrics.increment("jointlend_outbox_deliveries_total", [("destination", m.destination), ("type", payload.type), ("result", "done")])
                try await store.completeOutbox(id: m.id, followUp: followUp)
            case .later(let at):
                try await store.deferOutbox(id: m.id, until: max(at, now + 1))
            case .retry(let reason):
                metrics.increment("jointlend_outbox_deliveries_total", [("destination", m.destination), ("type", payload.type), ("result", "retry")])
                let state = try await store.retryOutbox(id: m.id, nextAttemptAt: now + backoffSeconds(afterAttempts: m.attempts + 1),
                                                        attemptsMax: configuration.attemptsMax)
                if state == .dead {
                    logger.warning("outbox message dead after its last attempt", metadata: ["outbox.id": String(m.id), "type": payload.type, "reason": reason])
                    if payload.type == OutboxPayload.fundingRequest {
                        // The partner may have processed a request whose answer we never saw: ask.
                        try await store.enqueueOutbox(destination: m.destination, payload: payload.with(type: OutboxPayload.fundingStatus),
                                                      notBefore: now + configuration.callbackOverdueSeconds)
                    }
                }
            }
        } catch {
            // The lease expires and the message is claimed again: at-least-once, never lost.
            logger.warning("outbox bookkeeping failed", metadata: ["outbox.id": String(m.id), "error": "\(error)"])
        }
        return false
    }

    // MARK: Batched completions

    var completionBatchMax: Int { min(max(configuration.completionBatchMax, 1), SQLiteStore.outboxCompletionsPerCommandMax) }

    /// Queues `id`'s completion for the next batch; writes the batch now if it is full (or if
    /// the dispatcher is stopping and no poll will come).
    func completeLater(_ id: Int64) async {
        let batchMax = completionBatchMax
        let immediate = stopping.withLock { $0 }
        let full = pendingCompletions.withLock { ids -> [Int64]? in
            ids.append(id)
            guard ids.count >= batchMax || immediate else { return nil }
            defer { ids.removeAll(keepingCapacity: true) }
            return ids
        }
        if let full { await writeCompletions(full) }
    }

    /// Writes every queued completion, in commands of at most `completionBatchMax` ids.
    func flushCompletions() async {
        let batchMax = completionBatchMax
        while true {
            let batch = pendingCompletions.withLock { ids -> [Int64] in
                let taken = Array(ids.prefix(batchMax))
                ids.removeFirst(taken.count)
                return taken
            }
            if batch.isEmpty { return }
            await writeCompletions(batch)
        }
    }

    /// One store command for `ids`. If it fails, nothing of it committed: the messages stay
    /// open and are claimed again when their lease runs out (at-least-once).
    func writeCompletions(_ ids: [Int64]) async {
        do {
            _ = try await store.completeOutbox(ids: ids)
        } catch StoreError.closed {
            // Shutting down (the store closes right after `stop()`): expected, not a fault.
            logger.info("outbox completions left for redelivery at shutdown", metadata: ["outbox.count": String(ids.count)])
        } catch {
            logger.warning("outbox completions not recorded; messages will be sent again", metadata: ["outbox.count": String(ids.count), "error": "\(error)"])
        }
        inMemory.withLock { held in
            for id in ids { held.remove(id) }
        }
    }

    /// Completions delivered but not yet written (for tests and metrics).
    public var completionsPending: Int { pendingCompletions.withLock { $0.count } }

    func backoffSeconds(afterAttempts attempts: Int) -> Int64 {
        Self.backoffSeconds(afterAttempts: attempts, baseSeconds: configuration.backoffBaseSeconds, maxSeconds: configuration.backoffMaxSeconds, random: random)
    }

    /// Exponential backoff with jitter: half the capped exponential delay, plus a random part of
    /// the other half, at least one second ("equal jitter": retries spread, never bunch at zero).
    static func backoffSeconds(afterAttempts attempts: Int, baseSeconds: Int64, maxSeconds: Int64, random: SeededRandom) -> Int64 {
        let exponent = Int64(min(max(attempts - 1, 0), 30))
        let capped = min(baseSeconds << exponent, maxSeconds)
        let half = capped / 2
        return max(1, half + Int64(random.below(UInt64(max(0, capped - half) + 1))))
    }

    // MARK: Partners

    func deliver(_ p: OutboxPayload, to c: Connector) async -> Delivery {
        let now = clock()
        if p.type == OutboxPayload.fundingRequest || p.type == OutboxPayload.fundingStatus {
            // Only a tranche still waiting for this partner is worth a call.
            switch Result(catching: { try store.trancheStatus(id: p.tranche.trancheId) }) {
            case .failure(let e): return .retry("store read failed: \(e)")
            case .success(let t):
                guard let t, t.state == .requested, t.loanState == .awaitingFunding, t.funderId == c.contract.partnerId else { return .done(nil) }
            }
        }
        if case .refused(let at) = c.breaker.permit(now: now) { return .later(at) }
        let message: PartnerWire.Message
        do {
            let nonce = PartnerSigner.makeNonce()
            switch p.type {
            case OutboxPayload.fundingRequest: message = try c.wire.fundingRequest(p.tranche, signer: c.signer, timestamp: now, nonce: nonce)
            case OutboxPayload.fundingStatus: message = try c.wire.statusQuery(p.tranche, signer: c.signer, timestamp: now, nonce: nonce)
            case OutboxPayload.fundingCancel: message = try c.wire.cancellation(p.tranche, reason: p.reason ?? "released", signer: c.signer, timestamp: now, nonce: nonce)
            default:
                c.breaker.record(success: true, now: now)
                logger.error("unknown partner message type; dropped", metadata: ["type": p.type])
                return .done(nil)
            }
        } catch {
            c.breaker.record(success: true, now: now)  // our signing problem says nothing of the partner
            return .retry("signing failed: \(error.code)")
        }
        let response: HTTPClient.Response
        do {
            response = try await exchange(HTTPClient.Request(method: message.method, host: c.wire.endpoint.host, port: c.wire.endpoint.port,
                                                             target: message.target, headers: message.headers, body: message.body))
        } catch {
            c.breaker.record(success: false, now: clock())
            return .retry("\(error)")
        }
        let answered = (200..<300).contains(response.status) || response.status == 404
        c.breaker.record(success: answered, now: clock())
        guard answered else { return .retry("partner answered \(response.status)") }
        // Nothing a partner answers changes what happens next unless it is signed, a 404
        // included: an unsigned "not found" from anyone on the path must not end a request.
        do {
            try c.verifier.verify(.response, headers: response.headers.fields, body: response.body, now: clock())
        } catch {
            logger.warning("partner response signature rejected",
                           metadata: ["partner.id": c.contract.partnerId, "status": String(response.status), "signature.error": error.description])
            return .retry("response signature: \(error.code)")
        }
        if response.status == 404 { return notFound(p, c) }
        switch p.type {
        case OutboxPayload.fundingCancel:
            return .done(nil)
        case OutboxPayload.fundingRequest:
            if let applied = await applyAnswer(response.body, c), applied { return .done(nil) }
            return .done(followUp(p.with(type: OutboxPayload.fundingStatus), c, after: configuration.callbackOverdueSeconds))
        default:
            if let applied = await applyAnswer(response.body, c), applied { return .done(nil) }
            return .done(followUp(p.with(type: OutboxPayload.fundingStatus), c, after: configuration.statusRecheckSeconds))
        }
    }

    func exchange(_ request: HTTPClient.Request) async throws(HTTPClientError) -> HTTPClient.Response {
        await exchangeSlots.acquire()
        defer { exchangeSlots.release() }
        return try await client.execute(request, timeoutMilliseconds: configuration.requestTimeoutMilliseconds)
    }

    /// A signed 404. To a cancellation: the partner never had the request, so nothing is left to
    /// cancel. To a status query: the request never reached it, so it is sent again (up to
    /// `resendsMax`; the deadline ends it). To a funding request it is no answer at all (a wrong
    /// path, or the partner's own fault): retried like a 5xx until the attempts or the deadline end it.
    func notFound(_ p: OutboxPayload, _ c: Connector) -> Delivery {
        if p.type == OutboxPayload.fundingRequest { return .retry("partner answered 404 to a funding request") }
        guard p.type == OutboxPayload.fundingStatus else { return .done(nil) }
        guard p.resends < configuration.resendsMax else { return .done(nil) }  // the deadline ends it
        var again = p
        again.resends += 1
        return .done(followUp(again.with(type: OutboxPayload.fundingRequest), c, after: 0))
    }

    func followUp(_ payload: [UInt8], _ c: Connector, after seconds: Int64) -> SQLiteStore.FollowUp {
        SQLiteStore.FollowUp(destination: "partner:\(c.contract.partnerId)", payload: payload, notBefore: clock() + seconds)
    }

    /// Applies a final outcome found in a partner's answer as if its callback had come.
    /// Returns true when the tranche is settled (applied now or already), false when still
    /// pending, nil when the answer could not be read.
    func applyAnswer(_ body: [UInt8], _ c: Connector) async -> Bool? {
        let answer: PartnerWire.Answer
        do { answer = try c.wire.answer(body) } catch {
            logger.warning("partner answer unreadable", metadata: ["partner.id": c.contract.partnerId, "field": error.field])
            return nil
        }
        guard case .outcome(let confirmation) = answer else { return false }
        do {
            _ = try await store.confirm(confirmation, now: clock())
            metrics.increment("jointlend_confirmations_total", [("partner", c.contract.partnerId), ("outcome", confirmation.outcome.rawValue)])
            return true
        } catch let e as StoreError {
            switch e {
            case .invalidTransition, .idempotencyConflict, .notFound:
                logger.info("status answer not applied", metadata: ["partner.id": c.contract.partnerId, "tranche.id": String(confirmation.trancheId), "reason": "\(e)"])
                return true
            default:
                return nil
            }
        } catch {
            return nil
        }
    }

    // MARK: Platform

    /// The type of a platform message as the store writes them (`{"type":"loan.funded",…}`),
    /// read without decoding; nil for anything else, which a drop counts as "unknown".
    static func platformMessageType(_ payload: [UInt8]) -> String? {
        let prefix = Array(#"{"type":""#.utf8)
        guard payload.count > prefix.count, payload.starts(with: prefix),
              let end = payload[prefix.count...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        let type = String(decoding: payload[prefix.count..<end], as: UTF8.self)
        return type == "loan.funded" || type == "loan.unfunded" ? type : nil
    }

    func notifyPlatform(_ p: OutboxPayload) async -> Delivery {
        guard let endpoint = platformEndpoint else {
            metrics.increment("jointlend_outbox_deliveries_total", [("destination", "platform"), ("type", p.type), ("result", "dropped")])
            return .done(nil)
        }
        let record: LoanRecord?
        do { record = try await store.loan(id: p.tranche.loanId) } catch { return .retry("store read failed") }
        guard let record else { return .done(nil) }
        let body = Self.webhookBody(p, record)
        let now = clock()
        let target = endpoint.basePath.isEmpty ? "/" : endpoint.basePath
        let message: PartnerWire.Message
        do {
            message = try PartnerWire.sign(.request, method: .POST, target: target, body: body, signer: platformSigner, timestamp: now, nonce: PartnerSigner.makeNonce())
        } catch {
            return .retry("signing failed: \(error.code)")
        }
        do {
            let r = try await exchange(HTTPClient.Request(method: .POST, host: endpoint.host, port: endpoint.port, target: message.target,
                                                          headers: message.headers, body: message.body))
            return (200..<300).contains(r.status) ? .done(nil) : .retry("platform answered \(r.status)")
        } catch {
            return .retry("\(error)")
        }
    }

    /// The platform's view of a final loan: its state, its tranches and, if unfunded, why.
    static func webhookBody(_ p: OutboxPayload, _ r: LoanRecord) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("type", .string(p.type)), ("loanId", .string(r.loan.loanId)), ("state", .string(r.state.rawValue)),
            ("amountMinor", .number(String(r.loan.amountMinor))), ("currency", .string(r.loan.currency.code)),
            ("deadlineAt", .number(String(r.deadlineAt))),
        ]
        if let reason = p.reason { members.append(("reason", .string(reason))) }
        members.append(("tranches", .array(r.tranches.map(GatewayAPI.encode))))
        return .object(members)
    }
}
