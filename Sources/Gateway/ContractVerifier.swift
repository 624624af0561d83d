import Foundation
import HTTP
import PartnerSigning
import Storage

/// Checks one partner contract against its Pact files, offline:
/// - every outbound example (funding request, status query, cancellation) is what the gateway
///   sends for the example inputs: byte-identical for deterministic algorithms, or (SM2) equal
///   apart from the signature, which verifies with the gateway's key;
/// - every inbound example (the partner's answers and its confirmation callback) is accepted,
///   and every single-field mutation of it (each body field, each signing header or parameter)
///   is rejected;
/// - field mappings round-trip (tranche → partner body → tranche; every result code).
/// The contract tests, `jointlend contracts verify` and CI all run this.
public struct ContractVerifier: Sendable {
    public struct Finding: Sendable, CustomStringConvertible {
        public var check: String
        public var passed: Bool
        public var detail: String
        public var description: String { "\(passed ? "ok  " : "FAIL") \(check)\(detail.isEmpty ? "" : ": \(detail)")" }
    }

    public let contract: PartnerContract
    public init(contract: PartnerContract) { self.contract = contract }

    /// Loads a pact file of the contract folder.
    public func pact(_ relativePath: String) throws -> JSONValue {
        let path = "\(contract.directory)/\(relativePath)"
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw ContractPacts.GenerationError(description: "\(path): missing or larger than 1 MiB")
        }
        return try JSONParser.parse(Array(data))
    }

    public func verifyAll() -> [Finding] {
        var findings: [Finding] = []
        do {
            let gatewayPact = try pact(ContractPacts.gatewayPactFile(contract))
            let partnerPact = try pact(ContractPacts.partnerPactFile(contract))
            findings += structure(gatewayPact, consumer: ContractPacts.gatewayName, provider: contract.partnerId, file: ContractPacts.gatewayPactFile(contract))
            findings += structure(partnerPact, consumer: contract.partnerId, provider: ContractPacts.gatewayName, file: ContractPacts.partnerPactFile(contract))
            findings += try outbound(gatewayPact)
            findings += try inbound(gatewayPact, partnerPact)
        } catch {
            findings.append(Finding(check: "pact files", passed: false, detail: "\(error)"))
        }
        findings += mappings()
        return findings
    }

    // MARK: Structure

    public func structure(_ pact: JSONValue, consumer: String, provider: String, file: String) -> [Finding] {
        var problems: [String] = []
        if pact["consumer"]?["name"] != .string(consumer) { problems.append("$.consumer.name must be \(consumer)") }
        if pact["provider"]?["name"] != .string(provider) { problems.append("$.provider.name must be \(provider)") }
        if pact["metadata"]?["pactSpecification"]?["version"] != .string("4.0") { problems.append("$.metadata.pactSpecification.version must be 4.0") }
        if case .array(let items)? = pact["interactions"], !items.isEmpty {
            for (k, i) in items.enumerated() {
                if i["type"] != .string("Synchronous/HTTP") { problems.append("$.interactions[\(k)].type must be Synchronous/HTTP") }
                if case .string? = i["description"] {} else { problems.append("$.interactions[\(k)].description is missing") }
                if i["request"] == nil || i["response"] == nil { problems.append("$.interactions[\(k)] needs request and response") }
                if case .array(let states)? = i["providerStates"], states.first?["params"] != nil {} else {
                    problems.append("$.interactions[\(k)].providerStates[0].params is missing")
                }
            }
        } else {
            problems.append("$.interactions must be a non-empty array")
        }
        return [Finding(check: "\(file) is a Pact v4 document", passed: problems.isEmpty, detail: problems.joined(separator: "; "))]
    }

    // MARK: Outbound

    func params(_ interaction: JSONValue) throws -> (PartnerWire.Tranche, Int64, String, String?) {
        guard let p = Self.first(interaction["providerStates"])?["params"],
              case .number(let id)? = p["trancheId"], let trancheId = Int64(id), case .string(let loanId)? = p["loanId"],
              case .number(let amount)? = p["amountMinor"], let amountMinor = Int64(amount), case .string(let currency)? = p["currency"],
              case .number(let ts)? = p["timestamp"], let timestamp = Int64(ts), case .string(let nonce)? = p["nonce"]
        else { throw ContractPacts.GenerationError(description: "providerStates[0].params needs trancheId, loanId, amountMinor, currency, timestamp, nonce") }
        var reason: String?
        if case .string(let r)? = p["reason"] { reason = r }
        return (PartnerWire.Tranche(trancheId: trancheId, loanId: loanId, amountMinor: amountMinor, currency: currency), timestamp, nonce, reason)
    }

    static func first(_ v: JSONValue?) -> JSONValue? {
        if case .array(let items)? = v { return items.first }
        return nil
    }

    func interactions(_ pact: JSONValue) -> [JSONValue] {
        if case .array(let items)? = pact["interactions"] { return items }
        return []
    }

    func outbound(_ gatewayPact: JSONValue) throws -> [Finding] {
        let wire = try PartnerWire(contract: contract)
        let signer = try contract.makeSigner()
        let deterministic = contract.scheme.algorithm != .sm2SM3
        var findings: [Finding] = []
        for i in interactions(gatewayPact) {
            guard case .string(let description)? = i["description"], let example = ContractPacts.exampleMessage(i["request"]) else { continue }
            let (t, ts, nonce, reason) = try params(i)
            let built: PartnerWire.Message
            if description.contains("funding request") {
                built = try wire.fundingRequest(t, signer: signer, timestamp: ts, nonce: nonce)
            } else if description.contains("status query") {
                built = try wire.statusQuery(t, signer: signer, timestamp: ts, nonce: nonce)
            } else if description.contains("cancellation") {
                built = try wire.cancellation(t, reason: reason ?? "released", signer: signer, timestamp: ts, nonce: nonce)
            } else {
                findings.append(Finding(check: "outbound '\(description)'", passed: false, detail: "unknown interaction (expected a funding request, status query or cancellation)"))
                continue
            }
            var problems: [String] = []
            if built.method.rawValue != example.method { problems.append("method \(built.method.rawValue) ≠ \(example.method)") }
            let builtTarget = built.target, exampleTarget = example.target
            if deterministic || contract.scheme.format != .sortedParams || built.body.isEmpty == false {
                if builtTarget != exampleTarget { problems.append("target \(builtTarget) ≠ \(exampleTarget)") }
            }
            for h in built.headers.fields {
                let value = example.headers.first { $0.name.lowercased() == h.name.lowercased() }?.value
                if value == nil { problems.append("header \(h.name) missing from the example") }
                else if deterministic, value != h.value { problems.append("header \(h.name) differs") }
            }
            if deterministic {
                if built.body != example.body { problems.append("body differs: \(String(decoding: built.body, as: UTF8.self)) ≠ \(String(decoding: example.body, as: UTF8.self))") }
            } else {
                if Self.withoutSign(built.body) != Self.withoutSign(example.body) { problems.append("body differs apart from the signature") }
                if let keys = contract.simulatorKeys {
                    do {
                        let v = try PartnerVerifier(scheme: contract.scheme, keyRing: keys.gatewayVerifyingKeys, replayGuard: NonceReplayGuard(covering: [contract.scheme]))
                        try v.verify(.request, method: example.method, pathAndQuery: example.target, headers: example.headers, body: example.body, now: ts)
                    } catch {
                        problems.append("the example's signature does not verify with the gateway's key: \(error.code)")
                    }
                } else {
                    problems.append("no gateway public key (simulator.gatewayKeys) to verify the example with")
                }
            }
            let how = deterministic ? "byte-identical" : "equal apart from the signature, which verifies"
            findings.append(Finding(check: "outbound '\(description)' is \(how)", passed: problems.isEmpty, detail: problems.joined(separator: "; ")))
        }
        return findings
    }

    static func withoutSign(_ body: [UInt8]) -> String {
        guard case .object(let m)? = try? JSONParser.parse(body) else { return String(decoding: body, as: UTF8.self) }
        return JSONWriter.string(.object(m.filter { $0.key != "sign" }))
    }

    // MARK: Inbound

    /// Whether the gateway accepts an inbound example: signature, freshness, then decoding.
    func accepts(_ kind: MessageKind, _ m: ContractPacts.ExampleMessage, at ts: Int64, callback: Bool) -> String? {
        do {
            let verifier = try contract.makeVerifier(replayGuard: NonceReplayGuard(covering: [contract.scheme]))
            try verifier.verify(kind, method: m.method, pathAndQuery: m.target, headers: m.headers, body: m.body, now: ts)
        } catch {
            return "signature: \(error.code)"
        }
        if callback {
            do { _ = try ConfirmationCodec.decode(m.body, contract: contract) } catch { return "decoding: \(error.message)" }
        } else {
            do { _ = try PartnerWire(contract: contract).answer(m.body) } catch { return "decoding: \(error)" }
        }
        return nil
    }

    func inbound(_ gatewayPact: JSONValue, _ partnerPact: JSONValue) throws -> [Finding] {
        var findings: [Finding] = []
        var cases: [(String, MessageKind, ContractPacts.ExampleMessage, Int64, Bool)] = []
        for i in interactions(gatewayPact) {
            guard case .string(let d)? = i["description"], let m = ContractPacts.exampleMessage(i["response"]) else { continue }
            cases.append(("answer to '\(d)'", .response, m, try params(i).1, false))
        }
        for i in interactions(partnerPact) {
            guard case .string(let d)? = i["description"], let m = ContractPacts.exampleMessage(i["request"]) else { continue }
            cases.append(("'\(d)'", .callback, m, try params(i).1, true))
        }
        for (name, kind, message, ts, callback) in cases {
            if let problem = accepts(kind, message, at: ts, callback: callback) {
                findings.append(Finding(check: "inbound \(name) is accepted", passed: false, detail: problem))
                continue
            }
            findings.append(Finding(check: "inbound \(name) is accepted", passed: true, detail: ""))
            var accepted: [String] = []
            let mutations = Self.mutations(of: message)
            for (field, mutated) in mutations where accepts(kind, mutated, at: ts, callback: callback) == nil {
                accepted.append(field)
            }
            findings.append(Finding(check: "inbound \(name): all \(mutations.count) single-field mutations rejected", passed: accepted.isEmpty,
                                    detail: accepted.isEmpty ? "" : "accepted after mutating \(accepted.joined(separator: ", "))"))
        }
        return findings
    }

    /// Headers that carry or select a signature (the others are transport).
    static func isSigningHeader(_ name: String) -> Bool {
        let n = name.lowercased()
        return n == "authorization" || n.hasPrefix("jl-") || n.hasPrefix("wechatpay-")
    }

    /// One message per mutated field: each top-level body member's value, each signing header,
    /// and each parameter inside an `Authorization` header.
    public static func mutations(of m: ContractPacts.ExampleMessage) -> [(String, ContractPacts.ExampleMessage)] {
        var out: [(String, ContractPacts.ExampleMessage)] = []
        if case .object(let members)? = try? JSONParser.parse(m.body) {
            for (k, member) in members.enumerated() {
                var copy = members
                copy[k].value = mutate(member.value)
                var mm = m
                mm.body = Array(JSONWriter.string(.object(copy)).utf8)
                out.append(("body.\(member.key)", mm))
            }
        }
        for (k, h) in m.headers.enumerated() where isSigningHeader(h.name) {
            var mm = m
            mm.headers[k].value = mutateText(h.value)
            out.append(("header \(h.name)", mm))
            if h.name.lowercased() == "authorization" {
                for (name, range) in authorizationParameters(h.value) {
                    var mp = m
                    var v = h.value
                    v.replaceSubrange(range, with: mutateText(String(h.value[range])))
                    mp.headers[k].value = v
                    out.append(("Authorization \(name)", mp))
                }
            }
        }
        return out
    }

    static func mutate(_ v: JSONValue) -> JSONValue {
        switch v {
        case .string(let s): return .string(mutateText(s))
        case .number(let n): return .number(Int64(n).map { String($0 + 1) } ?? n + "1")
        case .bool(let b): return .bool(!b)
        default: return .string("mutated")
        }
    }

    /// Changes the first character (the last base64 character can carry ignored bits).
    static func mutateText(_ s: String) -> String {
        guard let first = s.first else { return "x" }
        return String(first == "A" ? "B" : "A") + s.dropFirst()
    }

    /// The quoted parameter values of an `Authorization` header, by name.
    static func authorizationParameters(_ header: String) -> [(String, Range<String.Index>)] {
        var out: [(String, Range<String.Index>)] = []
        var search = header.startIndex
        while let eq = header[search...].range(of: "=\"") {
            let nameStart = header[..<eq.lowerBound].lastIndex(where: { $0 == " " || $0 == "," }).map { header.index(after: $0) } ?? header.startIndex
            guard let close = header[eq.upperBound...].firstIndex(of: "\"") else { break }
            if eq.upperBound < close { out.append((String(header[nameStart..<eq.lowerBound]), eq.upperBound..<close)) }
            search = header.index(after: close)
        }
        return out
    }

    // MARK: Mappings

    func mappings() -> [Finding] {
        var problems: [String] = []
        do {
            let wire = try PartnerWire(contract: contract)
            let t = ContractPacts.exampleTranche
            let back = try wire.tranche(fromBody: Array(JSONWriter.string(wire.body(t)).utf8))
            if back != t { problems.append("tranche → body → tranche changed it") }
            for (code, outcome) in contract.resultCodes.sorted(by: { $0.key < $1.key }) {
                let answer = try wire.answer(Array(JSONWriter.string(wire.answerBody(t, code: code)).utf8))
                guard case .outcome(let c) = answer, c.trancheId == t.trancheId, c.serial == t.serial,
                      c.outcome.rawValue == outcome.rawValue else { problems.append("result code \(code) does not round-trip to \(outcome.rawValue)"); continue }
            }
            for field in PartnerContract.mappedFields where contract.fieldMappings[field] == nil {
                problems.append("\(field) is not mapped (the gateway's own name is used)")
            }
        } catch {
            problems.append("\(error)")
        }
        return [Finding(check: "field mappings round-trip", passed: problems.isEmpty, detail: problems.joined(separator: "; "))]
    }
}
