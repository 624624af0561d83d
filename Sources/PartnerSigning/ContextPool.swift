/// A small pool of OpenSSL contexts (`EVP_MD_CTX`, `EVP_MAC_CTX`, `EVP_PKEY_CTX`) prepared once
/// for one key. A context is not thread-safe, but preparing one per call costs more than the
/// operation itself for HMAC and RSA verification, so each call borrows a prepared context and
/// returns it. At most `idleMax` contexts are kept; a burst beyond that frees the extras.
final class ContextPool: @unchecked Sendable {
    static let idleMax = 16

    private let lock = Lock()
    private var idle: [OpaquePointer] = []
    private let make: () -> OpaquePointer?
    private let free: (OpaquePointer) -> Void

    init(make: @escaping () -> OpaquePointer?, free: @escaping (OpaquePointer) -> Void) {
        self.make = make
        self.free = free
        idle.reserveCapacity(Self.idleMax)
    }

    deinit {
        for context in idle { free(context) }
    }

    /// Runs `body` with a prepared context. A context whose use failed is freed, not returned,
    /// so a half-finished operation never leaks into the next call.
    func withContext<T>(_ body: (OpaquePointer) throws(SigningError) -> T) throws(SigningError) -> T {
        let borrowed = lock.withLock { idle.popLast() }
        guard let context = borrowed ?? make() else {
            throw SigningError.cryptoFailure(operation: "context setup")
        }
        let result: T
        do {
            result = try body(context)
        } catch {
            free(context)
            throw error
        }
        let kept = lock.withLock { () -> Bool in
            guard idle.count < Self.idleMax else { return false }
            idle.append(context)
            return true
        }
        if !kept { free(context) }
        return result
    }
}
