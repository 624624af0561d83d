/// A small hash table for the writer's hot path, where `Dictionary`'s seeded SipHash cost more
/// than the work it indexed: the caller supplies a cheap hash (`ProbingTable.hash`), entries
/// stay dense in insertion order (iterating them touches no empty slots), and lookups probe
/// linearly over a power-of-two slot array kept at most half full.
///
/// Not a general dictionary: no removal of single entries, only `removeAll`, which keeps the
/// storage for the next batch.
struct ProbingTable<Key: Equatable, Value> {
    struct Entry {
        var key: Key
        var value: Value
        fileprivate var hash: UInt64
    }

    private(set) var entries: [Entry] = []
    /// Entry index + 1 per slot; 0 is an empty slot.
    private var slots: [Int32]
    private var shift: UInt64

    init(minimumCapacity: Int = 8) {
        var bits: UInt64 = 1
        while (1 << bits) < 2 * max(minimumCapacity, 1) { bits += 1 }
        slots = [Int32](repeating: 0, count: 1 << Int(bits))
        shift = 64 - bits
        entries.reserveCapacity(max(minimumCapacity, 1))
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// The index in `entries` of `key`, or nil.
    func index(of key: Key, hash: UInt64) -> Int? {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash >> shift)
        while true {
            let stored = Int(slots[slot])
            if stored == 0 { return nil }
            if entries[stored - 1].hash == hash && entries[stored - 1].key == key { return stored - 1 }
            slot = (slot + 1) & mask
        }
    }

    func value(for key: Key, hash: UInt64) -> Value? {
        index(of: key, hash: hash).map { entries[$0].value }
    }

    /// Adds an entry for `key`, which must not be present; returns its index.
    @discardableResult
    mutating func append(_ key: Key, _ value: Value, hash: UInt64) -> Int {
        precondition(entries.count < Int(Int32.max), "probing table full")
        assert(index(of: key, hash: hash) == nil, "key appended twice")
        if 2 * (entries.count + 1) > slots.count { grow() }
        entries.append(Entry(key: key, value: value, hash: hash))
        place(entries.count - 1, hash: hash)
        return entries.count - 1
    }

    mutating func setValue(_ value: Value, at index: Int) {
        entries[index].value = value
    }

    mutating func removeAll() {
        guard !entries.isEmpty else { return }
        entries.removeAll(keepingCapacity: true)
        for slot in slots.indices { slots[slot] = 0 }
    }

    private mutating func place(_ index: Int, hash: UInt64) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash >> shift)
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(index + 1)
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: 2 * slots.count)
        shift -= 1
        for index in entries.indices { place(index, hash: entries[index].hash) }
    }
}

extension ProbingTable {
    /// Fibonacci hashing of an integer key: the multiply moves every input bit into the high
    /// bits the table indexes by, so neighbouring ids and addresses spread out.
    static func hash(_ key: UInt64) -> UInt64 { key &* 0x9E37_79B9_7F4A_7C15 }

    /// FNV-1a over a short text's UTF-8 and a discriminator, then spread like an integer.
    static func hash(_ text: String, _ discriminator: UInt8) -> UInt64 {
        var value: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        value = (value ^ UInt64(discriminator)) &* 0x0000_0100_0000_01B3
        return hash(value)
    }
}
