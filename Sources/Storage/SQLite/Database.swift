import CSQLite
import CSQLiteVFS

/// One SQLite connection. Owns the `sqlite3*` handle and a cache of prepared statements.
///
/// Not `Sendable`: a connection is confined to its owner (the writer thread, or a reader
/// borrowed from the pool for the length of one closure), so it never needs SQLite's mutexes.
public final class Database {
    /// How a connection is opened. Defaults are the durable settings the store runs with.
    public struct Configuration: Sendable {
        /// Open read-only (pool readers).
        public var readOnly = false
        /// How long a connection waits on another's lock before SQLITE_BUSY.
        public var busyTimeoutMilliseconds: Int32 = 5_000
        /// `synchronous=FULL` makes every COMMIT durable in WAL mode. Only bulk seeding turns it off.
        public var synchronousFull = true
        /// Statements kept prepared per connection; beyond this the cache is dropped and refilled.
        public var cachedStatementsMax = 256
        /// Page cache per connection. A group-committed batch touches thousands of pages; a
        /// cache smaller than that spills dirty pages to the WAL mid-transaction.
        public var pageCacheKibibytes = 16_384
        /// WAL pages after which a commit also checkpoints (SQLite's default is 1,000).
        public var walAutocheckpointPages = 8_192
        /// After a checkpoint restarts the WAL, its file is truncated to this size, so a burst
        /// does not keep its disk space forever. Above the ~82 MB the store's WAL reaches before
        /// the writer restarts it (`StoreConfiguration.walPagesMax`), so under steady load commits
        /// overwrite the file in place rather than extend it.
        public var walBytesKeptMax = 96 * 1_024 * 1_024
        /// Gather a commit's WAL frames into one write (see `CSQLiteVFS.h`). Honoured only with
        /// `synchronousFull`, where every commit syncs the WAL before other connections may read it.
        public var coalescesWALWrites = true

        public init() {}
    }

    static let lookasideSlotBytes: Int32 = 1_200
    static let lookasideSlotsCount: Int32 = 1_000

    private var handle: OpaquePointer?
    public let path: String
    /// The WAL file's full path as SQLite names it (absolute, right for URI filenames too).
    var walPath: String? {
        guard let handle, let main = sqlite3_db_filename(handle, "main"), let wal = sqlite3_filename_wal(main) else { return nil }
        return String(cString: wal)
    }

    /// Whether this connection writes through the coalescing VFS (see `CSQLiteVFS.h`).
    let usesCoalescingVFS: Bool
    private var cache: [String: Statement] = [:]
    /// Hot-path statements by the address of their SQL literal: an address instead of the SQL
    /// text, in a table probed with one multiply instead of a `Dictionary`'s seeded hash.
    /// Unchecked exclusivity: a connection is confined to one thread, and the dynamic check cost
    /// as much as the lookup it guarded.
    @exclusivity(unchecked) private var staticCache: ProbingTable<UInt, Statement>
    private let cachedStatementsMax: Int

    /// Process-wide settings that SQLite accepts only before it initializes, applied once
    /// before the first connection opens.
    private static let processSetUp: Void = {
        // Memory statistics serialize every SQLite allocation on one global mutex; nothing here reads them.
        _ = CSQLite_disableMemoryStatistics()
    }()

    /// The coalescing VFS, registered once per process; false (and the default VFS used) if SQLite refused it.
    private static let coalescingVFSRegistered: Bool = CSQLiteVFS_register() == SQLITE_OK

    /// WAL writes SQLite asked for and write calls the coalescing VFS made for them, process-wide.
    public static var walWriteStatistics: (requested: Int64, issued: Int64) {
        var requested: Int64 = 0
        var issued: Int64 = 0
        CSQLiteVFS_statistics(&requested, &issued)
        return (requested, issued)
    }

