import Foundation

/// Read connections, opened on demand up to `connectionsMax`. A reader is borrowed for one
/// closure and returned; callers beyond the limit wait. WAL lets readers run beside the writer.
final class ReaderPool: @unchecked Sendable {
    // @unchecked: `idle` and `opened` are guarded by `condition`; a borrowed Database is used
    // by one thread only until it is returned.
    private let path: String
    private let configuration: Database.Configuration
    private let connectionsMax: Int
    private let condition = NSCondition()
    private var idle: [Database] = []
    private var opened = 0
    private var closed = false

    init(path: String, connectionsMax: Int, busyTimeoutMilliseconds: Int32) {
        precondition(connectionsMax > 0)
        self.path = path
        self.connectionsMax = connectionsMax
        var configuration = Database.Configuration()
        configuration.readOnly = true
        configuration.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.configuration = configuration
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        let db = try borrow()
        defer { giveBack(db) }
        // A read transaction gives the closure one consistent snapshot across its queries.
        try db.execute("BEGIN DEFERRED")
        defer { try? db.execute("COMMIT") }
        return try body(db)
    }

    private func borrow() throws -> Database {
        condition.lock()
        while idle.isEmpty && opened >= connectionsMax && !closed { condition.wait() }
        if closed {
            condition.unlock()
            throw StoreError.closed
        }
        if let db = idle.popLast() {
            condition.unlock()
            return db
        }
        opened += 1
        condition.unlock()
        do {
            return try Database(path: path, configuration: configuration)
        } catch {
            condition.lock()
            opened -= 1
            condition.signal()
            condition.unlock()
            throw StoreError.database(error)
        }
    }

    private func giveBack(_ db: Database) {
        condition.lock()
        defer { condition.unlock() }
        if closed {
            db.close()
        } else {
            idle.append(db)
        }
        condition.signal()
    }

    func close() {
        condition.lock()
        closed = true
        for db in idle { db.close() }
        idle.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}
