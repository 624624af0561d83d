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

/// A loan the deadline sweeper ended.
public struct ExpiryResult: Sendable, Hashable {
    public var loanId: String
    public var expiredTrancheIds: [Int64]
    public var releasedTrancheIds: [Int64]
}

// MARK: - Stored encoding

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
