import LendingCore

/// A stored tranche: one funder's part of one loan.
public struct TrancheRecord: Sendable, Hashable {
    public var id: Int64
    public var loanId: String
    public var funderId: String
    public var kind: FunderKind
    public var shareBps: Int
    public var amountMinor: Int64
    public var state: TrancheState
}

/// A stored loan with its tranches (ended ones included, in creation order).
public struct LoanRecord: Sendable, Hashable {
    public var loan: Loan
    public var state: LoanState
    public var ruleId: String
    public var ruleVersion: Int
    public var deadlineAt: Int64
    public var tranches: [TrancheRecord]
}

/// The answer to a loan intake. A replay with the same loan returns the first answer.
public enum IntakeResult: Sendable, Hashable {
    /// The loan was routed: pool tranches reserved and funded, partner tranches requested.
    case planned(loanId: String, state: LoanState, tranches: [TrancheRecord])
    /// The router would not fund it; nothing was reserved.
    case rejected(Rejection)
}

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

/// A loan the deadline sweeper ended.
public struct ExpiryResult: Sendable, Hashable {
    public var loanId: String
    public var expiredTrancheIds: [Int64]
    public var releasedTrancheIds: [Int64]
}

// MARK: - Stored encodings

extension TrancheRecord {
    func encode(into writer: inout ByteWriter) {
        writer.write(id)
        writer.write(loanId)
        writer.write(funderId)
        writer.write(kind.rawValue)
        writer.write(shareBps)
        writer.write(amountMinor)
        writer.write(state.rawValue)
    }

    init(from reader: inout ByteReader) throws {
        id = try reader.readInt64()
        loanId = try reader.readString()
        funderId = try reader.readString()
        guard let kind = FunderKind(rawValue: try reader.readString()) else { throw ByteReader.Malformed() }
        self.kind = kind
        shareBps = try reader.readInt()
        amountMinor = try reader.readInt64()
        guard let state = TrancheState(rawValue: try reader.readString()) else { throw ByteReader.Malformed() }
        self.state = state
    }
}

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

/// A repayment event from the platform: what the borrower paid on one loan.
public struct Repayment: Sendable, Hashable {
    /// The platform's id for this repayment: the idempotency key.
    public var repaymentId: String
    public var loanId: String
    public var principalMinor: Int64
    public var interestMinor: Int64
    /// Penalty interest and fees: the platform's unless terms say otherwise.
    public var penaltyAndFeesMinor: Int64

    public init(repaymentId: String, loanId: String, principalMinor: Int64, interestMinor: Int64, penaltyAndFeesMinor: Int64 = 0) {
        self.repaymentId = repaymentId
        self.loanId = loanId
        self.principalMinor = principalMinor
        self.interestMinor = interestMinor
        self.penaltyAndFeesMinor = penaltyAndFeesMinor
    }
}

/// One funder's part of a repayment.
public struct RepaymentPart: Sendable, Hashable {
    public var trancheId: Int64
    public var funderId: String
    public var principalMinor: Int64
    public var interestMinor: Int64
}

/// The answer to a repayment. A replay with the same id and body returns the first answer.
public struct RepaymentResult: Sendable, Hashable {
    public var repaymentId: String
    public var loanId: String
    public var loanState: LoanState
    public var parts: [RepaymentPart]
    /// Interest not earned by funders, plus penalty and fees: the platform's service fee.
    public var platformFeeMinor: Int64
}

extension RepaymentResult {
    var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.write(repaymentId)
        writer.write(loanId)
        writer.write(loanState.rawValue)
        writer.write(platformFeeMinor)
        writer.write(parts.count)
        for part in parts {
            writer.write(part.trancheId)
            writer.write(part.funderId)
            writer.write(part.principalMinor)
            writer.write(part.interestMinor)
        }
        return writer.bytes
    }

    init(encoded: [UInt8]) throws {
        var reader = ByteReader(encoded)
        repaymentId = try reader.readString()
        loanId = try reader.readString()
        guard let state = LoanState(rawValue: try reader.readString()) else { throw ByteReader.Malformed() }
        loanState = state
        platformFeeMinor = try reader.readInt64()
        let count = try reader.readInt()
        guard count >= 0, count <= 256 else { throw ByteReader.Malformed() }
        parts = []
        for _ in 0..<count {
            parts.append(RepaymentPart(trancheId: try reader.readInt64(), funderId: try reader.readString(),
                                       principalMinor: try reader.readInt64(), interestMinor: try reader.readInt64()))
        }
    }
}
