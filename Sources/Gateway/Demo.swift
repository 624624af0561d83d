import Foundation
import HTTP
import LendingCore
import PartnerSigning
import Storage

/// `jointlend demo`: a real gateway on loopback, a few hundred signed approved loans from the
/// "platform", and each partner answering its funding requests as a simulated bank would
/// (signed confirmations in its own scheme, some declines). Prints what happened.
public enum Demo {
    public struct Report: Sendable {
        public var loansPosted = 0
        public var planned = 0
        public var rejectedByReason: [String: Int] = [:]
        public var confirmationsFunded = 0
        public var confirmationsDeclined = 0
        public var rerouted = 0
        public var loansByState: [String: Int] = [:]
        /// rule → funder → (amount funded under the rule, target bps)
        public var ruleMix: [String: [String: (amountMinor: Int64, targetBps: Int)]] = [:]
        public var positions: [(funderId: String, kind: String, line: String)] = []
        public var ledgerProblem: String?
        public var auditProblem: String?
        public var databasePath = ""
    }

    /// The partner's own signer, from the test-only keys in its contract folder
    /// (`keys/shared/secret` for HMAC, `keys/partner/private.pem` otherwise).
    public static func partnerSigner(_ contract: PartnerContract) throws -> PartnerSigner {
        let file = contract.scheme.algorithm == .hmacSHA256 ? "keys/shared/secret" : "keys/partner/private.pem"
        guard let material = FileManager.default.contents(atPath: "\(contract.directory)/\(file)") else {
            throw ConfigError(file: "\(contract.directory)/\(file)", problems: [DecodingProblem(path: "$", message: "test key missing")])
        }
        let key = try SigningKey(algorithm: contract.scheme.algorithm, material: Array(material))
        return try PartnerSigner(scheme: contract.scheme, keyRing: SigningKeyRing([.init(id: contract.partnerKeys.entries[0].id, key: key)]))
    }

