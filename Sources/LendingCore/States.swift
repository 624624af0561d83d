/// A refused state change. An illegal transition is a value, never a crash.
public struct TransitionError: Error, Hashable, Sendable, CustomStringConvertible {
    public let entity: String
    public let from: String
    public let to: String
    public var description: String { "illegal \(entity) transition \(from) → \(to)" }
}

/// A tranche's funding state (DOMAIN.md).
///
///     planned → requested → funded
///                         ↘ declined | expired   (then re-routed as a new tranche)
///     planned → funded      (pool tranches, reserved and funded at plan time)
///     planned → expired     (the deadline passed before the request went out)
///     funded  → released    (only when the loan as a whole is unfunded)
public enum TrancheState: String, Hashable, Sendable, CaseIterable {
    case planned, requested, funded, declined, expired, released

    public var isFinal: Bool {
        switch self {
        case .funded, .declined, .expired, .released: return true
        case .planned, .requested: return false
        }
    }

    public func canTransition(to next: TrancheState) -> Bool {
        switch (self, next) {
        case (.planned, .requested), (.planned, .funded), (.planned, .expired),
             (.requested, .funded), (.requested, .declined), (.requested, .expired),
             (.funded, .released):
            return true
        default:
            return false
        }
    }

    public func transition(to next: TrancheState) -> Result<TrancheState, TransitionError> {
        canTransition(to: next) ? .success(next) : .failure(TransitionError(entity: "tranche", from: rawValue, to: next.rawValue))
    }
}

/// A loan's state (DOMAIN.md).
///
///     awaiting_funding → funded → repaying → closed | charged_off
///                      ↘ unfunded
public enum LoanState: String, Hashable, Sendable, CaseIterable {
    case awaitingFunding = "awaiting_funding"
    case funded
    case unfunded
    case repaying
    case closed
    case chargedOff = "charged_off"

    /// Whether funding has reached an end (funded or not): the two-hour promise is kept.
    public var isFundingFinal: Bool { self != .awaitingFunding }

    public func canTransition(to next: LoanState) -> Bool {
        switch (self, next) {
        case (.awaitingFunding, .funded), (.awaitingFunding, .unfunded),
             (.funded, .repaying), (.funded, .closed), (.funded, .chargedOff),
             (.repaying, .closed), (.repaying, .chargedOff):
            return true
        default:
            return false
        }
    }

    public func transition(to next: LoanState) -> Result<LoanState, TransitionError> {
        canTransition(to: next) ? .success(next) : .failure(TransitionError(entity: "loan", from: rawValue, to: next.rawValue))
    }
}
