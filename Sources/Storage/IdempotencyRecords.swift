/// Idempotency records: (scope, key) → hash of the request and the response first given.
/// Same key and same request: the stored response again, no second effect. Same key and a
/// different request: a conflict, and nothing changes.
enum IdempotencyRecords {
    static let scopeBytesMax = 64
    static let keyBytesMax = 128

    enum Lookup {
        case new
        case replay([UInt8])
    }

    static func lookup(_ context: WriteContext, scope: String, key: String, requestHash: [UInt8]) throws -> Lookup {
        guard !scope.isEmpty, scope.utf8.count <= scopeBytesMax else {
            throw StoreError.invalidCommand(field: "idempotency.scope", reason: "must be 1...\(scopeBytesMax) bytes")
        }
        guard !key.isEmpty, key.utf8.count <= keyBytesMax else {
            throw StoreError.invalidCommand(field: "idempotency.key", reason: "must be 1...\(keyBytesMax) bytes")
        }
        let select = try context.db.cachedStatement(static: "SELECT request_hash, response FROM idempotency WHERE scope = ? AND key = ?")
        select.reset()
        select.bind(scope, at: 1)
        select.bind(key, at: 2)
        defer { select.reset() }
        guard try select.step() else { return .new }
        guard select.blob(0) == requestHash else { throw StoreError.idempotencyConflict(scope: scope, key: key) }
        return .replay(select.blob(1))
    }

    static func record(_ context: WriteContext, scope: String, key: String, requestHash: [UInt8], response: [UInt8], now: Int64) throws {
        let insert = try context.db.cachedStatement(static:
            "INSERT INTO idempotency(scope, key, request_hash, response, created_at) VALUES (?, ?, ?, ?, ?)")
        insert.reset()
        insert.bind(scope, at: 1)
        insert.bind(key, at: 2)
        insert.bind(requestHash, at: 3)
        insert.bind(response, at: 4)
        insert.bind(now, at: 5)
        try insert.step()
    }
}