    public static func run(options: GatewayServer.Options, loans: Int, seed: UInt64, declinePercent: Int) async throws -> Report {
        var report = Report()
        let server = try await GatewayServer(options: options)
        try server.start()
        defer { server.stop() }
        report.databasePath = server.databasePath
        let client = HTTPClient()
        defer { client.shutdown() }
        let port = server.port
        let now = options.clock()
        let secret = try GatewayServer.platformSecret(server.config)
        let platform = try PartnerSigner(scheme: SigningScheme(format: .jl1, algorithm: .hmacSHA256),
                                         keyRing: SigningKeyRing([.init(id: server.config.runtime.platform.keyId, key: try SigningKey(algorithm: .hmacSHA256, material: secret))]))
        func send(_ method: HTTPMethod, _ target: String, _ body: [UInt8], _ headers: [(name: String, value: String)]) async throws -> HTTPClient.Response {
            var h = HTTPHeaders()
            for x in headers { h.add(name: x.name, value: x.value) }
            h.add(name: "Content-Type", value: "application/json")
            return try await client.execute(.init(method: method, host: "127.0.0.1", port: port, target: target, headers: h, body: body), timeoutMilliseconds: 10_000)
        }

        var rng = SplitMix64(seed: seed)
        let products = ["consumer", "consumer", "consumer", "auto", "edu"]
        let grades = ["A", "B", "B", "C", "D"]
        let regions = ["GD", "GD", "BJ", "SH", "FJ", "ZJ"]
        var requested: [(partnerId: String, trancheId: String)] = []
        for i in 0..<loans {
            let amount = Int64(rng.next() % 9_900_000) + 100_000
            let body = Array(#"{"loanId":"DEMO-\#(seed)-\#(i)","borrowerRef":"BRW-\#(rng.next() % 1_000_000)","amountMinor":\#(amount),"currency":"CNY","termMonths":\#(6 + Int(rng.next() % 30)),"annualRateBps":1800,"product":"\#(products[Int(rng.next() % 5)])","riskGrade":"\#(grades[Int(rng.next() % 5)])","region":"\#(regions[Int(rng.next() % 6)])","channel":"app","approvedAt":\#(now)}"#.utf8)
            let signed = try platform.sign(.request, method: "POST", pathAndQuery: "/v1/loans", body: body, timestamp: now, nonce: PartnerSigner.makeNonce())
            let r = try await send(.POST, "/v1/loans", body, signed.headers)
            report.loansPosted += 1
            let json = try? JSONParser.parse(r.body)
            if r.status == 201, case .array(let tranches)? = json?["tranches"] {
                report.planned += 1
                for t in tranches where t["state"] == .string("requested") {
                    if case .string(let f)? = t["funderId"], case .number(let id)? = t["trancheId"] { requested.append((f, id)) }
                }
            } else if case .string(let code)? = json?["error"]?["code"] {
                report.rejectedByReason[code, default: 0] += 1
            }
        }

        // Partners answer, possibly several rounds as declines are re-routed to fallbacks.
        var serial = 0
        var round = 0
        while !requested.isEmpty, round < 8 {
            round += 1
            var next: [(String, String)] = []
            for (partnerId, trancheId) in requested {
                guard let contract = server.api.contracts[partnerId] else { continue }
                let signer = try partnerSigner(contract)
                serial += 1
                let declined = Int(rng.next() % 100) < declinePercent
                guard let code = contract.resultCodes.first(where: { $0.value == (declined ? .declined : .funded) })?.key else { continue }
                var members: [(key: String, value: JSONValue)] = [
                    (contract.partnerField("serial"), .string("\(partnerId.uppercased())-\(seed)-\(serial)")),
                    (contract.partnerField("trancheId"), contract.scheme.format == .sortedParams ? .string(trancheId) : .number(trancheId)),
                    (contract.partnerField("outcome"), .string(code)),
                ]
                let target = "/v1/partners/\(partnerId)/confirmations"
                var body = Array(JSONWriter.string(.object(members)).utf8)
                let signed = try signer.sign(.callback, method: "POST", pathAndQuery: target, body: body, timestamp: now, nonce: PartnerSigner.makeNonce())
                if contract.scheme.format == .sortedParams {
                    for p in signed.parameters { members.append((p.name, .string(p.value))) }
                    body = Array(JSONWriter.string(.object(members)).utf8)
                }
                let r = try await send(.POST, target, body, signed.headers)
                guard r.status == 200, let ack = try? JSONParser.parse(r.body) else { continue }
                if declined { report.confirmationsDeclined += 1 } else { report.confirmationsFunded += 1 }
                if let rep = ack["replacement"], case .string(let f)? = rep["funderId"], case .number(let id)? = rep["trancheId"] {
                    report.rerouted += 1
                    if rep["state"] == .string("requested") { next.append((f, id)) }
                }
            }
            requested = next
        }

        // What happened, read back from the store.
        let router = server.config.makeRouter()
        for i in 0..<loans {
            guard let record = try await server.store.loan(id: "DEMO-\(seed)-\(i)") else { continue }
            report.loansByState[record.state.rawValue, default: 0] += 1
            guard let rule = router.ruleSet.rule(id: record.ruleId) else { continue }
            let targets = targetBps(rule)
            for t in record.tranches where t.state == .funded || t.state == .requested {
                report.ruleMix[rule.id, default: [:]][t.funderId, default: (0, targets[t.funderId] ?? 0)].amountMinor += t.amountMinor
            }
        }
        for f in server.config.funders {
            switch f.kind {
            case .pool:
                let available = try await server.store.balance(account: LedgerAccounts.poolAvailable(f.id))
                let deployed = try await server.store.balance(account: LedgerAccounts.poolDeployed(f.id))
                report.positions.append((f.id, "pool", "available \(Money(amountMinor: available, currency: f.currency)), deployed \(Money(amountMinor: deployed, currency: f.currency))"))
            case .partner:
                let p = try server.store.partnerPosition(funderId: f.id, now: now, businessDayOffsetSeconds: server.config.businessDayUtcOffsetSeconds)
                let limit = f.limits.exposureLimitMinor.map { " of limit \(Money(amountMinor: $0, currency: f.currency))" } ?? ""
                report.positions.append((f.id, "partner", "exposure \(Money(amountMinor: p.exposureMinor, currency: f.currency))\(limit), funded \(Money(amountMinor: p.fundedPrincipalMinor, currency: f.currency))"))
            }
        }
        report.ledgerProblem = try await server.store.verifyLedger()
        report.auditProblem = try await server.store.verifyAudit()
        return report
    }

    /// Each funder's target share under a rule: fixed shares as given; weights scaled to the allocated part.
    static func targetBps(_ rule: RatioRule) -> [String: Int] {
        var out: [String: Int] = [:]
        switch rule.mode {
        case .coFunding(let shares): for s in shares { out[s.funderId] = s.bps }
        case .allocation(let w): for s in w { out[s.funderId] = s.bps }
        case .mixed(let fixed, let w):
            let rest = 10_000 - fixed.reduce(0) { $0 + $1.bps }
            for s in fixed { out[s.funderId] = s.bps }
            for s in w { out[s.funderId, default: 0] += s.bps * rest / 10_000 }
        }
        return out
    }

    public static func render(_ r: Report) -> String {
        var out = "JointLend demo\n==============\n"
        out += "loans posted \(r.loansPosted): planned \(r.planned)"
        if !r.rejectedByReason.isEmpty { out += ", rejected " + r.rejectedByReason.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
        out += "\nconfirmations: funded \(r.confirmationsFunded), declined \(r.confirmationsDeclined), re-routed to a fallback \(r.rerouted)\n"
        out += "loans by state: " + r.loansByState.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "\n\n"
        out += "achieved vs target share of funded amounts, per rule (fallbacks and declines move amounts off target):\n"
        for rule in r.ruleMix.keys.sorted() {
            let mix = r.ruleMix[rule]!
            let total = mix.values.reduce(Int64(0)) { $0 + $1.amountMinor }
            out += "  \(rule)\n"
            for f in mix.keys.sorted() {
                let (amount, target) = mix[f]!
                let achieved = total > 0 ? Apportionment.mulDivHalfEven(amount, 10_000, total) : 0
                out += "    \(f.padding(toLength: 14, withPad: " ", startingAt: 0)) achieved \(Self.percent(achieved)) target \(Self.percent(Int64(target)))  (\(Money(amountMinor: amount, currency: .cny)))\n"
            }
        }
        out += "\npositions:\n"
        for p in r.positions { out += "  \(p.funderId.padding(toLength: 14, withPad: " ", startingAt: 0)) \(p.kind.padding(toLength: 8, withPad: " ", startingAt: 0)) \(p.line)\n" }
        out += "\nledger verify: \(r.ledgerProblem ?? "sound")\naudit verify:  \(r.auditProblem ?? "unbroken")\n"
        out += "database left for inspection: \(r.databasePath)\n"
        return out
    }

    static func percent(_ bps: Int64) -> String { "\(bps / 100).\(String(format: "%02d", bps % 100))%" }
}
