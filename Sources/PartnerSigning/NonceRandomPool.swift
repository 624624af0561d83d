import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// CSPRNG bytes for nonces, drawn from a buffer that `RAND_bytes` refills `refillBytes` at a
/// time. One `RAND_bytes` call costs about as much for 4 KiB as for 32 bytes (its cost is the
/// DRBG's locking and bookkeeping), so a signed ack no longer pays for one per nonce.
///
/// Only nonces draw from here: they are public (sent in headers), so bytes waiting in the
/// buffer reveal nothing. IVs and generated secrets keep calling `SecureRandom` directly.
///
/// Each byte is handed out once. A forked child must not hand out the bytes its parent will:
/// a `pthread_atfork` child handler empties the buffer, so the child's first draw refills
/// from OpenSSL (whose DRBG reseeds itself after a fork). The prepare handler takes the lock,
/// so no draw is halfway through when the process is copied.
final class NonceRandomPool: @unchecked Sendable {
    // @unchecked: `buffer` and `position` are only touched with `mutex` held.
    /// The pool `PartnerSigner.makeNonce` draws from; the fork handlers are registered with it.
    static let shared: NonceRandomPool = {
        let pool = NonceRandomPool()
        let rc = pthread_atfork(
            { NonceRandomPool.shared.lockForFork() },
            { NonceRandomPool.shared.unlockInParent() },
            { NonceRandomPool.shared.emptyAndUnlockInChild() })
        precondition(rc == 0, "pthread_atfork failed: \(rc)")
        return pool
    }()
    static let refillBytes = 4_096

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let buffer: UnsafeMutablePointer<UInt8>
    /// Bytes before `position` were handed out; `refillBytes` means empty.
    private var position: Int

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
        buffer = .allocate(capacity: Self.refillBytes)
        buffer.initialize(repeating: 0, count: Self.refillBytes)
        position = Self.refillBytes
    }

    deinit {
        pthread_mutex_destroy(mutex)
        buffer.deallocate()
        mutex.deallocate()
    }

    /// Copies `out.count` (at most `refillBytes`) fresh CSPRNG bytes into `out`; false if
    /// OpenSSL could not supply them, and then `out` holds nothing usable.
    func fill(_ out: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        guard let destination = out.baseAddress, out.count > 0 else { return true }
        guard out.count <= Self.refillBytes else { return false }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if Self.refillBytes - position < out.count {
            guard RAND_bytes(buffer, Int32(Self.refillBytes)) == 1 else {
                position = Self.refillBytes
                return false
            }
            position = 0
        }
        destination.update(from: buffer + position, count: out.count)
        // Handed-out bytes are overwritten, so nothing can give them out twice.
        (buffer + position).update(repeating: 0, count: out.count)
        position += out.count
        return true
    }

    /// Bytes waiting to be handed out.
    var bufferedByteCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return Self.refillBytes - position
    }

    /// Drops what is buffered; the next draw refills.
    func discard() {
        pthread_mutex_lock(mutex)
        position = Self.refillBytes
        pthread_mutex_unlock(mutex)
    }

    private func lockForFork() { pthread_mutex_lock(mutex) }
    private func unlockInParent() { pthread_mutex_unlock(mutex) }
    private func emptyAndUnlockInChild() {
        position = Self.refillBytes
        pthread_mutex_unlock(mutex)
    }
}
