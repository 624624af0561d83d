import Foundation
import LendingCore
import PartnerSigning

/// One partner's contract, loaded from `Contracts/<partnerId>/partner.json`: who the partner is,
/// how messages are signed each way, where its endpoints are, how its field names and result
/// codes map to the gateway's. Key files are resolved relative to the contract's folder.
public struct PartnerContract: Sendable {
    public var partnerId: String
    public var name: String
    public var licenceNumber: String
    public var scheme: SigningScheme
    /// Keys that verify the partner's messages (public keys, or the shared HMAC secret).
    public var partnerKeys: VerifyingKeyRing
    /// Keys the gateway signs this partner's requests and acks with.
    public var gatewayKeys: SigningKeyRing
    public var endpoints: Endpoints
    /// Gateway field name → the partner's field name.
    public var fieldMappings: [String: String]
    /// Partner result code → `funded` | `declined`.
    public var resultCodes: [String: FundingOutcome]
    /// The folder the contract was loaded from.
    public var directory: String
    /// Test-only keys the partner simulator plays the bank with: the bank's own signing keys and
    /// the keys that verify the gateway. Absent in a production contract.
    public var simulatorKeys: SimulatorKeys?

    public struct SimulatorKeys: Sendable {
        public var partnerSigningKeys: SigningKeyRing
        public var gatewayVerifyingKeys: VerifyingKeyRing
    }

    public enum FundingOutcome: String, Sendable, Hashable {
        case funded, declined
    }

    public struct Endpoints: Sendable, Hashable {
        public var baseURL: String
        public var fundingRequest: String
        public var statusQuery: String
        public var cancellation: String
    }

    /// The gateway's canonical confirmation fields every contract must map.
    public static let mappedFields = ["serial", "trancheId", "loanId", "amountMinor", "currency", "outcome"]

    /// The partner's name for a gateway field (the gateway's own name when unmapped).
    public func partnerField(_ gatewayField: String) -> String { fieldMappings[gatewayField] ?? gatewayField }

    /// A verifier for the partner's inbound messages sharing `replayGuard`.
    public func makeVerifier(replayGuard: NonceReplayGuard) throws(SigningError) -> PartnerVerifier {
        try PartnerVerifier(scheme: scheme, keyRing: partnerKeys, replayGuard: replayGuard)
    }

    public func makeSigner() throws(SigningError) -> PartnerSigner {
        try PartnerSigner(scheme: scheme, keyRing: gatewayKeys)
    }

    // MARK: - Loading

    /// Every `<dir>/*/partner.json` under `directory`, sorted by partner id. Throws every problem.
    public static func loadAll(directory: String) throws(ConfigError) -> [PartnerContract] {
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        var contracts: [PartnerContract] = []
        var problems: [(String, DecodingProblem)] = []
        for entry in entries {
            let folder = "\(directory)/\(entry)"
            let file = "\(folder)/partner.json"
            guard FileManager.default.fileExists(atPath: file) else { continue }
            do {
                contracts.append(try load(file: file))
            } catch {
                problems.append(contentsOf: error.problems.map { (file, $0) })
            }
        }
        if let first = problems.first {
            // One ConfigError per file would lose the others; prefix paths with the file instead.
            throw ConfigError(file: first.0, problems: problems.map { DecodingProblem(path: $0.0 == first.0 ? $0.1.path : "\($0.0) \($0.1.path)", message: $0.1.message) })
        }
        return contracts
    }

    public static func load(file: String) throws(ConfigError) -> PartnerContract {
        guard let data = FileManager.default.contents(atPath: file), data.count <= 1 << 20 else {
            throw ConfigError(file: file, problems: [DecodingProblem(path: "$", message: "cannot read the file (or larger than 1 MiB)")])
        }
        let json: JSONValue
        do { json = try JSONParser.parse(Array(data)) } catch {
            throw ConfigError(file: file, problems: [DecodingProblem(path: "$", message: error.description)])
        }
        let log = ProblemLog()
        let folder = (file as NSString).deletingLastPathComponent
        if let contract = decode(json, folder: folder, log: log), log.problems.isEmpty { return contract }
        throw ConfigError(file: file, problems: log.problems)
    }