    public init(path: String, configuration: Configuration = .init()) throws(DatabaseError) {
        Self.processSetUp
        var connection: OpaquePointer?
        let flags = (configuration.readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX
        let vfs: UnsafePointer<CChar>? = configuration.coalescesWALWrites && configuration.synchronousFull && !configuration.readOnly
            && Self.coalescingVFSRegistered ? CSQLiteVFS_name : nil
        usesCoalescingVFS = vfs != nil
        let code = sqlite3_open_v2(path, &connection, flags, vfs)
        guard code == SQLITE_OK, let connection else {
            let error = connection.map { DatabaseError.current($0, sql: nil) }
                ?? DatabaseError(extendedResultCode: code, message: "cannot open database")
            if let connection { sqlite3_close_v2(connection) }
            throw error
        }
        sqlite3_extended_result_codes(connection, 1)
        if !configuration.readOnly {
            // More lookaside slots than the default 100 × 1,200 bytes: a group-committed batch
            // keeps many small objects alive, and each miss is a malloc. A failure leaves the default.
            // Debian's libsqlite3 is built with SQLITE_OMIT_LOOKASIDE, where this does nothing
            // (every such object is a malloc); an SQLite built with lookaside honours it.
            _ = CSQLite_setLookaside(connection, Self.lookasideSlotBytes, Self.lookasideSlotsCount)
        }
        self.handle = connection
        self.path = path
        self.cachedStatementsMax = configuration.cachedStatementsMax
        self.staticCache = ProbingTable(minimumCapacity: min(configuration.cachedStatementsMax, 64))
        sqlite3_busy_timeout(connection, configuration.busyTimeoutMilliseconds)
        do {
            if !configuration.readOnly {
                try execute("PRAGMA journal_mode=WAL")
            }
            try execute("PRAGMA synchronous=\(configuration.synchronousFull ? "FULL" : "OFF")")
            try execute("PRAGMA foreign_keys=ON")
            try execute("PRAGMA cache_size=-\(configuration.pageCacheKibibytes)")
            if !configuration.readOnly {
                // Savepoint sub-journals in memory: as files they cost a pwrite per page a
                // command first touches. Readers keep file temp storage, so a whole-table
                // verification sorts on disk instead of in RAM.
                try execute("PRAGMA temp_store=MEMORY")
            }
            if !configuration.readOnly {
                try execute("PRAGMA wal_autocheckpoint=\(configuration.walAutocheckpointPages)")
                try execute("PRAGMA journal_size_limit=\(configuration.walBytesKeptMax)")
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    public func close() {
        for statement in cache.values { statement.close() }
        cache.removeAll()
        for entry in staticCache.entries { entry.value.close() }
        staticCache.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    var connection: OpaquePointer {
        guard let handle else { preconditionFailure("database used after close()") }
        return handle
    }

    /// Runs one or more SQL statements that take no arguments (schema, pragmas, transaction control).
    public func execute(_ sql: String) throws(DatabaseError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(connection, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) }
            sqlite3_free(errorMessage)
            let current = DatabaseError.current(connection, sql: sql)
            throw DatabaseError(extendedResultCode: current.extendedResultCode, message: message ?? current.message, sql: sql)
        }
    }

    /// A new statement the caller owns.
    public func makeStatement(_ sql: String) throws(DatabaseError) -> Statement {
        try Statement(connection: connection, sql: sql)
    }

    /// A statement prepared once per connection and reused: the hot path's way to run SQL.
    public func cachedStatement(_ sql: String) throws(DatabaseError) -> Statement {
        if let statement = cache[sql] { return statement }
        if cache.count >= cachedStatementsMax {
            for statement in cache.values { statement.close() }
            cache.removeAll()
        }
        let statement = try makeStatement(sql)
        cache[sql] = statement
        return statement
    }

    /// `cachedStatement` for SQL written as a literal in the code (the hot path). A literal's
    /// text lives at one address for the life of the process, so the address is its key.
    public func cachedStatement(static sql: StaticString) throws(DatabaseError) -> Statement {
        let key = UInt(bitPattern: sql.utf8Start)
        let hash = ProbingTable<UInt, Statement>.hash(UInt64(key))
        if let statement = staticCache.value(for: key, hash: hash) { return statement }
        if staticCache.count >= cachedStatementsMax {
            for entry in staticCache.entries { entry.value.close() }
            staticCache.removeAll()
        }
        let statement = try makeStatement(sql.description)
        staticCache.append(key, statement, hash: hash)
        return statement
    }

    /// Runs `sql` once with `arguments` through the statement cache.
    public func execute(_ sql: String, _ arguments: [DatabaseValue]) throws(DatabaseError) {
        try cachedStatement(sql).execute(arguments)
    }

    /// The first row of `sql` mapped by `row`, or nil.
    public func fetchOne<T>(_ sql: String, _ arguments: [DatabaseValue] = [], _ row: (Statement) throws -> T) throws -> T? {
        try cachedStatement(sql).fetchOne(arguments, row)
    }

    /// An integer from the first column of the first row, or nil.
    public func fetchInt64(_ sql: String, _ arguments: [DatabaseValue] = []) throws -> Int64? {
        try fetchOne(sql, arguments) { $0.isNull(0) ? nil : $0.int64(0) } ?? nil
    }

    public var changesCount: Int { Int(sqlite3_changes(connection)) }
    /// Rows inserted, updated or deleted through this connection since it opened.
    public var totalChangesCount: Int64 { sqlite3_total_changes64(connection) }
    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(connection) }
    /// True when no transaction is open — after COMMIT, or after SQLite rolled one back on its own.
    public var isAutocommit: Bool { sqlite3_get_autocommit(connection) != 0 }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func inTransaction<T>(_ kind: String = "IMMEDIATE", _ body: () throws -> T) throws -> T {
        try execute("BEGIN \(kind)")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if !isAutocommit { try? execute("ROLLBACK") }
            throw error
        }
    }
}

