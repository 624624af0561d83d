import LendingCore
import Synchronization

/// LendingCore's SplitMix64 behind a lock, shareable across tasks: reproducible randomness for
/// backoff jitter and the simulator's faults (print the seed, replay the run). Not for secrets.
public final class SeededRandom: Sendable {
    public let seed: UInt64
    private let generator: Mutex<SplitMix64>

    public init(seed: UInt64) {
        self.seed = seed
        generator = Mutex(SplitMix64(seed: seed))
    }

    public func next() -> UInt64 {
        generator.withLock { $0.next() }
    }

    /// Uniform in `0..<upperBound` (upperBound > 0); the modulo bias is negligible for the small bounds used.
    public func below(_ upperBound: UInt64) -> UInt64 { next() % upperBound }

    /// True with probability `percent`/100 (`percent` may be fractional: 0.5 is one in two hundred).
    public func chance(percent: Double) -> Bool {
        guard percent > 0 else { return false }
        return Double(next() >> 11) / Double(UInt64(1) << 53) * 100 < percent
    }
}