    static func decode(_ json: JSONValue, folder: String, log: ProblemLog) -> PartnerContract? {
        guard let o = ObjectReader(json, path: "$", log: log) else { return nil }
        o.rejectUnknown(["partnerId", "name", "licenceNumber", "signing", "endpoints", "fieldMappings", "resultCodes", "pacts", "simulator"])
        let partnerId = o.string("partnerId", bytesMax: 64)
        if let p = partnerId, !GatewayConfig.isIdentifier(p) { log.add("$.partnerId", "must be 1-64 characters of A-Z a-z 0-9 - _") }
        if let p = partnerId, p != (folder as NSString).lastPathComponent {
            log.add("$.partnerId", "must equal the contract folder's name '\((folder as NSString).lastPathComponent)'")
        }
        let name = o.string("name", bytesMax: 128)
        let licence = o.string("licenceNumber", bytesMax: 64)
        var result: (SigningScheme, VerifyingKeyRing, SigningKeyRing)?
        if let s = o.object("signing") { result = decodeSigning(s, folder: folder) }
        var endpoints: Endpoints?
        if let e = o.object("endpoints") {
            e.rejectUnknown(["baseUrl", "fundingRequest", "statusQuery", "cancellation"])
            let base = e.string("baseUrl", bytesMax: 256)
            if let b = base, !(b.hasPrefix("http://") || b.hasPrefix("https://")) { log.add("$.endpoints.baseUrl", "must start with http:// or https://") }
            let paths = ["fundingRequest", "statusQuery", "cancellation"].map { key -> String? in
                let p = e.string(key, bytesMax: 256)
                if let p, !p.hasPrefix("/") { log.add("$.endpoints.\(key)", "must be a path starting with /") }
                return p
            }
            if let base, let f = paths[0], let s = paths[1], let c = paths[2] {
                endpoints = Endpoints(baseURL: base, fundingRequest: f, statusQuery: s, cancellation: c)
            }
        }
        var mappings: [String: String] = [:]
        if let m = o.object("fieldMappings") {
            m.rejectUnknown(Set(mappedFields))
            var seen: [String: String] = [:]
            for field in mappedFields {
                guard let partnerName = m.string(field, bytesMax: 64) else { continue }
                if let other = seen[partnerName] { log.add("$.fieldMappings.\(field)", "maps to '\(partnerName)' like \(other)") }
                seen[partnerName] = field
                mappings[field] = partnerName
            }
        }
        var codes: [String: FundingOutcome] = [:]
        if let r = o.object("resultCodes") {
            for member in r.members {
                guard case .string(let v) = member.value, let outcome = FundingOutcome(rawValue: v) else {
                    log.add("$.resultCodes.\(member.key)", "expected \"funded\" or \"declined\"")
                    continue
                }
                codes[member.key] = outcome
            }
            if !codes.values.contains(.funded) || !codes.values.contains(.declined) {
                log.add("$.resultCodes", "must map at least one code to funded and one to declined")
            }
        }
        if let p = o.raw("pacts") {
            if case .array(let files) = p, files.count <= 16,
                  files.allSatisfy({ if case .string(let f) = $0 { return !f.isEmpty && !f.hasPrefix("/") && !f.contains("..") } else { return false } }) {
            } else {
                log.add("$.pacts", "expected an array of at most 16 relative file paths inside the contract folder")
            }
        }
        var simulator: SimulatorKeys?
        if let sim = o.object("simulator", required: false), let (scheme, _, _) = result {
            simulator = decodeSimulator(sim, scheme: scheme, folder: folder)
        }
        guard let partnerId, let name, let licence, let (scheme, partnerKeys, gatewayKeys) = result, let endpoints else { return nil }
        if let b = try? endpoints.parsedBaseURL(), b.isTLS {
            log.add("$.endpoints.baseUrl", "https needs the TLS transport, which the HTTP client does not provide yet")
        }
        return PartnerContract(partnerId: partnerId, name: name, licenceNumber: licence, scheme: scheme, partnerKeys: partnerKeys,
                               gatewayKeys: gatewayKeys, endpoints: endpoints, fieldMappings: mappings, resultCodes: codes, directory: folder,
                               simulatorKeys: simulator)
    }

    /// `simulator`: `partnerKeys` (the bank's private keys) and `gatewayKeys` (verifying the gateway).
    static func decodeSimulator(_ s: ObjectReader, scheme: SigningScheme, folder: String) -> SimulatorKeys? {
        s.rejectUnknown(["partnerKeys", "gatewayKeys"])
        let signing: [KeyRing<SigningKey>.Entry] = keyEntries(s, "partnerKeys", algorithm: scheme.algorithm, folder: folder) {
            (a, m) throws(SigningError) in try SigningKey(algorithm: a, material: m)
        }
        let verifying: [KeyRing<VerifyingKey>.Entry] = keyEntries(s, "gatewayKeys", algorithm: scheme.algorithm, folder: folder) {
            (a, m) throws(SigningError) in try VerifyingKey(algorithm: a, material: m)
        }
        do {
            return SimulatorKeys(partnerSigningKeys: try SigningKeyRing(signing), gatewayVerifyingKeys: try VerifyingKeyRing(verifying))
        } catch {
            s.log.add(s.path, "key ring refused: \(error.code)")
            return nil
        }
    }

