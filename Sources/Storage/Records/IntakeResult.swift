import LendingCore

/// The answer to a loan intake. A replay with the same loan returns the first answer.
public enum IntakeResult: Sendable, Hashable {
    /// The loan was routed: pool tranches reserved and funded, partner tranches requested.
    case planned(loanId: String, state: LoanState, tranches: [TrancheRecord])
    /// The router would not fund it; nothing was reserved.
    case rejected(Rejection)
}

// MARK: - Stored encoding

extension IntakeResult {
    var encoded: [UInt8] {
        var writer = ByteWriter()
        switch self {
        case .planned(let loanId, let state, let tranches):
            writer.write(true)
            writer.write(loanId)
            writer.write(state.rawValue)
            writer.write(tranches.count)
            for tranche in tranches { tranche.encode(into: &writer) }
        case .rejected(let rejection):
            writer.write(false)
            writer.write(rejection.code.rawValue)
            writer.write(rejection.detail)
            writer.write(rejection.ruleId ?? "")
            writer.write(rejection.ruleVersion ?? -1)
        }
        return writer.bytes
    }

    init(encoded: [UInt8]) throws {
        var reader = ByteReader(encoded)
        if try reader.readBool() {
            let loanId = try reader.readString()
            guard let state = LoanState(rawValue: try reader.readString()) else { throw ByteReader.Malformed() }
            let count = try reader.readInt()
            guard count >= 0, count <= RuleSet.sharesPerRuleMax * 4 else { throw ByteReader.Malformed() }
            var tranches: [TrancheRecord] = []
            for _ in 0..<count { tranches.append(try TrancheRecord(from: &reader)) }
            self = .planned(loanId: loanId, state: state, tranches: tranches)
        } else {
            guard let code = RejectionCode(rawValue: try reader.readString()) else { throw ByteReader.Malformed() }
            let detail = try reader.readString()
            let ruleId = try reader.readString()
            let version = try reader.readInt()
            self = .rejected(Rejection(code, detail, ruleId: ruleId.isEmpty ? nil : ruleId, ruleVersion: version < 0 ? nil : version))
        }
    }
}
