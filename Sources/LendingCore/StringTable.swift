/// A small immutable map from strings to small integers, built once, looked up on the hot path.
///
/// The standard Dictionary hashes with per-process seeded SipHash, which dominates routing when a
/// decision needs several look-ups of short keys. Keys here are fixed at build time (rule-set
/// values, never attacker-chosen at insert), so an FNV-1a hash over UTF-8 with linear probing is
/// safe and several times cheaper. A miss costs one probe sequence, never a crash.
struct StringTable: Sendable {
    private var keys: [String?]
    private var values: [Int]
    private let mask: Int

    init(_ entries: [String: Int]) {
        var capacity = 8
        while capacity < entries.count * 2 { capacity <<= 1 }
        keys = Array(repeating: nil, count: capacity)
        values = Array(repeating: -1, count: capacity)
        mask = capacity - 1
        for (k, v) in entries.sorted(by: { $0.key < $1.key }) {
            var slot = Int(truncatingIfNeeded: Self.hash(k)) & mask
            while keys[slot] != nil { slot = (slot + 1) & mask }
            keys[slot] = k
            values[slot] = v
        }
    }

    @inline(__always)
    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var copy = s
        copy.withUTF8 { bytes in
            for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        }
        return h
    }

    /// The value for `key`, or -1.
    @inline(__always)
    func index(of key: String) -> Int {
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        while let k = keys[slot] {
            if k == key { return values[slot] }
            slot = (slot + 1) & mask
        }
        return -1
    }
}