    static func keyEntries<K>(
        _ s: ObjectReader, _ key: String, algorithm: SignatureAlgorithm, folder: String,
        _ make: (SignatureAlgorithm, [UInt8]) throws(SigningError) -> K
    ) -> [KeyRing<K>.Entry] {
        let log = s.log
        var entries: [KeyRing<K>.Entry] = []
        for (path, value) in s.array(key, countMax: KeyRing<K>.entriesMax) ?? [] {
            guard let k = ObjectReader(value, path: path, log: log) else { continue }
            k.rejectUnknown(["keyId", "file", "env", "validFrom", "validUntil"])
            guard let id = k.string("keyId", bytesMax: 64) else { continue }
            let from = k.int64("validFrom", required: false, in: 0...Int64.max) ?? 0
            let until = k.int64("validUntil", required: false, in: 0...Int64.max) ?? Int64.max
            guard let material = KeyMaterial.read(k, folder: folder) else { continue }
            do {
                entries.append(KeyRing<K>.Entry(id: id, key: try make(algorithm, material), validFromSeconds: from, validUntilSeconds: until))
            } catch {
                log.add(k.path, "key could not be loaded for \(algorithm.rawValue): \(error.code)")
            }
        }
        return entries
    }

    static func decodeSigning(_ s: ObjectReader, folder: String) -> (SigningScheme, VerifyingKeyRing, SigningKeyRing)? {
        let log = s.log
        s.rejectUnknown(["format", "algorithm", "timestampToleranceSeconds", "merchantId", "sm2", "partnerKeys", "gatewayKeys"])
        let format = s.string("format").flatMap { f -> MessageFormat? in
            let v = MessageFormat(rawValue: f)
            if v == nil { log.add(s.child("format"), "expected jl1, wechatpay-v3 or sorted-params") }
            return v
        }
        let algorithm = s.string("algorithm").flatMap { a -> SignatureAlgorithm? in
            let v = SignatureAlgorithm(rawValue: a)
            if v == nil { log.add(s.child("algorithm"), "expected HMAC-SHA256, RSA-SHA256, SM2-SM3 or ED25519") }
            return v
        }
        let tolerance = s.int64("timestampToleranceSeconds", required: false, in: 1...3_600) ?? SigningScheme.defaultTimestampToleranceSeconds
        let merchant = s.string("merchantId", required: format == .wechatpayV3, bytesMax: 64) ?? ""
        var sm2 = SM2Options()
        if let o = s.object("sm2", required: false) {
            o.rejectUnknown(["distinguishingId", "signatureEncoding"])
            if let id = o.string("distinguishingId", required: false, bytesMax: 64) { sm2.distinguishingID = Array(id.utf8) }
            switch o.string("signatureEncoding", required: false) {
            case nil, "der": sm2.encoding = .der
            case "raw": sm2.encoding = .raw
            default: log.add(o.child("signatureEncoding"), "expected \"der\" or \"raw\"")
            }
        }
        guard let format, let algorithm else { return nil }
        let partner: [KeyRing<VerifyingKey>.Entry] = keyEntries(s, "partnerKeys", algorithm: algorithm, folder: folder) {
            (a, m) throws(SigningError) in try VerifyingKey(algorithm: a, material: m)
        }
        let gateway: [KeyRing<SigningKey>.Entry] = keyEntries(s, "gatewayKeys", algorithm: algorithm, folder: folder) {
            (a, m) throws(SigningError) in try SigningKey(algorithm: a, material: m)
        }
        let scheme = SigningScheme(format: format, algorithm: algorithm, sm2: sm2, timestampToleranceSeconds: tolerance, merchantID: merchant)
        do {
            return (scheme, try VerifyingKeyRing(partner), try SigningKeyRing(gateway))
        } catch {
            log.add(s.path, "key ring refused: \(error.code)")
            return nil
        }
    }
}

/// Where a key or secret comes from: an environment variable (preferred in production) or a file.
/// The material itself never appears in a message.
enum KeyMaterial {
    static func read(_ k: ObjectReader, folder: String) -> [UInt8]? {
        if let env = k.string("env", required: false, bytesMax: 128) {
            if let value = ProcessInfo.processInfo.environment[env], !value.isEmpty { return Array(value.utf8) }
            if k.raw("file") == nil {
                k.log.add(k.child("env"), "environment variable is not set")
                return nil
            }
        }
        guard let file = k.string("file", bytesMax: 512) else { return nil }
        let path = file.hasPrefix("/") ? file : "\(folder)/\(file)"
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 << 10 else {
            k.log.add(k.child("file"), "cannot read the key file (or larger than 64 KiB)")
            return nil
        }
        return trimmingOneNewline(Array(data))
    }

    /// A secret file written with `echo` ends in a newline that is not part of the secret; the
    /// CLI (`jointlend sign --key`) drops one too, so both read the same key.
    static func trimmingOneNewline(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        if b.last == 0x0A { b.removeLast(); if b.last == 0x0D { b.removeLast() } }
        return b
    }
}
