import Foundation
import Synchronization
import Testing
@testable import Gateway
import HTTP
import LendingCore
import PartnerSigning
import Storage

/// A clock the tests fast-forward: real unix seconds plus an offset.
final class TestClock: Sendable {
    let offset = Atomic<Int64>(0)
    var now: Int64 { Int64(Date().timeIntervalSince1970) + offset.load(ordering: .relaxed) }
    func advance(_ seconds: Int64) { offset.add(seconds, ordering: .relaxed) }
    var function: @Sendable () -> Int64 { { [self] in now } }
}

/// The platform's side: receives and verifies the gateway's signed webhooks.
final class PlatformReceiver: Sendable {
    struct Webhook: Sendable {
        var type: String
        var loanId: String
        var state: String
        var body: JSONValue
        var receivedNanoseconds: UInt64
    }

    final class Inbox: Sendable {
        let received = Mutex<[Webhook]>([])
        let rejected = Atomic<Int>(0)
    }

    let server: HTTPServer
    let inbox = Inbox()
    var rejected: Int { inbox.rejected.load(ordering: .relaxed) }

    init(secret: [UInt8], keyId: String, clock: @escaping @Sendable () -> Int64) throws {
        let verifier = try PartnerVerifier(scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
                                           keyRing: VerifyingKeyRing([.init(id: keyId, key: try VerifyingKey(algorithm: .hmacSHA256, material: secret))]),
                                           replayGuard: NonceReplayGuard())
        var router = HTTP.Router()
        let inbox = self.inbox
        router.onSync(.POST, "/webhook") { req, _ in
            do {
                try verifier.verify(.request, method: "POST", pathAndQuery: req.target, headers: req.headers.fields, body: req.body, now: clock())
            } catch {
                inbox.rejected.add(1, ordering: .relaxed)
                throw HTTPError(.unauthorized, code: "signature_invalid", message: "bad signature")
            }
            let json = try JSONParser.parse(req.body)
            guard case .string(let type)? = json["type"], case .string(let loanId)? = json["loanId"], case .string(let state)? = json["state"] else {
                throw HTTPError(.badRequest, code: "invalid", message: "missing fields")
            }
            let at = DispatchTime.now().uptimeNanoseconds
            inbox.received.withLock { $0.append(Webhook(type: type, loanId: loanId, state: state, body: json, receivedNanoseconds: at)) }
            return Response.json(#"{"ok":true}"#)
        }
        var config = HTTPServer.Configuration()
        config.port = 0
        config.eventLoopCount = 1
        server = HTTPServer(configuration: config, responder: try router.freeze(), logger: GatewayHarness.quietLogger)
        try server.start()
    }

    var url: String { "http://127.0.0.1:\(server.port)/webhook" }
    var webhooks: [Webhook] { inbox.received.withLock { $0 } }
}

/// A whole gateway in-process with simulated partners on port 0, a fake platform and a clock
/// the test controls.
final class GatewayHarness: Sendable {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let partnerIds = ["bank-a", "bank-b", "bank-c"]

    let clock = TestClock()
    let directory: String
    let gateway: GatewayServer
    let platform: PlatformReceiver
    let simulators: [String: PartnerSimulator]
    let platformSigner: PartnerSigner
    let client = HTTPClient()

