import Synchronization

/// A small pool of OpenSSL contexts (`EVP_MD_CTX`, `EVP_MAC_CTX`, `EVP_PKEY_CTX`) prepared once
/// for one key. A context is not thread-safe, but preparing one per call costs more than the
/// operation itself for HMAC and RSA verification, so each call borrows a prepared context and
/// returns it. One context sits in a lock-free slot (the common single-caller case costs one
/// atomic exchange); the rest wait in a locked list of at most `idleMax`, and a burst beyond
/// that frees the extras.
final class ContextPool: @unchecked Sendable {
    static let idleMax = 16

    /// The fast slot: a context's address, or 0 when empty.
    private let hot = Atomic<UInt>(0)
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
        if let context = OpaquePointer(bitPattern: hot.load(ordering: .acquiring)) { free(context) }
        for context in idle { free(context) }
    }

    /// Takes a prepared context (or makes one); nil only if OpenSSL cannot make one. Pair with
    /// `recycle` after a successful use, or `discard` after a failed one.
    @inline(__always)
    func borrow() -> OpaquePointer? {
        if let context = OpaquePointer(bitPattern: hot.exchange(0, ordering: .acquiring)) { return context }
        return lock.withLock { idle.popLast() } ?? makeRetrying()
    }

    /// Seen once in a full parallel test run: OpenSSL failed to prepare a context that the same
    /// key prepares everywhere else (its method store under concurrent fetches). A failure is
    /// retried twice with the error queue cleared; one that persists is still reported.
    private func makeRetrying() -> OpaquePointer? {
        for _ in 0..<3 {
            if let context = make() { return context }
            EVPAlgorithms.clearErrors()
        }
        return nil
    }

    @inline(__always)
    func recycle(_ context: OpaquePointer) {
        let bits = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(context)))
        if hot.compareExchange(expected: 0, desired: bits, ordering: .releasing).exchanged { return }
        let kept = lock.withLock { () -> Bool in
            guard idle.count < Self.idleMax else { return false }
            idle.append(context)
            return true
        }
        if !kept { free(context) }
    }

    func discard(_ context: OpaquePointer) { free(context) }

    /// Runs `body` with a prepared context. A context whose use failed is freed, not returned,
    /// so a half-finished operation never leaks into the next call.
    func withContext<T>(_ body: (OpaquePointer) throws(SigningError) -> T) throws(SigningError) -> T {
        guard let context = borrow() else { throw SigningError.cryptoFailure(operation: "context setup") }
        let result: T
        do {
            result = try body(context)
        } catch {
            discard(context)
            throw error
        }
        recycle(context)
        return result
    }
}
