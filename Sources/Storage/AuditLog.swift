import PartnerSigning

/// The audit log is a hash chain: entry n stores SHA-256 over entry n−1's hash, its own sequence
/// number, time, actor, action and payload. Changing, removing or reordering any entry breaks
/// every hash after it, which `verify` reports.
public enum AuditLog {
    struct Head: Equatable {
        var sequence: Int64
        var hash: [UInt8]
        static let genesis = Head(sequence: 0, hash: [UInt8](repeating: 0, count: SHA256.byteCount))
    }

    /// One entry as stored.
    public struct Entry: Sendable, Equatable {
        public var sequence: Int64
        public var at: Int64
        public var actor: String
        public var action: String
        public var payload: [UInt8]
        public var previousHash: [UInt8]
        public var hash: [UInt8]
    }

    /// Bounds on what an entry may carry, so a caller cannot bloat the log.
    public static let actorBytesMax = 128
    public static let actionBytesMax = 128
    public static let payloadBytesMax = 16 * 1024

    static func loadHead(_ db: Database) throws -> Head {
        try db.fetchOne("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1") {
            Head(sequence: $0.int64(0), hash: $0.blob(1))
        } ?? .genesis
    }

    /// The chained hash of one entry.
    public static func chainHash(previous: [UInt8], sequence: Int64, at: Int64, actor: String, action: String, payload: [UInt8]) -> [UInt8] {
        var input: [UInt8] = []
        return chainHash(previous: previous, sequence: sequence, at: at, actor: actor, action: action, payload: payload, input: &input)
    }

    /// `chainHash` building its input in `input` (emptied first), so the writer reuses one buffer
    /// instead of allocating the input and a copy of each field per entry.
    static func chainHash(previous: [UInt8], sequence: Int64, at: Int64, actor: String, action: String, payload: [UInt8],
                          input: inout [UInt8]) -> [UInt8] {
        input.removeAll(keepingCapacity: true)
        input.reserveCapacity(previous.count + 40 + actor.utf8.count + action.utf8.count + payload.count)
        input.append(contentsOf: previous)
        appendInteger(UInt64(bitPattern: sequence), to: &input)
        appendInteger(UInt64(bitPattern: at), to: &input)
        // Length prefixes keep field boundaries unambiguous ("ab"+"c" ≠ "a"+"bc").
        appendInteger(UInt64(actor.utf8.count), to: &input)
        input.append(contentsOf: actor.utf8)
        appendInteger(UInt64(action.utf8.count), to: &input)
        input.append(contentsOf: action.utf8)
        appendInteger(UInt64(payload.count), to: &input)
        input.append(contentsOf: payload)
        return SHA256.hash(input)
    }

    /// Big-endian, eight bytes, in one append.
    private static func appendInteger(_ value: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// Appends an entry inside the current write transaction.
    @discardableResult
    static func append(_ context: WriteContext, at: Int64, actor: String, action: String, payload: [UInt8]) throws -> Int64 {
        guard !actor.isEmpty, actor.utf8.count <= actorBytesMax else {
            throw StoreError.invalidCommand(field: "audit.actor", reason: "must be 1...\(actorBytesMax) bytes")
        }
        guard !action.isEmpty, action.utf8.count <= actionBytesMax else {
            throw StoreError.invalidCommand(field: "audit.action", reason: "must be 1...\(actionBytesMax) bytes")
        }
        guard payload.count <= payloadBytesMax else {
            throw StoreError.invalidCommand(field: "audit.payload", reason: "must be at most \(payloadBytesMax) bytes")
        }
        let sequence = context.auditHead.sequence + 1
        let hash = chainHash(previous: context.auditHead.hash, sequence: sequence, at: at, actor: actor, action: action, payload: payload,
                             input: &context.auditHashInput)
        let insert = try context.db.cachedStatement(static:
            "INSERT INTO audit_log(seq, at, actor, action, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
        insert.reset()
        insert.bind(sequence, at: 1)
        insert.bind(at, at: 2)
        insert.bind(actor, at: 3)
        insert.bind(action, at: 4)
        insert.bind(payload, at: 5)
        insert.bind(context.auditHead.hash, at: 6)
        insert.bind(hash, at: 7)
        try insert.step()
        context.auditHead = Head(sequence: sequence, hash: hash)
        return sequence
    }

    /// Walks the whole chain; nil when sound, otherwise the first problem found.
    public static func verify(_ db: Database) throws -> String? {
        let statement = try db.makeStatement("SELECT seq, at, actor, action, payload, prev_hash, hash FROM audit_log ORDER BY seq")
        var previous = Head.genesis
        var input: [UInt8] = []
        while try statement.step() {
            let entry = Entry(
                sequence: statement.int64(0), at: statement.int64(1), actor: statement.text(2),
                action: statement.text(3), payload: statement.blob(4), previousHash: statement.blob(5), hash: statement.blob(6))
            if entry.sequence != previous.sequence + 1 {
                return "audit entry \(entry.sequence): expected sequence \(previous.sequence + 1) (an entry is missing)"
            }
            if entry.previousHash != previous.hash {
                return "audit entry \(entry.sequence): previous-hash link does not match entry \(previous.sequence)"
            }
            let expected = chainHash(previous: previous.hash, sequence: entry.sequence, at: entry.at, actor: entry.actor, action: entry.action,
                                     payload: entry.payload, input: &input)
            if expected != entry.hash {
                return "audit entry \(entry.sequence): hash does not match its contents (entry altered)"
            }
            previous = Head(sequence: entry.sequence, hash: entry.hash)
        }
        return nil
    }
}
