import Foundation
import HTTP
import LendingCore
import PartnerSigning
import Storage

/// The gateway's HTTP API: handlers for the platform, partner banks and operators, on the HTTP
/// module's router. Every error is `{"error":{"code","message","field"}}` with a stable code;
/// signature failures answer 401 with no detail of which part failed (the log says which).
public final class GatewayAPI: Sendable {
    public let config: GatewayConfig
    public let store: any Store
    /// Positions read the SQLite store directly (a PostgreSQL store will offer the same read).
    let positions: (@Sendable (String, Int64) throws -> PartnerPosition)?
    /// The facts a confirmation's stated loan, amount and currency are checked against.
    let trancheFacts: (@Sendable (Int64) throws -> TrancheFacts?)?
    public let contracts: [String: PartnerContract]
    public let metrics: Metrics
    let platformVerifier: PartnerVerifier
    /// Per partner id: contract, verifier, signer and counters in one lookup.
    let partners: [String: PartnerBinding]
    let rateLimiter: RateLimiter
    let requestStats = RequestStats(routePatterns: GatewayAPI.routeTable.map(\.path), bucketsSeconds: Metrics.latencyBucketsSeconds)
    /// Unix seconds. Injected so tests (and the chaos test's fast-forwarded clock) control time.
    let clock: @Sendable () -> Int64
    let readiness: @Sendable () -> String?
    /// Registered only in explicit test mode (`serve --test-mode`): contract provider states.
    let testRoutes: (@Sendable (inout HTTP.Router) -> Void)?

    public init(
        config: GatewayConfig, store: any Store, contracts: [PartnerContract], platformSecret: [UInt8], metrics: Metrics = Metrics(),
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        readiness: @escaping @Sendable () -> String? = { nil },
        positions: (@Sendable (String, Int64) throws -> PartnerPosition)? = nil,
        trancheFacts: (@Sendable (Int64) throws -> TrancheFacts?)? = nil,
        testRoutes: (@Sendable (inout HTTP.Router) -> Void)? = nil
    ) throws {
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.readiness = readiness
        self.testRoutes = testRoutes
        self.positions = positions
        self.trancheFacts = trancheFacts
        var byId: [String: PartnerContract] = [:]
        for c in contracts { byId[c.partnerId] = c }
        self.contracts = byId
        // One replay guard for all verifiers: nonces are keyed by key id, evicted by time, and
        // kept twice the widest timestamp tolerance configured (platform or any partner, each
        // 1...3600 s), so every verifier's window is covered.
        let platformScheme = SigningScheme(format: .jl1, algorithm: .hmacSHA256, timestampToleranceSeconds: config.runtime.platform.timestampToleranceSeconds)
        let replayGuard = NonceReplayGuard(entriesMax: config.runtime.replayNoncesMax, covering: [platformScheme] + contracts.map(\.scheme))
        let platformKey = try VerifyingKey(algorithm: .hmacSHA256, material: platformSecret)
        platformVerifier = try PartnerVerifier(
            scheme: platformScheme,
            keyRing: VerifyingKeyRing([.init(id: config.runtime.platform.keyId, key: platformKey)]), replayGuard: replayGuard)
        // Described first: resolving a counter creates its family, and the help text is set once.
        Self.describeMetrics(metrics)
        partners = try byId.mapValues { try PartnerBinding(contract: $0, replayGuard: replayGuard, metrics: metrics) }
        var policies: [String: RateLimiter.Policy] = ["platform": .init(ratePerSecond: config.runtime.platformRateLimit.ratePerSecond, burst: config.runtime.platformRateLimit.burst)]
        for id in byId.keys {
            policies["partner:\(id)"] = .init(ratePerSecond: config.runtime.partnerRateLimit.ratePerSecond, burst: config.runtime.partnerRateLimit.burst)
        }
        rateLimiter = RateLimiter(defaultPolicy: .init(ratePerSecond: config.runtime.partnerRateLimit.ratePerSecond, burst: config.runtime.partnerRateLimit.burst), policies: policies)
        metrics.collectText { [requestStats] in requestStats.render() }
        // Live nonces against the bound: at the bound, signed requests are refused (replay_guard_full).
        metrics.collect { [replayGuard] in
            [("jointlend_replay_nonces", "Nonces the replay guard holds (kept twice the timestamp tolerance).", "", Double(replayGuard.count)),
             ("jointlend_replay_nonces_max", "Bound on held nonces (server.replayNoncesMax); at it, signed requests are refused.", "",
              Double(replayGuard.configuration.entriesMax))]
        }
    }

