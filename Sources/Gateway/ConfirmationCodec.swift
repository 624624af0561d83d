import HTTP
import PartnerSigning
import Storage

/// Decodes a partner's confirmation body through its contract's field names and result codes.
enum ConfirmationCodec {
    /// Signing parameters a `sorted-params` body carries beside the business fields.
    static let signingParameters: Set<String> = ["key_id", "timestamp", "nonce", "sign", "sign_type"]

    /// What the partner says about the tranche besides its answer: its loan, amount and currency,
    /// each when present. They must agree with the tranche; an amount that differs is never booked.
    struct Stated: Sendable {
        var loanId: String?
        var amountMinor: Int64?
        var currency: String?
    }

    struct Decoded: Sendable {
        var confirmation: FundingConfirmation
        var stated: Stated
    }

    static func decode(_ body: [UInt8], contract: PartnerContract) throws(HTTPError) -> Decoded {
        func bad(_ field: String, _ message: String) -> HTTPError {
            HTTPError(.badRequest, code: "invalid_field", message: message, field: field)
        }
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch { throw bad("$", error.description) }
        guard case .object(let members) = json else { throw bad("$", "expected an object") }
        let known = Set(PartnerContract.mappedFields.map(contract.partnerField)).union(contract.scheme.format == .sortedParams ? signingParameters : [])
        for m in members where !known.contains(m.key) { throw bad("$.\(m.key)", "unknown field") }
        func text(_ gatewayField: String, bytesMax: Int = 64) throws(HTTPError) -> String {
            let name = contract.partnerField(gatewayField)
            guard let v = json[name] else { throw bad("$.\(name)", "missing required field") }
            guard case .string(let s) = v, !s.isEmpty, s.utf8.count <= bytesMax else { throw bad("$.\(name)", "expected a non-empty string of at most \(bytesMax) bytes") }
            return s
        }
        func present(_ gatewayField: String) -> Bool {
            guard let v = json[contract.partnerField(gatewayField)] else { return false }
            return v != .null
        }
        func integer(_ gatewayField: String) throws(HTTPError) -> Int64 {
            let name = contract.partnerField(gatewayField)
            guard let v = json[name] else { throw bad("$.\(name)", "missing required field") }
            switch v {
            case .number(let n): if let i = Int64(n), i > 0 { return i }
            case .string(let s): if let i = Int64(s), i > 0 { return i }  // sorted-params partners send strings
            default: break
            }
            throw bad("$.\(name)", "expected a positive integer")
        }
        let serial = try text("serial")
        guard serial.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw bad("$.\(contract.partnerField("serial"))", "must be printable ASCII") }
        let trancheId = try integer("trancheId")
        let code = try text("outcome")
        guard let outcome = contract.resultCodes[code] else {
            throw bad("$.\(contract.partnerField("outcome"))", "unknown result code; expected one of \(contract.resultCodes.keys.sorted().joined(separator: ", "))")
        }
        let stated = Stated(loanId: present("loanId") ? try text("loanId") : nil,
                            amountMinor: present("amountMinor") ? try integer("amountMinor") : nil,
                            currency: present("currency") ? try text("currency", bytesMax: 8) : nil)
        return Decoded(confirmation: FundingConfirmation(funderId: contract.partnerId, serial: serial, trancheId: trancheId,
                                                         outcome: outcome == .funded ? .funded : .declined),
                       stated: stated)
    }
}
