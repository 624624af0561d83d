import Foundation
import HTTP
import LendingCore
import PartnerSigning
import Storage
import Synchronization
import Testing
@testable import Gateway

/// A store whose writer queue is always full.
struct FullStore: Store {
    let error = StoreError.overloaded(retryAfterMilliseconds: 1_500)
    func intake(_ loan: Loan, now: Int64) async throws -> IntakeResult { throw error }
    func confirm(_ confirmation: FundingConfirmation, now: Int64) async throws -> ConfirmationResult { throw error }
    func expireOverdue(now: Int64, limit: Int) async throws -> [ExpiryResult] { throw error }
    func recordRepayment(_ repayment: Repayment, now: Int64) async throws -> RepaymentResult { throw error }
    func depositToPool(funderId: String, amountMinor: Int64, reference: String, now: Int64) async throws { throw error }
    func claimDueOutbox(now: Int64, limit: Int) async throws -> [OutboxMessage] { throw error }
    func markOutboxSent(id: Int64) async throws { throw error }
    func markOutboxFailed(id: Int64, now: Int64) async throws -> OutboxMessage.State { throw error }
    func post(_ transaction: LedgerTransaction) async throws -> Int64 { throw error }
    func appendAudit(actor: String, action: String, payload: [UInt8], now: Int64) async throws { throw error }
    func loan(id: String) async throws -> LoanRecord? { throw error }
    func balance(account: String) async throws -> Int64 { throw error }
    func outboxMessage(id: Int64) async throws -> OutboxMessage? { throw error }
    func verifyLedger() async throws -> String? { nil }
    func verifyAudit() async throws -> String? { nil }
    func close() {}
}

/// Overload and readiness, through the responder with no socket (Hummingbird's `.router` style).
@Suite struct OverloadTests {
    @Test func fullStoreQueueAnswers503WithRetryAfterAndReadyzSaysNotReady() async throws {
        let root = LoopbackGateway.repoRoot
        let config = try GatewayConfig.load(path: "\(root)/Config/gateway.json")
        let contracts = try PartnerContract.loadAll(directory: "\(root)/Contracts")
        let secret = Array(FileManager.default.contents(atPath: "\(root)/Config/keys/platform-dev.secret")!)
        let now: Int64 = 1_800_000_000
        let api = try GatewayAPI(config: config, store: FullStore(), contracts: contracts, platformSecret: secret,
                                 clock: { now }, readiness: { "store queue is full" })
        let responder = try api.makeResponder()
        let signer = try PartnerSigner(scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
                                       keyRing: SigningKeyRing([.init(id: "platform-dev-1", key: try SigningKey(algorithm: .hmacSHA256, material: secret))]))
        let body = LoopbackGateway.loan("OVER-1", approvedAt: now)
        let signed = try signer.sign(.request, method: "POST", pathAndQuery: "/v1/loans", body: body, timestamp: now, nonce: PartnerSigner.makeNonce())
        let context = RequestContext(requestID: "t-1", logger: HTTP.Logger(label: "t", logLevel: .critical))
        let response = await responder.respond(to: Request(method: .POST, path: "/v1/loans", headers: HTTPHeaders(signed.headers.map { ($0.name, $0.value) }), body: body), context: context)
        #expect(response.status.code == 503)
        #expect(response.headers["Retry-After"] == "2")
        #expect(String(decoding: response.body, as: UTF8.self).contains(#""code":"overloaded""#))
        let ready = await responder.respond(to: Request(method: .GET, path: "/readyz"), context: context)
        #expect(ready.status.code == 503 && ready.headers["Retry-After"] == "1")
    }
}

