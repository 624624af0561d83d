import HTTP
import PartnerSigning
import Storage

/// The Pact Specification v4 files of one partner contract, built from the contract and its
/// test-only keys with fixed example inputs (tranche, timestamp, nonce), so they can be
/// regenerated and, for deterministic algorithms, compared byte for byte.
///
/// - `pacts/jointlend-gateway-<partnerId>.json`: the gateway as consumer of the partner's
///   funding request, status query and cancellation endpoints.
/// - `pacts/<partnerId>-jointlend-gateway.json`: the partner as consumer of the gateway's
///   confirmation endpoint.
///
/// Each interaction's provider state carries the example inputs as `params`, so a test (or a
/// provider-state endpoint) can rebuild the exact message.
public enum ContractPacts {
    public static let gatewayName = "jointlend-gateway"
    public static let exampleTimestamp: Int64 = 1_795_000_000
    public static let exampleTranche = PartnerWire.Tranche(trancheId: 41, loanId: "L-EXAMPLE-0001", amountMinor: 700_001, currency: "CNY")

    /// One interaction's example inputs.
    public struct Example: Sendable {
        public var description: String
        public var state: String
        public var nonce: String
        public var code: String?
    }

    public static func gatewayPactFile(_ c: PartnerContract) -> String { gatewayPactFile(partnerId: c.partnerId) }
    public static func partnerPactFile(_ c: PartnerContract) -> String { partnerPactFile(partnerId: c.partnerId) }
    public static func gatewayPactFile(partnerId: String) -> String { "pacts/\(gatewayName)-\(partnerId).json" }
    public static func partnerPactFile(partnerId: String) -> String { "pacts/\(partnerId)-\(gatewayName).json" }

    public struct GenerationError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Both pact documents (file path relative to the contract folder, JSON).
    public static func generate(_ c: PartnerContract) throws -> [(path: String, json: JSONValue)] {
        guard let keys = c.simulatorKeys else {
            throw GenerationError(description: "\(c.partnerId): the contract has no `simulator` test keys to sign the partner's examples with")
        }
        guard let funded = c.resultCodes.filter({ $0.value == .funded }).keys.sorted().first else {
            throw GenerationError(description: "\(c.partnerId): no result code maps to funded")
        }
        let wire = try PartnerWire(contract: c)
        let gatewaySigner = try c.makeSigner()
        let partnerSigner = try PartnerSigner(scheme: c.scheme, keyRing: keys.partnerSigningKeys)
        let t = exampleTranche, ts = exampleTimestamp

        func response(_ code: String, nonce: String) throws -> JSONValue {
            let m = try PartnerWire.sign(.response, method: .POST, target: "", body: wire.answerBody(t, code: code), signer: partnerSigner, timestamp: ts, nonce: nonce)
            return httpResponse(200, m.headers, m.body)
        }
        let request = try wire.fundingRequest(t, signer: gatewaySigner, timestamp: ts, nonce: "pactFundingRequest0001")
        let status = try wire.statusQuery(t, signer: gatewaySigner, timestamp: ts, nonce: "pactStatusQuery0000001")
        let cancel = try wire.cancellation(t, reason: "released", signer: gatewaySigner, timestamp: ts, nonce: "pactCancellation000001")
        let gatewayInteractions: [JSONValue] = [
            interaction("a funding request for a tranche", state: "the partner can take tranche \(t.trancheId)", params: params(t, nonce: "pactFundingRequest0001"),
                        request: httpRequest(request), response: try response("PROCESSING", nonce: "pactFundingAnswer00001")),
            interaction("a status query for a decided tranche", state: "tranche \(t.trancheId) is funded", params: params(t, nonce: "pactStatusQuery0000001"),
                        request: httpRequest(status), response: try response(funded, nonce: "pactStatusAnswer000001")),
            interaction("a cancellation of a released tranche", state: "tranche \(t.trancheId) is funded", params: params(t, nonce: "pactCancellation000001", reason: "released"),
                        request: httpRequest(cancel), response: try response("CANCELLED", nonce: "pactCancelAnswer000001")),
        ]
        let callback = try PartnerWire.sign(.callback, method: .POST, target: "/v1/partners/\(c.partnerId)/confirmations", body: wire.answerBody(t, code: funded),
                                            signer: partnerSigner, timestamp: ts, nonce: "pactConfirmation000001")
        var ack: [(key: String, value: JSONValue)] = [
            ("serial", .string(t.serial)), ("trancheId", .number(String(t.trancheId))), ("trancheState", .string("funded")),
            ("loanId", .string(t.loanId)), ("loanState", .string("funded")),
        ]
        let ackRules: [(key: String, value: JSONValue)] = ack.map { ("$.\($0.key)", .object([("matchers", .array([.object([("match", .string("type"))])]))])) }
        ack.append(("_comment", .string("values depend on the provider state; matched by type")))
        ack.removeLast()
        var partnerCallback = interaction(
            "a funding confirmation", state: "tranche \(t.trancheId) is requested from \(c.partnerId)",
            params: params(t, nonce: "pactConfirmation000001", code: funded),
            request: httpRequest(callback), response: .object([("status", .number("200")), ("body", body(Array(JSONWriter.string(.object(ack)).utf8)))]))
        if case .object(var members) = partnerCallback {
            if let i = members.firstIndex(where: { $0.key == "response" }), case .object(var r) = members[i].value {
                r.append(("matchingRules", .object([("body", .object(ackRules))])))
                members[i].value = .object(r)
            }
            if let i = members.firstIndex(where: { $0.key == "request" }), case .object(var r) = members[i].value {
                r.append(("generators", providerStateGenerators(c)))
                members[i].value = .object(r)
            }
            partnerCallback = .object(members)
        }
        return [
            (gatewayPactFile(c), document(consumer: gatewayName, provider: c.partnerId, gatewayInteractions)),
            (partnerPactFile(c), document(consumer: c.partnerId, provider: gatewayName, [partnerCallback])),
        ]
    }

