import HTTP
import PartnerSigning
import Storage

/// The messages between the gateway and one partner in that partner's words: field names from
/// the contract's mappings, signed in its scheme. No I/O; timestamps and nonces are inputs, so
/// the contract tests can pin the exact bytes of deterministic schemes.
///
/// The same type serves both ends: the dispatcher builds requests and reads answers, the
/// partner simulator reads requests and builds answers and callbacks.
public struct PartnerWire: Sendable {
    public let contract: PartnerContract
    public let endpoint: PartnerEndpoint

    /// One tranche as a partner sees it.
    public struct Tranche: Sendable, Hashable {
        public var trancheId: Int64
        public var loanId: String
        public var amountMinor: Int64
        public var currency: String

        public init(trancheId: Int64, loanId: String, amountMinor: Int64, currency: String) {
            self.trancheId = trancheId
            self.loanId = loanId
            self.amountMinor = amountMinor
            self.currency = currency
        }

        /// The gateway's request number for this tranche, echoed by the partner.
        public var serial: String { PartnerWire.serial(trancheId: trancheId) }
    }

    /// A signed HTTP message ready to send.
    public struct Message: Sendable {
        public var method: HTTPMethod
        public var target: String
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    /// A partner's answer about one tranche.
    public enum Answer: Sendable, Hashable {
        /// A final result code: funded or declined under the partner's serial.
        case outcome(FundingConfirmation)
        /// Accepted or still processing; the outcome comes later.
        case pending
    }

    public struct WireError: Error, Sendable, CustomStringConvertible {
        /// The partner's field name (JSON path) that was wrong.
        public let field: String
        public let message: String
        public var description: String { "\(field): \(message)" }
    }

    /// Fields the gateway adds beside the mapped ones.
    public static let reasonField = "reason"
    static let serialPrefix = "JLT"

    public static func serial(trancheId: Int64) -> String { serialPrefix + String(trancheId) }

    public init(contract: PartnerContract, baseURL: String? = nil) throws(PartnerEndpoint.ParseError) {
        self.contract = contract
        endpoint = try PartnerEndpoint(url: baseURL ?? contract.endpoints.baseURL)
    }

    // MARK: Gateway → partner

    /// `POST fundingRequest` with the tranche's mapped fields.
    public func fundingRequest(_ t: Tranche, signer: PartnerSigner, timestamp: Int64, nonce: String) throws(SigningError) -> Message {
        try Self.sign(.request, method: .POST, target: path(contract.endpoints.fundingRequest, t), body: body(t), signer: signer, timestamp: timestamp, nonce: nonce)
    }

    /// `GET statusQuery` when the path names the serial, else `POST` with serial and tranche id.
    public func statusQuery(_ t: Tranche, signer: PartnerSigner, timestamp: Int64, nonce: String) throws(SigningError) -> Message {
        let template = contract.endpoints.statusQuery
        if template.contains("{serial}") {
            return try Self.sign(.request, method: .GET, target: path(template, t), body: nil, signer: signer, timestamp: timestamp, nonce: nonce)
        }
        let b: JSONValue = .object([(contract.partnerField("serial"), .string(t.serial)), (contract.partnerField("trancheId"), .number(String(t.trancheId)))])
        return try Self.sign(.request, method: .POST, target: path(template, t), body: b, signer: signer, timestamp: timestamp, nonce: nonce)
    }

    /// `POST cancellation` with the tranche's mapped fields and why (`released` or `expired`).
    public func cancellation(_ t: Tranche, reason: String, signer: PartnerSigner, timestamp: Int64, nonce: String) throws(SigningError) -> Message {
        guard case .object(var members) = body(t) else { preconditionFailure("body(_:) builds an object") }
        members.append((Self.reasonField, .string(reason)))
        return try Self.sign(.request, method: .POST, target: path(contract.endpoints.cancellation, t), body: .object(members), signer: signer, timestamp: timestamp, nonce: nonce)
    }

    /// The request target: base path, then the endpoint with `{serial}` filled in.
    public func path(_ template: String, _ t: Tranche) -> String {
        endpoint.basePath + template.replacingOccurrences(of: "{serial}", with: t.serial)
    }

    /// The tranche in the partner's field names, in a fixed order (pact examples pin the bytes).
    public func body(_ t: Tranche) -> JSONValue {
        .object([
            (contract.partnerField("serial"), .string(t.serial)),
            (contract.partnerField("trancheId"), .number(String(t.trancheId))),
            (contract.partnerField("loanId"), .string(t.loanId)),
            (contract.partnerField("amountMinor"), .number(String(t.amountMinor))),
            (contract.partnerField("currency"), .string(t.currency)),
        ])
    }

