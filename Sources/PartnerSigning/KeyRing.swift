/// A partner's keys: several, each with an id and a validity window, so keys rotate with overlap.
/// Sign with the newest valid key; verify with the key the message names.
public struct KeyRing<Key: Sendable>: Sendable {
    public static var entriesMax: Int { 64 }

    public struct Entry: Sendable {
        /// The id messages carry (`keyid`, `serial_no`, `Wechatpay-Serial`, ...).
        public var id: String
        public var key: Key
        /// Unix seconds, inclusive.
        public var validFromSeconds: Int64
        /// Unix seconds, exclusive.
        public var validUntilSeconds: Int64

        public init(id: String, key: Key, validFromSeconds: Int64 = 0, validUntilSeconds: Int64 = .max) {
            self.id = id
            self.key = key
            self.validFromSeconds = validFromSeconds
            self.validUntilSeconds = validUntilSeconds
        }

        public func isValid(at seconds: Int64) -> Bool { validFromSeconds <= seconds && seconds < validUntilSeconds }
    }

    public let entries: [Entry]

    /// Throws `invalidInput` for an empty ring, a repeated or malformed id, an empty window, or
    /// more than `entriesMax` keys.
    public init(_ entries: [Entry]) throws(SigningError) {
        guard !entries.isEmpty, entries.count <= Self.entriesMax else { throw .invalidInput(field: "key ring size") }
        var seen = Set<String>()
        for entry in entries {
            guard SigningSyntax.isValidKeyID(entry.id) else { throw .invalidInput(field: "key id") }
            guard seen.insert(entry.id).inserted else { throw .invalidInput(field: "key id repeated") }
            guard entry.validFromSeconds < entry.validUntilSeconds else { throw .invalidInput(field: "key validity window") }
        }
        self.entries = entries
    }

    /// The valid key that became valid last (ties: the later entry).
    public func newestValid(at seconds: Int64) throws(SigningError) -> Entry {
        var best: Entry?
        for entry in entries where entry.isValid(at: seconds) {
            if best.map({ entry.validFromSeconds >= $0.validFromSeconds }) ?? true { best = entry }
        }
        guard let best else { throw .noValidSigningKey }
        return best
    }

    /// The key named `id`, if it is valid at `seconds`.
    public func key(id: String, at seconds: Int64) throws(SigningError) -> Entry {
        guard let entry = entries.first(where: { $0.id == id }) else { throw .keyUnknown }
        guard entry.isValid(at: seconds) else { throw .keyNotValidAtTime }
        return entry
    }
}

public typealias SigningKeyRing = KeyRing<SigningKey>
public typealias VerifyingKeyRing = KeyRing<VerifyingKey>
