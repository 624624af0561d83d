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

    /// What decoding needs of a contract — its names for the confirmation fields, its result
    /// codes — resolved once per contract rather than per request. A class, so a request
    /// borrows it instead of copying its strings.
    final class FieldNames: Sendable {
        let partnerId: String
        let resultCodes: [String: PartnerContract.FundingOutcome]
        let serial: String
        let trancheId: String
        let outcome: String
        let loanId: String
        let amountMinor: String
        let currency: String
        /// Every member a body may carry. An array: a linear scan of a few short names beats hashing.
        let known: [String]

        init(_ contract: PartnerContract) {
            partnerId = contract.partnerId
            resultCodes = contract.resultCodes
            serial = contract.partnerField("serial")
            trancheId = contract.partnerField("trancheId")
            outcome = contract.partnerField("outcome")
            loanId = contract.partnerField("loanId")
            amountMinor = contract.partnerField("amountMinor")
            currency = contract.partnerField("currency")
            let mapped = PartnerContract.mappedFields.map(contract.partnerField)
            let signing = contract.scheme.format == .sortedParams ? ConfirmationCodec.signingParameters.sorted() : []
            known = mapped + signing.filter { !mapped.contains($0) }
        }
    }

    /// Every byte in 0x21...0x7E, read over the string's contiguous bytes (the generic
    /// `utf8.allSatisfy` walks string indexes, several times slower per confirmation).
    static func isVisibleASCII(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            var outside: UInt8 = 0
            for byte in bytes { outside |= (byte &- 0x21) > 0x5D ? 1 : 0 }
            return outside == 0
        } ?? text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    static func decode(_ body: [UInt8], contract: PartnerContract) throws(HTTPError) -> Decoded {
        try decode(body, names: FieldNames(contract))
    }

    static func decode(_ body: [UInt8], names: FieldNames) throws(HTTPError) -> Decoded {
        func bad(_ field: String, _ message: String) -> HTTPError {
            HTTPError(.badRequest, code: "invalid_field", message: message, field: field)
        }
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch { throw bad("$", error.description) }
        guard case .object(let members) = json else { throw bad("$", "expected an object") }
        for m in members where !names.known.contains(m.key) { throw bad("$.\(m.key)", "unknown field") }
        func member(_ name: String) -> JSONValue? {
            for m in members where m.key == name { return m.value }
            return nil
        }
        func text(_ name: String, bytesMax: Int = 64) throws(HTTPError) -> String {
            guard let v = member(name) else { throw bad("$.\(name)", "missing required field") }
            guard case .string(let s) = v, !s.isEmpty, s.utf8.count <= bytesMax else { throw bad("$.\(name)", "expected a non-empty string of at most \(bytesMax) bytes") }
            return s
        }
        func present(_ name: String) -> Bool {
            guard let v = member(name) else { return false }
            return v != .null
        }
        func integer(_ name: String) throws(HTTPError) -> Int64 {
            guard let v = member(name) else { throw bad("$.\(name)", "missing required field") }
            switch v {
            case .number(let n): if let i = Int64(n), i > 0 { return i }
            case .string(let s): if let i = Int64(s), i > 0 { return i }  // sorted-params partners send strings
            default: break
            }
            throw bad("$.\(name)", "expected a positive integer")
        }
        let serial = try text(names.serial)
        guard isVisibleASCII(serial) else { throw bad("$.\(names.serial)", "must be printable ASCII") }
        let trancheId = try integer(names.trancheId)
        let code = try text(names.outcome)
        guard let outcome = names.resultCodes[code] else {
            throw bad("$.\(names.outcome)", "unknown result code; expected one of \(names.resultCodes.keys.sorted().joined(separator: ", "))")
        }
        let stated = Stated(loanId: present(names.loanId) ? try text(names.loanId) : nil,
                            amountMinor: present(names.amountMinor) ? try integer(names.amountMinor) : nil,
                            currency: present(names.currency) ? try text(names.currency, bytesMax: 8) : nil)
        return Decoded(confirmation: FundingConfirmation(funderId: names.partnerId, serial: serial, trancheId: trancheId,
                                                         outcome: outcome == .funded ? .funded : .declined),
                       stated: stated)
    }
}
