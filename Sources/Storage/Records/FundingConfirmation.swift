import LendingCore

/// A partner's answer for one tranche.
public struct FundingConfirmation: Sendable, Hashable {
    public enum Outcome: String, Sendable, Hashable {
        case funded, declined
    }

    public var funderId: String
    /// The partner's serial number: unique per partner, the idempotency key.
    public var serial: String
    public var trancheId: Int64
    public var outcome: Outcome

    public init(funderId: String, serial: String, trancheId: Int64, outcome: Outcome) {
        self.funderId = funderId
        self.serial = serial
        self.trancheId = trancheId
        self.outcome = outcome
    }
}

/// The answer to a confirmation. A replay with the same serial and body returns the first answer.
public struct ConfirmationResult: Sendable, Hashable {
    public var trancheId: Int64
    public var trancheState: TrancheState
    public var loanId: String
    public var loanState: LoanState
    /// After a decline: the tranche that replaced it, if a fallback funder could take it.
    public var replacement: TrancheRecord?
    /// After a decline no fallback could take: why the loan became unfunded.
    public var unfundedReason: RejectionCode?
}

// MARK: - Stored encoding

extension ConfirmationResult {
    var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.write(trancheId)
        writer.write(trancheState.rawValue)
        writer.write(loanId)
        writer.write(loanState.rawValue)
        writer.write(replacement != nil)
        replacement?.encode(into: &writer)
        writer.write(unfundedReason?.rawValue ?? "")
        return writer.bytes
    }

    init(encoded: [UInt8]) throws {
        var reader = ByteReader(encoded)
        trancheId = try reader.readInt64()
        guard let trancheState = TrancheState(rawValue: try reader.readString()) else { throw ByteReader.Malformed() }
        self.trancheState = trancheState
        loanId = try reader.readString()
        guard let loanState = LoanState(rawValue: try reader.readString()) else { throw ByteReader.Malformed() }
        self.loanState = loanState
        replacement = try reader.readBool() ? try TrancheRecord(from: &reader) : nil
        let reason = try reader.readString()
        unfundedReason = reason.isEmpty ? nil : RejectionCode(rawValue: reason)
    }
}
