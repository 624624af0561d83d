import Synchronization

/// SplitMix64 behind a lock: reproducible randomness for backoff jitter and the simulator's
/// faults (print the seed, replay the run). Not for anything secret.
public final class SeededRandom: Sendable {
    public let seed: UInt64
    private let state: Mutex<UInt64>

    public init(seed: UInt64) {
        self.seed = seed
        state = Mutex(seed)
    }

    public func next() -> UInt64 {
        state.withLock { s in
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Uniform in `0..<upperBound` (upperBound > 0); the modulo bias is negligible for the small bounds used.
    public func below(_ upperBound: UInt64) -> UInt64 { next() % upperBound }

    /// True with probability `percent`/100 (`percent` may be fractional: 0.5 is one in two hundred).
    public func chance(percent: Double) -> Bool {
        guard percent > 0 else { return false }
        return Double(next() >> 11) / Double(UInt64(1) << 53) * 100 < percent
    }
}