    static func describeMetrics(_ m: Metrics) {
        m.describe(counter: "jointlend_routing_decisions_total", help: "Routing decisions by outcome (planned or the rejection code).")
        m.describe(counter: confirmationsMetric, help: "Partner confirmations by partner and outcome.")
        m.describe(counter: "jointlend_signature_failures_total", help: "Rejected signatures by caller and error code.")
    }

    static let confirmationsMetric = "jointlend_confirmations_total"

    /// Every route of the API. `routeTable` is compared against Contracts/openapi.json by a test.
    public static let routeTable: [(method: String, path: String)] = [
        ("POST", "/v1/loans"), ("GET", "/v1/loans/{loanId}"),
        ("POST", "/v1/partners/{partnerId}/confirmations"),
        ("GET", "/v1/partners"), ("GET", "/v1/partners/{partnerId}/position"),
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ]

    public func makeResponder() throws -> RouterResponder {
        var router = HTTP.Router()
        // Built once: liveness probes and load balancers call this constantly.
        let healthy = Response.json(#"{"status":"ok"}"#)
        router.onSync(.GET, "/healthz") { _, _ in healthy }
        router.get("/readyz") { [self] _, _ in
            if let problem = readiness() {
                throw HTTPError(.serviceUnavailable, code: "not_ready", message: problem, headers: ["Retry-After": "1"])
            }
            return Response.json(#"{"status":"ready"}"#)
        }
        router.onSync(.GET, "/metrics") { [metrics] _, _ in
            var r = Response.text(metrics.render())
            r.headers.replaceOrAdd(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            return r
        }
        router.post("/v1/loans") { [self] req, ctx in try await postLoan(req, ctx) }
        router.get("/v1/loans/{loanId}") { [self] req, ctx in try await getLoan(req, ctx) }
        router.post("/v1/partners/{partnerId}/confirmations") { [self] req, ctx in try await postConfirmation(req, ctx) }
        router.get("/v1/partners") { [self] req, ctx in try getPartners(req, ctx) }
        router.get("/v1/partners/{partnerId}/position") { [self] req, ctx in try await getPosition(req, ctx) }
        testRoutes?(&router)
        return try router.freeze()
    }

    /// Feeds the server's per-request observations into the registry.
    public func observe(_ m: RequestMetrics) { requestStats.record(m) }

    // MARK: - Authentication

    /// Verifies the platform's JL1 signature, then its rate limit. Fails closed.
    func authenticatePlatform(_ req: Request, _ ctx: RequestContext) throws(HTTPError) {
        do {
            try platformVerifier.verify(.request, method: req.method.rawValue, pathAndQuery: req.target, headers: req.headers.fields, body: req.body, now: clock())
        } catch {
            metrics.increment("jointlend_signature_failures_total", [("caller", "platform"), ("code", error.code)])
            ctx.logger.warning("platform signature rejected", metadata: ["signature.error": error.description])
            throw Self.unauthorized(error, format: .jl1)
        }
        try rateLimiter.check(callerID: "platform")
    }

    /// 401: one message for every cause; `code` names the check that failed and `field` where
    /// to look — the header or parameter at fault when one is, else where the scheme carries its
    /// signature. Never a value: `SigningError` names fields only.
    static func unauthorized(_ error: SigningError, format: MessageFormat) -> HTTPError {
        let field: String
        if case .headerMalformed(let name) = error {
            field = name
        } else {
            switch format {
            case .jl1: field = "Authorization"
            case .wechatpayV3: field = "Wechatpay-Signature"
            case .sortedParams: field = "$.sign"
            }
        }
        return HTTPError(.unauthorized, code: error.code, message: "request signature could not be verified", field: field)
    }

    // MARK: - Loans

    func postLoan(_ req: Request, _ ctx: RequestContext) async throws -> Response {
        try authenticatePlatform(req, ctx)
        let loan: Loan
        do { loan = try LoanCodec.decodeLoan(req.body) } catch {
            throw HTTPError(.badRequest, code: "invalid_field", message: error.message, field: error.field)
        }
        // A loan approved in the future is a clock or data error upstream; the window matches the signature's.
        if loan.approvedAt > clock() + config.runtime.platform.timestampToleranceSeconds {
            throw HTTPError(.badRequest, code: "invalid_field", message: "approvedAt is in the future", field: "$.approvedAt")
        }
        if loan.currency != config.currency {
            throw HTTPError(.badRequest, code: "invalid_field", message: "currency must be \(config.currency.code)", field: "$.currency")
        }
        let result = try await storeCall { try await store.intake(loan, now: clock()) }
        switch result {
        case .planned(let loanId, let state, let tranches):
            metrics.increment("jointlend_routing_decisions_total", [("outcome", "planned")])
            ctx.logger.info("loan routed", metadata: ["loan.id": loanId, "tranches": String(tranches.count)])
            return Response.json(JSONWriter.string(.object([
                ("loanId", .string(loanId)), ("state", .string(state.rawValue)),
                ("deadlineAt", .number(String(config.makeRouterDeadline(loan.approvedAt)))),
                ("tranches", .array(tranches.map(Self.encode))),
            ])), status: .created)
        case .rejected(let r):
            metrics.increment("jointlend_routing_decisions_total", [("outcome", r.code.rawValue)])
            ctx.logger.info("loan rejected for funding", metadata: ["loan.id": loan.loanId, "reason": r.code.rawValue])
            throw HTTPError(.unprocessableContent, code: r.code.rawValue, message: r.detail)
        }
    }

    func getLoan(_ req: Request, _ ctx: RequestContext) async throws -> Response {
        try authenticatePlatform(req, ctx)
        let id = try ctx.parameter("loanId")
        guard id.utf8.count <= Loan.Limits.idBytesMax else { throw HTTPError(.badRequest, code: "invalid_field", message: "longer than 64 bytes", field: "loanId") }
        guard let record = try await storeCall({ try await store.loan(id: id) }) else {
            throw HTTPError(.notFound, code: "loan_not_found", message: "no loan with this id", field: "loanId")
        }
        return Response.json(JSONWriter.string(Self.encode(record)))
    }

    static func encode(_ t: TrancheRecord) -> JSONValue {
        .object([
            ("trancheId", .number(String(t.id))), ("funderId", .string(t.funderId)), ("kind", .string(t.kind.rawValue)),
            ("shareBps", .number(String(t.shareBps))), ("amountMinor", .number(String(t.amountMinor))), ("state", .string(t.state.rawValue)),
        ])
    }

    static func encode(_ r: LoanRecord) -> JSONValue {
        .object([
            ("loanId", .string(r.loan.loanId)), ("state", .string(r.state.rawValue)), ("amountMinor", .number(String(r.loan.amountMinor))),
            ("currency", .string(r.loan.currency.code)), ("ruleId", .string(r.ruleId)), ("ruleVersion", .number(String(r.ruleVersion))),
            ("approvedAt", .number(String(r.loan.approvedAt))), ("deadlineAt", .number(String(r.deadlineAt))),
            ("tranches", .array(r.tranches.map(encode))),
            ("history", .array(history(r))),
        ])
    }

    /// The loan's funding story in order: approval, routing under its rule, every tranche (a
    /// declined or expired one is followed by its replacement), and where funding ended.
    static func history(_ r: LoanRecord) -> [JSONValue] {
        var events: [JSONValue] = [
            .object([("event", .string("approved")), ("at", .number(String(r.loan.approvedAt)))]),
            .object([("event", .string("routed")), ("ruleId", .string(r.ruleId)), ("ruleVersion", .number(String(r.ruleVersion)))]),
        ]
        for t in r.tranches.sorted(by: { $0.id < $1.id }) {
            events.append(.object([
                ("event", .string("tranche.\(t.state.rawValue)")), ("trancheId", .number(String(t.id))),
                ("funderId", .string(t.funderId)), ("amountMinor", .number(String(t.amountMinor))),
            ]))
        }
        if r.state != .awaitingFunding {
            events.append(.object([("event", .string("loan.\(r.state.rawValue)"))]))
        } else {
            events.append(.object([("event", .string("awaiting_funding")), ("deadlineAt", .number(String(r.deadlineAt)))]))
        }
        return events
    }

    // MARK: - Partners

    func partner(_ ctx: RequestContext) throws(HTTPError) -> PartnerBinding {
        let id = try ctx.parameter("partnerId")
        guard let p = partners[id] else { throw HTTPError(.notFound, code: "partner_not_found", message: "no partner with this id", field: "partnerId") }
        return p
    }

    func contract(_ ctx: RequestContext) throws(HTTPError) -> PartnerContract { try partner(ctx).contract }

    func postConfirmation(_ req: Request, _ ctx: RequestContext) async throws -> Response {
        // The binding is a class: reading through it borrows the contract instead of copying it.
        let partner = try partner(ctx)
        let now = clock()
        do {
            try partner.verifier.verify(.callback, method: req.method.rawValue, pathAndQuery: req.target, headers: req.headers.fields, body: req.body, now: now)
        } catch {
            metrics.increment("jointlend_signature_failures_total", [("caller", partner.contract.partnerId), ("code", error.code)])
            ctx.logger.warning("partner signature rejected", metadata: ["partner.id": partner.contract.partnerId, "signature.error": error.description])
            throw Self.unauthorized(error, format: partner.contract.scheme.format)
        }
        // From here the request is the partner's own: every answer, an error too, is signed in
        // its scheme, so the bank can trust a 409 or a 503 as much as an ack.
        do {
            return try await applyConfirmation(req, ctx, partner: partner, now: now)
        } catch let error as HTTPError {
            return try signedError(error, partner: partner, now: now)
        }
    }

    func applyConfirmation(_ req: Request, _ ctx: RequestContext, partner: PartnerBinding, now: Int64) async throws -> Response {
        try rateLimiter.check(callerID: partner.rateLimitCallerID)
        let decoded = try ConfirmationCodec.decode(req.body, names: partner.fieldNames)
        let confirmation = decoded.confirmation
        try checkStatedFacts(decoded.stated, confirmation, partner: partner)
        let result = try await storeCall { try await store.confirm(confirmation, now: now) }
        partner.confirmations(confirmation.outcome).increment()
        ctx.logger.info("confirmation applied", fields: ["partner.id": partner.contract.partnerId, "tranche.id": String(result.trancheId), "loan.state": result.loanState.rawValue])
        var ack = JSONObjectBytes()
        ack.string("serial", confirmation.serial)
        ack.number("trancheId", result.trancheId)
        ack.string("trancheState", result.trancheState.rawValue)
        ack.string("loanId", result.loanId)
        ack.string("loanState", result.loanState.rawValue)
        if let r = result.replacement { ack.value("replacement", Self.encode(r)) }
        if let u = result.unfundedReason { ack.string("unfundedReason", u.rawValue) }
        return try signedResponse(consume ack, partner: partner, now: now)
    }

    /// A partner that states the tranche's loan, amount or currency must state them right: an
    /// amount that differs is answered 409 `confirmation_mismatch` and nothing is applied.
    func checkStatedFacts(_ stated: ConfirmationCodec.Stated, _ c: FundingConfirmation, partner: PartnerBinding) throws {
        guard stated.amountMinor != nil || stated.loanId != nil || stated.currency != nil,
              let facts = try trancheFacts?(c.trancheId), facts.funderId == partner.contract.partnerId else { return }
        func mismatch(_ field: String) -> HTTPError {
            HTTPError(.conflict, code: "confirmation_mismatch", message: "does not match the tranche", field: "$.\(partner.contract.partnerField(field))")
        }
        if let a = stated.amountMinor, a != facts.amountMinor { throw mismatch("amountMinor") }
        if let l = stated.loanId, l != facts.loanId { throw mismatch("loanId") }
        if let cur = stated.currency, cur != facts.currency { throw mismatch("currency") }
    }

    /// Signs an ack in the partner's scheme: headers for `jl1`/`wechatpay-v3`, parameters added to
    /// the JSON body for `sorted-params`.
    /// `ack` is consumed: finishing the one copy there is appends in place, where finishing a
    /// copy of a borrowed ack copied its bytes first.
    func signedResponse(_ ack: consuming JSONObjectBytes, partner: PartnerBinding, now: Int64, status: HTTPStatus = .ok) throws -> Response {
        if partner.contract.scheme.format == .sortedParams {
            var withParameters = copy ack
            let signed = try partner.signer.sign(.response, body: ack.finish(), timestamp: now, nonce: PartnerSigner.makeNonce())
            for p in signed.parameters { withParameters.string(p.name, p.value) }
            return Response.json(bytes: withParameters.finish(), status: status)
        }
        let bytes = ack.finish()
        let signed = try partner.signer.sign(.response, body: bytes, timestamp: now, nonce: PartnerSigner.makeNonce())
        return Response.json(bytes: bytes, status: status, adding: signed.headers)
    }

    /// An error answer to a verified partner request: the usual error body (for `sorted-params`
    /// with the signing parameters beside `error`), its headers (`Retry-After`), signed.
    func signedError(_ error: HTTPError, partner: PartnerBinding, now: Int64) throws -> Response {
        var body = JSONObjectBytes()
        body.value("error", .object([("code", .string(error.code)), ("message", .string(error.message)), ("field", error.field.map { .string($0) } ?? .null)]))
        var response = try signedResponse(body, partner: partner, now: now, status: error.status)
        for field in error.headers { response.headers.add(name: field.name, value: field.value) }
        return response
    }

    func getPartners(_ req: Request, _ ctx: RequestContext) throws -> Response {
        try authenticatePlatform(req, ctx)
        let funders = config.fundersById
        let items: [JSONValue] = contracts.keys.sorted().map { id in
            let c = contracts[id]!
            let f = funders[id]
            return .object([
                ("partnerId", .string(id)), ("name", .string(c.name)), ("licenceNumber", .string(c.licenceNumber)),
                ("signing", .object([("format", .string(c.scheme.format.rawValue)), ("algorithm", .string(c.scheme.algorithm.rawValue))])),
                ("routable", .bool(f != nil)),
                ("dailyQuotaMinor", f?.limits.dailyQuotaMinor.map { .number(String($0)) } ?? .null),
                ("exposureLimitMinor", f?.limits.exposureLimitMinor.map { .number(String($0)) } ?? .null),
            ])
        }
        return Response.json(JSONWriter.string(.object([("partners", .array(items))])))
    }

    func getPosition(_ req: Request, _ ctx: RequestContext) async throws -> Response {
        try authenticatePlatform(req, ctx)
        let c = try contract(ctx)
        let f = config.fundersById[c.partnerId]
        let now = clock()
        let p: PartnerPosition
        if let positions {
            p = try positions(c.partnerId, now)
        } else {
            let funded = try await storeCall { try await store.balance(account: LedgerAccounts.partnerDeployed(c.partnerId)) }
            p = PartnerPosition(exposureMinor: funded, quotaUsedTodayMinor: 0, fundedPrincipalMinor: funded)
        }
        let exposure = p.exposureMinor
        var members: [(key: String, value: JSONValue)] = [
            ("partnerId", .string(c.partnerId)), ("currency", .string(config.currency.code)),
            ("exposureMinor", .number(String(exposure))),
            ("exposureLimitMinor", f?.limits.exposureLimitMinor.map { .number(String($0)) } ?? .null),
        ]
        if let limit = f?.limits.exposureLimitMinor, limit > 0 {
            members.append(("utilisationBps", .number(String(Apportionment.mulDivHalfEven(exposure, 10_000, limit)))))
        }
        members.append(("dailyQuotaMinor", f?.limits.dailyQuotaMinor.map { .number(String($0)) } ?? .null))
        members.append(("quotaUsedTodayMinor", .number(String(p.quotaUsedTodayMinor))))
        members.append(("fundedPrincipalMinor", .number(String(p.fundedPrincipalMinor))))
        return Response.json(JSONWriter.string(.object(members)))
    }

    // MARK: - Store errors → HTTP

    func storeCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as StoreError {
            throw Self.httpError(e)
        }
    }

    static func httpError(_ e: StoreError) -> HTTPError {
        switch e {
        case .overloaded(let ms):
            return HTTPError(.serviceUnavailable, code: "overloaded", message: "the store is at capacity; retry later",
                             headers: ["Retry-After": String(max(1, (ms + 999) / 1000))])
        case .idempotencyConflict:
            return HTTPError(.conflict, code: "idempotency_conflict", message: "this key was already used with a different request")
        case .invalidCommand(let field, let reason):
            return HTTPError(.badRequest, code: "invalid_field", message: reason, field: field)
        case .notFound(let entity, _):
            return HTTPError(.notFound, code: "\(entity)_not_found", message: "no \(entity) with this id")
        case .invalidTransition(let entity, _, let from, let to):
            return HTTPError(.conflict, code: "invalid_transition", message: "\(entity) cannot go from \(from) to \(to)")
        case .unbalancedTransaction:
            return HTTPError(.internalServerError, code: "internal", message: "internal error")
        case .closed:
            return HTTPError(.serviceUnavailable, code: "shutting_down", message: "the gateway is shutting down", headers: ["Retry-After": "1"])
        case .database:
            return HTTPError(.internalServerError, code: "internal", message: "internal error")
        }
    }
}

extension GatewayConfig {
    func makeRouterDeadline(_ approvedAt: Int64) -> Int64 { approvedAt + fundingDeadlineSeconds }
}
