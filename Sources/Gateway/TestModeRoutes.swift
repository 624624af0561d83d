import HTTP
import LendingCore
import PartnerSigning
import Storage

/// Routes that exist only in explicit test mode (`serve --test-mode`).
///
/// `POST /_test/pact/provider-states` is the Pact verifier's provider-state hook: for a state
/// "tranche N is requested from <partnerId>" it creates a loan with a requested tranche for that
/// partner, then signs the partner's confirmation for it with the contract's test-only partner
/// key at the gateway's current time and a fresh nonce, and answers the values the pact's
/// `ProviderState` generators inject (tranche id, serial, timestamp, nonce, signature,
/// `Authorization`). Never registered in production: it signs as a partner.
struct TestModeRoutes: Sendable {
    let store: any Store
    let contracts: [String: PartnerContract]
    let currency: Currency
    let clock: @Sendable () -> Int64
    /// Loans one setup may create looking for a tranche routed to the partner.
    static let loansPerSetupMax = 40

    init(store: any Store, contracts: [PartnerContract], currency: Currency, clock: @escaping @Sendable () -> Int64) {
        self.store = store
        var byId: [String: PartnerContract] = [:]
        for c in contracts { byId[c.partnerId] = c }
        self.contracts = byId
        self.currency = currency
        self.clock = clock
    }

    @Sendable func register(_ router: inout HTTP.Router) {
        router.onSync(.GET, "/_test/mode") { _, _ in Response.json(#"{"testMode":true}"#) }
        router.post("/_test/pact/provider-states") { [self] req, _ in try await providerState(req) }
    }

    func providerState(_ req: Request) async throws -> Response {
        func bad(_ field: String, _ message: String) -> HTTPError { HTTPError(.badRequest, code: "invalid_field", message: message, field: field) }
        let json: JSONValue
        do { json = try JSONParser.parse(req.body) } catch { throw bad("$", error.description) }
        guard case .string(let state)? = json["state"] else { throw bad("$.state", "missing provider state name") }
        if case .string(let action)? = json["action"], action == "teardown" { return Response.json("{}") }
        // "tranche 41 is requested from bank-a"
        guard let partnerId = state.split(separator: " ").last.map(String.init), state.contains(" is requested from "),
              let contract = contracts[partnerId] else { throw bad("$.state", "unknown provider state") }
        guard let keys = contract.simulatorKeys else { throw bad("$.state", "the contract has no test-only partner keys") }
        var code = contract.resultCodes.filter { $0.value == .funded }.keys.sorted().first ?? ""
        if case .string(let c)? = json["params"]?["resultCode"] { code = c }
        let tranche = try await requestedTranche(for: partnerId)
        let wire = try PartnerWire(contract: contract)
        let signer = try PartnerSigner(scheme: contract.scheme, keyRing: keys.partnerSigningKeys)
        let now = clock(), nonce = PartnerSigner.makeNonce()
        // The Pact verifier sends JSON bodies compact with keys in byte order (it re-serialises
        // the example after injecting values), so the signature covers exactly that form.
        guard case .object(let members) = wire.answerBody(tranche, code: code) else { preconditionFailure("answerBody builds an object") }
        let body = JSONValue.object(members.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) })
        let m = try PartnerWire.sign(.callback, method: .POST, target: "/v1/partners/\(partnerId)/confirmations", body: body,
                                     signer: signer, timestamp: now, nonce: nonce)
        var values: [(key: String, value: JSONValue)] = [
            ("trancheId", .number(String(tranche.trancheId))), ("serial", .string(tranche.serial)), ("loanId", .string(tranche.loanId)),
            ("amountMinor", .number(String(tranche.amountMinor))), ("timestamp", .string(String(now))), ("nonce", .string(nonce)),
        ]
        for h in m.headers.fields {
            switch h.name.lowercased() {
            case "authorization": values.append(("authorization", .string(h.value)))
            case "wechatpay-signature": values.append(("signature", .string(h.value)))
            default: break
            }
        }
        if case .object(let members)? = try? JSONParser.parse(m.body), case .string(let sign)? = JSONValue.object(members)["sign"] {
            values.append(("signature", .string(sign)))
        }
        values.append(("body", .string(String(decoding: m.body, as: UTF8.self))))
        return Response.json(JSONWriter.string(.object(values)))
    }

    /// Posts loans until one has a requested tranche for `partnerId` (routing is the
    /// configuration's, so the loan shapes are varied), and returns that tranche.
    func requestedTranche(for partnerId: String) async throws -> PartnerWire.Tranche {
        let shapes: [(String, String)] = [("consumer", "B"), ("auto", "B"), ("consumer", "C"), ("edu", "A"), ("consumer", "A")]
        for n in 0..<Self.loansPerSetupMax {
            let (product, grade) = shapes[n % shapes.count]
            let now = clock()
            let loan = Loan(loanId: "PACT-\(now)-\(PartnerSigner.makeNonce().prefix(12))", borrowerRef: "BRW-PACT-\(n)-\(now)", amountMinor: 1_000_001 + Int64(n),
                            currency: currency, termMonths: 12, annualRateBps: 1800, product: product, riskGrade: grade, region: "GD", channel: "app", approvedAt: now)
            guard case .planned(_, _, let tranches) = try await store.intake(loan, now: now) else { continue }
            if let t = tranches.first(where: { $0.funderId == partnerId && $0.state == .requested }) {
                return PartnerWire.Tranche(trancheId: t.id, loanId: t.loanId, amountMinor: t.amountMinor, currency: currency.code)
            }
        }
        throw HTTPError(.unprocessableContent, code: "no_route", message: "no loan shape routes a tranche to \(partnerId)")
    }
}
