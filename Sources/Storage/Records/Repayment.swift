import LendingCore

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
