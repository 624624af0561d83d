import CSQLite

/// A prepared statement: owns its `sqlite3_stmt` and finalizes it in `close()` or `deinit`.
///
/// Not `Sendable`: a statement belongs to its `Database`, which belongs to one thread at a time.
public final class Statement {
    private var handle: OpaquePointer?
    private let connection: OpaquePointer
    public let sql: String
    /// Parameters the SQL declares (its largest `?NNN`).
    private let parameterCount: Int32
    /// Parameters bound since the last reset, one bit each (parameter 1 is bit 0). A reset does
    /// not clear SQLite's bindings (a walk over every parameter, and the bound copies below must
    /// outlive it); the first step sets to NULL whatever was not bound again, so an unbound
    /// parameter is NULL exactly as after a clear.
    ///
    /// Unchecked exclusivity here and below: a statement is confined to one thread, and the
    /// dynamic check on every bind cost more than the bind's own bookkeeping.
    @exclusivity(unchecked) private var boundMask: UInt64 = 0
    private let allBoundMask: UInt64
    /// Parameters past this many are cleared on every reset instead of tracked.
    static let trackedParametersMax: Int32 = 64
    /// The statement's own copy of each tracked parameter's bound text or blob, which SQLite
    /// reads in place (`SQLITE_STATIC`) until the next bind: reused from one execution to the
    /// next, where `SQLITE_TRANSIENT` had SQLite allocate, copy and free per bind. Freed after
    /// the statement is finalized.
    @exclusivity(unchecked) private var boundCopies: [UnsafeMutableRawBufferPointer?]
    /// True from prepare or reset until the next step: when SQLite accepts bindings.
    @exclusivity(unchecked) private var acceptsBindings = true
    /// Longer values are bound as SQLite's own copy (`SQLITE_TRANSIENT`), so a rare large payload
    /// does not stay allocated with the statement.
    static let boundCopyBytesMax = 1_024

