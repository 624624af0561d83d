import Storage

/// An outbox payload as the dispatcher reads it. Fields absent from a type are empty.
struct OutboxPayload: Sendable {
    static let fundingRequest = "funding.request"
    static let fundingStatus = "funding.status"
    static let fundingCancel = "funding.cancel"

    var type: String
    var tranche: PartnerWire.Tranche
    var funderId: String
    var reason: String?
    var resends: Int

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    init(_ bytes: [UInt8]) throws {
        let json = try JSONParser.parse(bytes)
        guard case .string(let type)? = json["type"] else { throw Malformed(description: "type is missing") }
        self.type = type
        func text(_ k: String) -> String? { if case .string(let s)? = json[k] { return s } else { return nil } }
        func int(_ k: String) -> Int64? { if case .number(let n)? = json[k] { return Int64(n) } else { return nil } }
        guard let loanId = text("loanId") else { throw Malformed(description: "loanId is missing") }
        let isPartner = type.hasPrefix("funding.")
        if isPartner, int("trancheId") == nil || int("amountMinor") == nil || text("currency") == nil {
            throw Malformed(description: "a partner message needs trancheId, amountMinor and currency")
        }
        tranche = PartnerWire.Tranche(trancheId: int("trancheId") ?? 0, loanId: loanId, amountMinor: int("amountMinor") ?? 0, currency: text("currency") ?? "")
        funderId = text("funderId") ?? ""
        reason = text("reason")
        resends = Int(int("resends") ?? 0)
    }

    /// The same tranche as a message of another type (a status query after a request, ...).
    func with(type newType: String) -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = [
            ("type", .string(newType)), ("loanId", .string(tranche.loanId)), ("trancheId", .number(String(tranche.trancheId))),
            ("funderId", .string(funderId)), ("amountMinor", .number(String(tranche.amountMinor))), ("currency", .string(tranche.currency)),
        ]
        if resends > 0 { members.append(("resends", .number(String(resends)))) }
        return Array(JSONWriter.string(.object(members)).utf8)
    }
}