    /// The confirmation's fresh values come from the provider-state endpoint (test mode): the
    /// tranche it created and a signature made now, so a live gateway accepts the example.
    static func providerStateGenerators(_ c: PartnerContract) -> JSONValue {
        func gen(_ expression: String, _ type: String = "STRING") -> JSONValue {
            .object([("type", .string("ProviderState")), ("expression", .string("${\(expression)}")), ("dataType", .string(type))])
        }
        var body: [(key: String, value: JSONValue)] = [
            ("$.\(c.partnerField("serial"))", gen("serial")), ("$.\(c.partnerField("trancheId"))", gen("trancheId", "INTEGER")),
            ("$.\(c.partnerField("loanId"))", gen("loanId")), ("$.\(c.partnerField("amountMinor"))", gen("amountMinor", "INTEGER")),
        ]
        var header: [(key: String, value: JSONValue)] = []
        switch c.scheme.format {
        case .jl1: header = [("Authorization", gen("authorization"))]
        case .wechatpayV3: header = [("Wechatpay-Timestamp", gen("timestamp")), ("Wechatpay-Nonce", gen("nonce")), ("Wechatpay-Signature", gen("signature"))]
        case .sortedParams:
            body += [("$.\(c.scheme.timestampParameter)", gen("timestamp")), ("$.\(c.scheme.nonceParameter)", gen("nonce")), ("$.sign", gen("signature"))]
        }
        var out: [(key: String, value: JSONValue)] = [("body", .object(body))]
        if !header.isEmpty { out.append(("header", .object(header))) }
        return .object(out)
    }

    static func params(_ t: PartnerWire.Tranche, nonce: String, reason: String? = nil, code: String? = nil) -> JSONValue {
        var m: [(key: String, value: JSONValue)] = [
            ("trancheId", .number(String(t.trancheId))), ("loanId", .string(t.loanId)), ("amountMinor", .number(String(t.amountMinor))),
            ("currency", .string(t.currency)), ("timestamp", .number(String(exampleTimestamp))), ("nonce", .string(nonce)),
        ]
        if let reason { m.append(("reason", .string(reason))) }
        if let code { m.append(("resultCode", .string(code))) }
        return .object(m)
    }

