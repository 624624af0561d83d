import Foundation
import HTTP
import LendingCore
import PartnerSigning
@testable import Gateway

/// A real gateway on a loopback port with a fresh database, and signed clients for the platform
/// and the partners, as the end-to-end tests and the demo use them.
final class LoopbackGateway: @unchecked Sendable {
    // @unchecked: fields are set once in init; the clock offset is atomic-free but only written by the test's own task.
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    let server: GatewayServer
    let client = HTTPClient()
    let dataDirectory: String
    let platformSigner: PartnerSigner
    let now: Int64

    init(now: Int64 = Int64(Date().timeIntervalSince1970)) async throws {
        self.now = now
        dataDirectory = NSTemporaryDirectory() + "jl-e2e-\(UUID().uuidString)"
        var options = GatewayServer.Options()
        options.configPath = "\(Self.repoRoot)/Config/gateway.json"
        options.listenHost = "127.0.0.1"
        options.listenPort = 0
        options.dataDirectory = dataDirectory
        options.eventLoops = 1
        options.clock = { now }
        options.logger = HTTP.Logger(label: "e2e", logLevel: .critical)
        server = try await GatewayServer(options: options)
        try server.start()
        let secret = Array(FileManager.default.contents(atPath: "\(Self.repoRoot)/Config/keys/platform-dev.secret")!)
        platformSigner = try PartnerSigner(
            scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
            keyRing: SigningKeyRing([.init(id: "platform-dev-1", key: try SigningKey(algorithm: .hmacSHA256, material: secret))]))
    }

    func stop() {
        client.shutdown()
        server.stop()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    func send(_ method: HTTPMethod, _ target: String, body: [UInt8] = [], headers: [(String, String)] = []) async throws -> HTTPClient.Response {
        var h = HTTPHeaders()
        for (n, v) in headers { h.add(name: n, value: v) }
        if !body.isEmpty { h.add(name: "Content-Type", value: "application/json") }
        return try await client.execute(HTTPClient.Request(method: method, host: "127.0.0.1", port: server.port, target: target, headers: h, body: body),
                                        timeoutMilliseconds: 5_000)
    }

    /// Sends a request signed by the platform (JL1 HMAC-SHA256).
    func platform(_ method: HTTPMethod, _ target: String, body: [UInt8] = [], nonce: String = PartnerSigner.makeNonce(), timestamp: Int64? = nil) async throws -> HTTPClient.Response {
        let signed = try platformSigner.sign(.request, method: method.rawValue, pathAndQuery: target, body: body, timestamp: timestamp ?? now, nonce: nonce)
        return try await send(method, target, body: body, headers: signed.headers.map { ($0.name, $0.value) })
    }

    /// The partner's own signer (its private key or shared secret from the contract's test keys).
    func partnerSigner(_ partnerId: String) throws -> PartnerSigner {
        let contract = try PartnerContract.load(file: "\(Self.repoRoot)/Contracts/\(partnerId)/partner.json")
        let keyFile: String
        switch contract.scheme.algorithm {
        case .hmacSHA256: keyFile = "keys/shared/secret"
        default: keyFile = "keys/partner/private.pem"
        }
        let material = Array(FileManager.default.contents(atPath: "\(contract.directory)/\(keyFile)")!)
        let id = contract.partnerKeys.entries[0].id
        return try PartnerSigner(scheme: contract.scheme, keyRing: SigningKeyRing([.init(id: id, key: try SigningKey(algorithm: contract.scheme.algorithm, material: material))]))
    }

    /// Posts a confirmation signed by the partner in its scheme.
    func confirm(_ partnerId: String, body: JSONValue, nonce: String = PartnerSigner.makeNonce()) async throws -> HTTPClient.Response {
        let signer = try partnerSigner(partnerId)
        let target = "/v1/partners/\(partnerId)/confirmations"
        var bytes = Array(JSONWriter.string(body).utf8)
        let signed = try signer.sign(.callback, method: "POST", pathAndQuery: target, body: bytes, timestamp: now, nonce: nonce)
        if signer.scheme.format == .sortedParams, case .object(var members) = body {
            for p in signed.parameters { members.append((p.name, .string(p.value))) }
            bytes = Array(JSONWriter.string(.object(members)).utf8)
        }
        return try await send(.POST, target, body: bytes, headers: signed.headers.map { ($0.name, $0.value) })
    }

    static func loan(_ id: String, amount: Int64 = 1_000_001, product: String = "consumer", grade: String = "B", region: String = "GD", approvedAt: Int64) -> [UInt8] {
        Array(#"{"loanId":"\#(id)","borrowerRef":"BRW-\#(id)","amountMinor":\#(amount),"currency":"CNY","termMonths":12,"annualRateBps":1800,"product":"\#(product)","riskGrade":"\#(grade)","region":"\#(region)","channel":"app","approvedAt":\#(approvedAt)}"#.utf8)
    }
}

extension HTTPClient.Response {
    var json: JSONValue? { try? JSONParser.parse(body) }
    var text: String { String(decoding: body, as: UTF8.self) }
}