    /// Reads a partner's answer (to a funding request or a status query, or a callback body):
    /// a known result code is an outcome, anything else is still pending.
    public func answer(_ bodyBytes: [UInt8]) throws(WireError) -> Answer {
        let json: JSONValue
        do { json = try JSONParser.parse(bodyBytes) } catch { throw WireError(field: "$", message: error.description) }
        guard case .object = json else { throw WireError(field: "$", message: "expected an object") }
        let outcomeName = contract.partnerField("outcome")
        guard case .string(let code)? = json[outcomeName] else { throw WireError(field: "$.\(outcomeName)", message: "missing result code") }
        guard let outcome = contract.resultCodes[code] else { return .pending }
        let serial = try text(json, "serial")
        let trancheId = try integer(json, "trancheId")
        return .outcome(FundingConfirmation(funderId: contract.partnerId, serial: serial, trancheId: trancheId, outcome: outcome == .funded ? .funded : .declined))
    }

    // MARK: Partner side (the simulator)

    /// The tranche in a funding request or cancellation body; throws naming the partner's field.
    public func tranche(fromBody bodyBytes: [UInt8]) throws(WireError) -> Tranche {
        let json: JSONValue
        do { json = try JSONParser.parse(bodyBytes) } catch { throw WireError(field: "$", message: error.description) }
        let serial = try text(json, "serial")
        let t = Tranche(trancheId: try integer(json, "trancheId"), loanId: try text(json, "loanId"),
                        amountMinor: try integer(json, "amountMinor"), currency: try text(json, "currency"))
        guard t.serial == serial else { throw WireError(field: "$.\(contract.partnerField("serial"))", message: "does not match the tranche id") }
        return t
    }

    /// The serial a status query asks about: from the path (`{serial}` templates) or the body.
    public func serial(inStatusQueryTarget target: String, body bodyBytes: [UInt8]) throws(WireError) -> String {
        let template = endpoint.basePath + contract.endpoints.statusQuery
        if let range = template.range(of: "{serial}") {
            let prefix = String(template[..<range.lowerBound]), suffix = String(template[range.upperBound...])
            let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
            guard path.hasPrefix(prefix), path.hasSuffix(suffix), path.count > prefix.count + suffix.count else {
                throw WireError(field: "path", message: "does not match \(contract.endpoints.statusQuery)")
            }
            return String(path.dropFirst(prefix.count).dropLast(suffix.count))
        }
        let json: JSONValue
        do { json = try JSONParser.parse(bodyBytes) } catch { throw WireError(field: "$", message: error.description) }
        return try text(json, "serial")
    }

    /// An outcome or status answer body in the partner's words.
    public func answerBody(_ t: Tranche, code: String) -> JSONValue {
        guard case .object(var members) = body(t) else { preconditionFailure("body(_:) builds an object") }
        members.append((contract.partnerField("outcome"), .string(code)))
        return .object(members)
    }

    // MARK: Signing

    /// Signs `body` as `kind`: headers for `jl1` and `wechatpay-v3`; for `sorted-params` the
    /// signing parameters join the JSON body (or the query, when there is no body).
    public static func sign(
        _ kind: MessageKind, method: HTTPMethod, target: String, body: JSONValue?, signer: PartnerSigner, timestamp: Int64, nonce: String
    ) throws(SigningError) -> Message {
        let bytes = body.map { Array(JSONWriter.string($0).utf8) } ?? []
        let signed = try signer.sign(kind, method: method.rawValue, pathAndQuery: target, body: bytes, timestamp: timestamp, nonce: nonce)
        var headers = HTTPHeaders()
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        for h in signed.headers { headers.add(name: h.name, value: h.value) }
        guard !signed.parameters.isEmpty else { return Message(method: method, target: target, headers: headers, body: bytes) }
        if case .object(var members)? = body {
            for p in signed.parameters { members.append((p.name, .string(p.value))) }
            return Message(method: method, target: target, headers: headers, body: Array(JSONWriter.string(.object(members)).utf8))
        }
        let query = SortedParameters.formEncode(signed.parameters)
        return Message(method: method, target: target + (target.contains("?") ? "&" : "?") + query, headers: headers, body: bytes)
    }

    // MARK: Field access

    func text(_ json: JSONValue, _ gatewayField: String) throws(WireError) -> String {
        let name = contract.partnerField(gatewayField)
        guard case .string(let s)? = json[name], !s.isEmpty, s.utf8.count <= 64, s.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw WireError(field: "$.\(name)", message: "expected a string of 1-64 printable ASCII bytes")
        }
        return s
    }

    func integer(_ json: JSONValue, _ gatewayField: String) throws(WireError) -> Int64 {
        let name = contract.partnerField(gatewayField)
        switch json[name] {
        case .number(let n)?: if let i = Int64(n), i > 0 { return i }
        case .string(let s)?: if let i = Int64(s), i > 0 { return i }
        default: break
        }
        throw WireError(field: "$.\(name)", message: "expected a positive integer")
    }
}