@Suite struct RateLimitTests {
    @Test func platformOverItsRateGets429WithRetryAfter() async throws {
        let root = LoopbackGateway.repoRoot
        var config = try GatewayConfig.load(path: "\(root)/Config/gateway.json")
        config.runtime.platformRateLimit = .init(ratePerSecond: 1, burst: 2)
        let secret = Array(FileManager.default.contents(atPath: "\(root)/Config/keys/platform-dev.secret")!)
        let now: Int64 = 1_800_000_000
        let api = try GatewayAPI(config: config, store: FullStore(), contracts: try PartnerContract.loadAll(directory: "\(root)/Contracts"),
                                 platformSecret: secret, clock: { now })
        let responder = try api.makeResponder()
        let signer = try PartnerSigner(scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
                                       keyRing: SigningKeyRing([.init(id: "platform-dev-1", key: try SigningKey(algorithm: .hmacSHA256, material: secret))]))
        let context = RequestContext(requestID: "t-2", logger: HTTP.Logger(label: "t", logLevel: .critical))
        var statuses: [Int] = []
        for _ in 0..<3 {
            let signed = try signer.sign(.request, method: "GET", pathAndQuery: "/v1/partners", body: [], timestamp: now, nonce: PartnerSigner.makeNonce())
            let r = await responder.respond(to: Request(method: .GET, path: "/v1/partners", headers: HTTPHeaders(signed.headers.map { ($0.name, $0.value) })), context: context)
            statuses.append(r.status.code)
            if r.status.code == 429 { #expect(r.headers["Retry-After"] == "1") }
        }
        #expect(statuses == [200, 200, 429])
    }
}

@Suite struct ReplayWindowTests {
    /// Tolerances above the default (the platform's and a partner's, each up to 3600 s) start,
    /// and a nonce is still refused as long as its message could pass the timestamp check.
    @Test func widerTolerancesStartAndKeepNoncesForTheWholeWindow() async throws {
        let root = LoopbackGateway.repoRoot
        var config = try GatewayConfig.load(path: "\(root)/Config/gateway.json")
        config.runtime.platform.timestampToleranceSeconds = 1_200
        var contracts = try PartnerContract.loadAll(directory: "\(root)/Contracts")
        contracts[0].scheme.timestampToleranceSeconds = 3_600
        let secret = Array(FileManager.default.contents(atPath: "\(root)/Config/keys/platform-dev.secret")!)
        let start: Int64 = 1_800_000_000
        let now = Atomic<Int64>(start)
        let api = try GatewayAPI(config: config, store: FullStore(), contracts: contracts, platformSecret: secret, clock: { now.load(ordering: .relaxed) })
        let responder = try api.makeResponder()
        let signer = try PartnerSigner(scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
                                       keyRing: SigningKeyRing([.init(id: "platform-dev-1", key: try SigningKey(algorithm: .hmacSHA256, material: secret))]))
        let signed = try signer.sign(.request, method: "GET", pathAndQuery: "/v1/partners", body: [], timestamp: start + 1_100, nonce: PartnerSigner.makeNonce())
        let context = RequestContext(requestID: "t-3", logger: HTTP.Logger(label: "t", logLevel: .critical))
        func send() async -> Response {
            await responder.respond(to: Request(method: .GET, path: "/v1/partners", headers: HTTPHeaders(signed.headers.map { ($0.name, $0.value) })), context: context)
        }
        #expect(await send().status.code == 200)  // stamped 1,100 s ahead: inside ±1,200
        now.store(start + 2_250, ordering: .relaxed)  // 1,150 s after its stamp: still inside, and 2,250 s after first use
        let replay = await send()
        #expect(replay.status.code == 401)
        #expect(String(decoding: replay.body, as: UTF8.self).contains(#""code":"nonce_replayed""#))
    }
}

@Suite struct SignedPartnerErrorTests {
    /// A verified partner's confirmation that meets a full store gets a 503 signed in its scheme,
    /// with its Retry-After kept beside the signature headers.
    @Test func overloadAnswerToAPartnerIsSignedAndKeepsRetryAfter() async throws {
        let root = LoopbackGateway.repoRoot
        let config = try GatewayConfig.load(path: "\(root)/Config/gateway.json")
        let contract = try PartnerContract.load(file: "\(root)/Contracts/bank-a/partner.json")
        let keys = try #require(contract.simulatorKeys)
        let secret = Array(FileManager.default.contents(atPath: "\(root)/Config/keys/platform-dev.secret")!)
        let now: Int64 = 1_800_000_000
        let api = try GatewayAPI(config: config, store: FullStore(), contracts: [contract], platformSecret: secret, clock: { now })
        let responder = try api.makeResponder()
        let bank = try PartnerSigner(scheme: contract.scheme, keyRing: keys.partnerSigningKeys)
        let path = "/v1/partners/bank-a/confirmations"
        let body = Array(#"{"serial":"S-503","trancheId":1,"result":"FUNDED"}"#.utf8)
        let signed = try bank.sign(.callback, method: "POST", pathAndQuery: path, body: body, timestamp: now, nonce: PartnerSigner.makeNonce())
        let context = RequestContext(requestID: "t-4", logger: HTTP.Logger(label: "t", logLevel: .critical))
        let response = await responder.respond(to: Request(method: .POST, path: path, headers: HTTPHeaders(signed.headers.map { ($0.name, $0.value) }), body: body),
                                               context: context)
        #expect(response.status.code == 503)
        #expect(response.headers["Retry-After"] == "2")
        #expect(String(decoding: response.body, as: UTF8.self).contains(#""code":"overloaded""#))
        let bankSide = try PartnerVerifier(scheme: contract.scheme, keyRing: keys.gatewayVerifyingKeys, replayGuard: NonceReplayGuard())
        #expect(throws: Never.self) { try bankSide.verify(.response, headers: response.headers.fields, body: response.body, now: now) }
    }
}