    /// - Parameters:
    ///   - faults: per partner (missing: none).
    ///   - tune: adjusts the dispatcher's settings.
    init(faults: [String: PartnerSimulator.Faults] = [:], seed: UInt64 = 42, callbackDelayMilliseconds: Int = 10,
         sweepIntervalMilliseconds: Int = 20, extraRules: [[String: Any]] = [], deadPartners: Set<String> = [], baseURLs: [String: String] = [:], testMode: Bool = false, tune: (inout OutboxDispatcher.Configuration) -> Void = { _ in }) async throws {
        directory = NSTemporaryDirectory() + "jl-connector-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let secretPath = "\(Self.repoRoot)/Config/keys/platform-dev.secret"
        let secret = Array(try Data(contentsOf: URL(fileURLWithPath: secretPath)))
        platformSigner = try PartnerSigner(scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
                                           keyRing: SigningKeyRing([.init(id: "platform-dev-1", key: try SigningKey(algorithm: .hmacSHA256, material: secret))]))
        let clockFunction = clock.function
        platform = try PlatformReceiver(secret: secret, keyId: "platform-dev-1", clock: clockFunction)

        // The shipped configuration with absolute paths and a fast sweeper.
        var root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.repoRoot)/Config/gateway.json"))) as? [String: Any] ?? [:]
        root["contractsDir"] = "\(Self.repoRoot)/Contracts"
        root["dataDir"] = directory
        root["platform"] = ["keyId": "platform-dev-1", "secretFile": secretPath, "webhookUrl": platform.url]
        root["outbox"] = ["sweepIntervalMilliseconds": sweepIntervalMilliseconds]
        if !extraRules.isEmpty, var ruleSet = root["ruleSet"] as? [String: Any], let rules = ruleSet["rules"] as? [Any] {
            ruleSet["rules"] = extraRules + rules
            root["ruleSet"] = ruleSet
        }
        let configPath = "\(directory)/gateway.json"
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: configPath))

        let contracts = try PartnerContract.loadAll(directory: "\(Self.repoRoot)/Contracts")
        var sims: [String: PartnerSimulator] = [:]
        for (k, c) in contracts.enumerated() where Self.partnerIds.contains(c.partnerId) {
            var sc = PartnerSimulator.Configuration()
            sc.port = 0
            sc.callbackDelayMilliseconds = callbackDelayMilliseconds
            sc.faults = faults[c.partnerId] ?? .init()
            sc.seed = seed &+ UInt64(k)
            let sim = try PartnerSimulator(contract: c, configuration: sc, clock: clockFunction, logger: Self.quietLogger)
            try sim.start()
            sims[c.partnerId] = sim
        }
        simulators = sims

        var options = GatewayServer.Options()
        options.configPath = configPath
        options.listenPort = 0
        options.eventLoops = 1
        options.clock = clockFunction
        options.testMode = testMode
        options.logger = Self.quietLogger
        options.dispatcher.pollIntervalMilliseconds = 5
        options.dispatcher.jitterSeed = seed
        options.dispatcher.partnerBaseURLs = sims.mapValues { "http://127.0.0.1:\($0.port)" }
        // Port 1 on loopback refuses connections: a partner that is down.
        for id in deadPartners { options.dispatcher.partnerBaseURLs[id] = "http://127.0.0.1:1" }
        for (id, url) in baseURLs { options.dispatcher.partnerBaseURLs[id] = url }
        tune(&options.dispatcher)
        gateway = try await GatewayServer(options: options)
        try gateway.start()
        for sim in sims.values { try sim.setGatewayURL("http://127.0.0.1:\(gateway.port)") }
    }

    /// Pool 30% and two banks 35% each: the one rule shape where a funded partner tranche can
    /// be released (the other bank never funds).
    static var twoBankRule: [String: Any] { [
        "id": "two-banks", "match": ["products": ["twobank"]],
        "funding": ["mode": "coFunding", "shares": [["funderId": "pool-main", "bps": 3000], ["funderId": "bank-a", "bps": 3500], ["funderId": "bank-b", "bps": 3500]]],
        "fallbacks": ["pool-reserve"],
    ] }

    static let quietLogger = HTTP.Logger(label: "test", logLevel: .critical)

    /// Stops everything; `keepDatabase` leaves the data directory for `jointlend ledger verify`.
    func stop(keepDatabase: Bool = false) {
        for s in simulators.values { s.stop() }
        gateway.stop()
        platform.server.shutdown(graceMilliseconds: 100)
        client.shutdown()
        if !keepDatabase { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Posts an approved loan signed by the platform; returns the HTTP status.
    func postLoan(_ loan: Loan) async throws -> Int {
        let body = JSONWriter.string(LoanCodec.encode(loan))
        let m = try PartnerWire.sign(.request, method: .POST, target: "/v1/loans", body: try JSONParser.parse(body), signer: platformSigner,
                                     timestamp: clock.now, nonce: PartnerSigner.makeNonce())
        let r = try await client.execute(
            HTTPClient.Request(method: .POST, host: "127.0.0.1", port: gateway.port, target: m.target, headers: m.headers, body: m.body),
            timeoutMilliseconds: 10_000)
        return r.status
    }

    /// An unsigned request to the gateway (test-mode routes need no signature).
    func send(_ method: HTTPMethod, _ target: String, headers: HTTPHeaders = [:], body: [UInt8] = []) async throws -> HTTPClient.Response {
        try await client.execute(HTTPClient.Request(method: method, host: "127.0.0.1", port: gateway.port, target: target, headers: headers, body: body),
                                 timeoutMilliseconds: 10_000)
    }

    static func loanIdOf(trancheId: Int64, in store: SQLiteStore) throws -> String? {
        try store.trancheStatus(id: trancheId)?.loanId
    }

    static func loan(_ n: Int, approvedAt: Int64, product: String = "consumer", grade: String = "B", amountMinor: Int64 = 1_000_001) -> Loan {
        Loan(loanId: "L-\(n)", borrowerRef: "BRW-\(n)", amountMinor: amountMinor, currency: Currency(code: "CNY")!, termMonths: 12,
             annualRateBps: 1800, product: product, riskGrade: grade, region: "GD", channel: "app", approvedAt: approvedAt)
    }

    /// Polls `condition` every 10 ms until it holds or `seconds` pass (real time).
    func waitUntil(seconds: Double = 20, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try await condition() { return true }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return try await condition()
    }

    func loanState(_ id: String) async throws -> LoanRecord? { try await gateway.store.loan(id: id) }
}