    init(connection: OpaquePointer, sql: String) throws(DatabaseError) {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw DatabaseError.current(connection, sql: sql)
        }
        self.connection = connection
        self.handle = statement
        self.sql = sql
        let count = sqlite3_bind_parameter_count(statement)
        self.parameterCount = count
        self.allBoundMask = count >= Self.trackedParametersMax ? .max : (UInt64(1) << UInt64(count)) &- 1
        self.boundCopies = Array(repeating: nil, count: Int(max(0, min(count, Self.trackedParametersMax))))
    }

    deinit { close() }

    public func close() {
        if let handle { sqlite3_finalize(handle) }
        handle = nil
        // Only now, with the statement finalized, can nothing read the copies any more.
        for index in boundCopies.indices {
            boundCopies[index]?.deallocate()
            boundCopies[index] = nil
        }
    }

    private var live: OpaquePointer {
        guard let handle else { preconditionFailure("statement used after close(): \(sql)") }
        return handle
    }

    // MARK: Binding (indices start at 1, as in SQLite)

    @inline(__always)
    private func markBound(_ index: Int32) {
        if index >= 1 && index <= Self.trackedParametersMax { boundMask |= UInt64(1) << UInt64(index - 1) }
    }

    public func bind(_ value: Int64, at index: Int32) {
        sqlite3_bind_int64(live, index, value)
        markBound(index)
    }

    public func bind(_ value: Int, at index: Int32) {
        bind(Int64(value), at: index)
    }

    /// Binds the text with its length: no C-string copy of the Swift string, no `strlen`, and
    /// an embedded NUL is stored rather than silently cutting the text short.
    public func bind(_ value: String, at index: Int32) {
        var value = value
        value.withUTF8 { bindBytes(UnsafeRawBufferPointer($0), at: index, asText: true) }
        markBound(index)
    }

    public func bind(_ bytes: [UInt8], at index: Int32) {
        bytes.withUnsafeBytes { bindBytes($0, at: index, asText: false) }
        markBound(index)
    }

    private func bindBytes(_ source: UnsafeRawBufferPointer, at index: Int32, asText: Bool) {
        let slot = Int(index) - 1
        guard let base = source.baseAddress, !source.isEmpty else {
            // Empty still binds as text or blob, never as NULL (which a nil pointer would give).
            if asText {
                var nul: CChar = 0
                _ = sqlite3_bind_text(live, index, &nul, 0, CSQLite_TRANSIENT())
            } else {
                _ = sqlite3_bind_zeroblob(live, index, 0)
            }
            return
        }
        // A statement stepped and not reset refuses binds (SQLITE_MISUSE) and may still read its
        // current copy: leave the copies alone then, and let SQLite refuse.
        guard slot >= 0, slot < boundCopies.count, source.count <= Self.boundCopyBytesMax, acceptsBindings else {
            bindPointer(base, source.count, at: index, asText: asText, CSQLite_TRANSIENT())
            return
        }
        if let copy = boundCopies[slot], copy.count >= source.count {
            copy.copyMemory(from: source)
            bindPointer(UnsafeRawPointer(copy.baseAddress!), source.count, at: index, asText: asText, CSQLite_STATIC())
            return
        }
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(64, source.count.nextPowerOfTwo), alignment: 8)
        copy.copyMemory(from: source)
        if bindPointer(UnsafeRawPointer(copy.baseAddress!), source.count, at: index, asText: asText, CSQLite_STATIC()) == SQLITE_OK {
            // SQLite has let go of the old copy: the bind replaced it.
            boundCopies[slot]?.deallocate()
            boundCopies[slot] = copy
        } else {
            copy.deallocate()
        }
    }

    @discardableResult
    private func bindPointer(_ pointer: UnsafeRawPointer, _ count: Int, at index: Int32, asText: Bool, _ destructor: sqlite3_destructor_type?) -> Int32 {
        if asText {
            return sqlite3_bind_text(live, index, pointer.assumingMemoryBound(to: CChar.self), Int32(clamping: count), destructor)
        }
        return sqlite3_bind_blob(live, index, pointer, Int32(clamping: count), destructor)
    }

    public func bindNull(at index: Int32) {
        sqlite3_bind_null(live, index)
        markBound(index)
    }

    public func bind(_ value: DatabaseValue, at index: Int32) {
        switch value {
        case .null: bindNull(at: index)
        case .integer(let v): bind(v, at: index)
        case .text(let v): bind(v, at: index)
        case .blob(let v): bind(v, at: index)
        }
    }

    /// Resets the statement and binds `arguments` in order. Parameters not bound again before
    /// the next step are NULL, as if the bindings had been cleared.
    public func reset(_ arguments: [DatabaseValue] = []) {
        rewind()
        boundMask = 0
        if parameterCount > Self.trackedParametersMax { sqlite3_clear_bindings(live) }
        for (offset, value) in arguments.enumerated() { bind(value, at: Int32(offset + 1)) }
    }

    /// `sqlite3_reset`: back to the start, bindings kept and accepted again.
    private func rewind() {
        sqlite3_reset(live)
        acceptsBindings = true
    }

    /// Sets to NULL the parameters not bound since the last reset (see `boundMask`).
    private func nullUnboundParameters() {
        let tracked = min(parameterCount, Self.trackedParametersMax)
        var index: Int32 = 1
        while index <= tracked {
            if boundMask & (UInt64(1) << UInt64(index - 1)) == 0 { sqlite3_bind_null(live, index) }
            index += 1
        }
        boundMask = allBoundMask
    }

    // MARK: Stepping

    /// Advances the statement: `true` when a row is available, `false` when done.
    @discardableResult
    public func step() throws(DatabaseError) -> Bool {
        if boundMask != allBoundMask { nullUnboundParameters() }
        acceptsBindings = false
        switch sqlite3_step(live) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = DatabaseError.current(connection, sql: sql)
            rewind()
            throw error
        }
    }

    /// Resets, binds, runs to completion and resets again, so the statement holds no read lock.
    public func execute(_ arguments: [DatabaseValue] = []) throws(DatabaseError) {
        reset(arguments)
        defer { rewind() }
        while try step() {}
    }

    /// Runs and returns the first row mapped by `row`, or nil when there is none.
    public func fetchOne<T>(_ arguments: [DatabaseValue] = [], _ row: (Statement) throws -> T) throws -> T? {
        reset(arguments)
        defer { rewind() }
        guard try step() else { return nil }
        return try row(self)
    }

    /// Runs and maps every row; `rowsMax` bounds memory for callers that read untrusted sizes.
    public func fetchAll<T>(_ arguments: [DatabaseValue] = [], rowsMax: Int = .max, _ row: (Statement) throws -> T) throws -> [T] {
        reset(arguments)
        defer { rewind() }
        var rows: [T] = []
        while rows.count < rowsMax, try step() { rows.append(try row(self)) }
        return rows
    }

    /// `fetchOne` for a statement the caller has reset and bound itself (no argument array).
    public func fetchCurrent<T>(_ row: (Statement) throws -> T) throws -> T? {
        defer { rewind() }
        guard try step() else { return nil }
        return try row(self)
    }

    /// `fetchAll` for a statement the caller has reset and bound itself (no argument array).
    public func fetchAllCurrent<T>(rowsMax: Int, _ row: (Statement) throws -> T) throws -> [T] {
        defer { rewind() }
        var rows: [T] = []
        while rows.count < rowsMax, try step() { rows.append(try row(self)) }
        return rows
    }

    // MARK: Columns (indices start at 0, as in SQLite)

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(live, column) == SQLITE_NULL }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(live, column) }

    public func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(live, column)) }

    /// The column as text, by its length (text bound with an embedded NUL reads back whole).
    public func text(_ column: Int32) -> String {
        // sqlite3_column_text before sqlite3_column_bytes: the order SQLite documents, so the
        // length is that of the UTF-8 text returned.
        guard let pointer = sqlite3_column_text(live, column) else { return "" }
        let count = Int(sqlite3_column_bytes(live, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(live, column))
        guard count > 0, let pointer = sqlite3_column_blob(live, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// A value to bind to a statement.
public enum DatabaseValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])
}

extension DatabaseValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }
}

private extension Int {
    /// The smallest power of two at least `self` (for `self` ≥ 1).
    var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
