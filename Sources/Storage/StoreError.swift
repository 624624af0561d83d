/// Errors the store answers commands with. Stable cases the API layer maps to HTTP statuses;
/// none carries bound values, borrower data or secrets.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The writer's queue is full: answer 503 with `Retry-After`.
    case overloaded(retryAfterMilliseconds: Int)
    /// Same idempotency key, different request: 409, nothing changed.
    case idempotencyConflict(scope: String, key: String)
    /// A command's input is invalid: which field, what is wrong. Nothing changed.
    case invalidCommand(field: String, reason: String)
    /// A referenced record does not exist.
    case notFound(entity: String, id: String)
    /// A state machine refused a transition (e.g. confirming a tranche that is already final).
    case invalidTransition(entity: String, id: String, from: String, to: String)
    /// A ledger transaction does not balance in a currency. Nothing was written.
    case unbalancedTransaction(currency: String, sumMinor: Int64)
    /// The store is closed (shutting down); the command was not applied.
    case closed
    /// The database failed; the command was not applied.
    case database(DatabaseError)

    public var description: String {
        switch self {
        case .overloaded(let ms): "store overloaded; retry after \(ms) ms"
        case .idempotencyConflict(let scope, let key): "idempotency key \(key) in \(scope) was used with a different request"
        case .invalidCommand(let field, let reason): "invalid \(field): \(reason)"
        case .notFound(let entity, let id): "\(entity) \(id) not found"
        case .invalidTransition(let entity, let id, let from, let to): "\(entity) \(id) cannot go from \(from) to \(to)"
        case .unbalancedTransaction(let currency, let sum): "ledger transaction does not balance in \(currency) (sum \(sum))"
        case .closed: "store is closed"
        case .database(let error): "database error: \(error)"
        }
    }
}