    static func document(consumer: String, provider: String, _ interactions: [JSONValue]) -> JSONValue {
        .object([
            ("consumer", .object([("name", .string(consumer))])),
            ("provider", .object([("name", .string(provider))])),
            ("interactions", .array(interactions)),
            ("metadata", .object([("pactSpecification", .object([("version", .string("4.0"))])),
                                  ("jointlend", .object([("generator", .string("jointlend contracts pacts --write")),
                                                         ("note", .string("Examples are signed with the test-only keys in keys/; never real keys."))]))])),
        ])
    }

    static func interaction(_ description: String, state: String, params: JSONValue, request: JSONValue, response: JSONValue) -> JSONValue {
        .object([
            ("type", .string("Synchronous/HTTP")), ("description", .string(description)),
            ("providerStates", .array([.object([("name", .string(state)), ("params", params)])])),
            ("request", request), ("response", response),
        ])
    }

    static func headers(_ h: HTTPHeaders) -> JSONValue {
        .object(h.fields.map { ($0.name, .array([.string($0.value)])) })
    }

    static func body(_ bytes: [UInt8]) -> JSONValue {
        let content = (try? JSONParser.parse(bytes)) ?? .string(String(decoding: bytes, as: UTF8.self))
        return .object([("content", content), ("contentType", .string("application/json")), ("encoded", .bool(false))])
    }

    static func httpRequest(_ m: PartnerWire.Message) -> JSONValue {
        let parts = m.target.split(separator: "?", maxSplits: 1)
        var members: [(key: String, value: JSONValue)] = [("method", .string(m.method.rawValue)), ("path", .string(String(parts[0])))]
        if parts.count == 2 {
            var query: [(key: String, value: JSONValue)] = []
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                query.append((String(kv[0]), .array([.string(kv.count > 1 ? String(kv[1]) : "")])))
            }
            members.append(("query", .object(query)))
        }
        members.append(("headers", headers(m.headers)))
        if !m.body.isEmpty { members.append(("body", body(m.body))) }
        return .object(members)
    }

    static func httpResponse(_ status: Int, _ h: HTTPHeaders, _ bytes: [UInt8]) -> JSONValue {
        var all = HTTPHeaders()
        all.add(name: "Content-Type", value: "application/json")
        for f in h.fields where f.name.lowercased() != "content-type" { all.add(name: f.name, value: f.value) }
        return .object([("status", .number(String(status))), ("headers", headers(all)), ("body", body(bytes))])
    }

    // MARK: Reading examples back

    /// An example HTTP message of a pact file: method, target, headers and the body's bytes as
    /// the compact serialisation of its JSON content (in file order).
    public struct ExampleMessage: Sendable {
        public var method: String
        public var target: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        public var status: Int?
    }

    public static func exampleMessage(_ json: JSONValue?) -> ExampleMessage? {
        guard let json, case .object = json else { return nil }
        var headers: [(name: String, value: String)] = []
        if case .object(let hs)? = json["headers"] {
            for h in hs {
                if case .array(let vs) = h.value { for case .string(let v) in vs { headers.append((h.key, v)) } }
                else if case .string(let v) = h.value { headers.append((h.key, v)) }
            }
        }
        var target = ""
        if case .string(let p)? = json["path"] { target = p }
        if case .object(let q)? = json["query"] {
            target += "?" + q.compactMap { kv -> String? in
                if case .array(let vs) = kv.value, case .string(let v)? = vs.first { return "\(kv.key)=\(v)" }
                return nil
            }.joined(separator: "&")
        }
        var bytes: [UInt8] = []
        if let content = json["body"]?["content"] {
            if case .string(let s) = content { bytes = Array(s.utf8) } else { bytes = Array(JSONWriter.string(content).utf8) }
        }
        var status: Int?
        if case .number(let n)? = json["status"] { status = Int(n) }
        var method = ""
        if case .string(let m)? = json["method"] { method = m }
        return ExampleMessage(method: method, target: target, headers: headers, body: bytes, status: status)
    }

    // MARK: Pretty printing (stable diffs for committed files)

    public static func pretty(_ v: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch v {
        case .array(let items) where !items.isEmpty:
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members) where !members.isEmpty:
            return "{\n" + members.map { inner + JSONWriter.string(.string($0.key)) + ": " + pretty($0.value, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return JSONWriter.string(v)
        }
    }
}
