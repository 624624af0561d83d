#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex owned by a class, so it never moves in memory (swift-nio's `NIOLock` shape).
/// Used instead of `Synchronization.Mutex` because the values it guards are C pointers, which
/// are not `Sendable` and cannot cross a `Mutex`'s `sending` boundary.
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
