import CSQLite

/// An error reported by SQLite: the extended result code, SQLite's message and the SQL that failed.
///
/// Bound arguments are never part of the error: they may hold personal data (borrower tokens,
/// partner serials), and errors end up in logs.
public struct DatabaseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The extended result code (`sqlite3_extended_errcode`), e.g. 2067 for a UNIQUE violation.
    public let extendedResultCode: Int32
    public let message: String
    public let sql: String?

    public init(extendedResultCode: Int32, message: String, sql: String? = nil) {
        self.extendedResultCode = extendedResultCode
        self.message = message
        self.sql = sql
    }

    /// The primary result code (the low byte of the extended code).
    public var resultCode: Int32 { extendedResultCode & 0xff }

    public var isConstraintViolation: Bool { resultCode == SQLITE_CONSTRAINT }
    public var isUniqueViolation: Bool {
        extendedResultCode == Self.constraintUnique || extendedResultCode == Self.constraintPrimaryKey
    }

    // sqlite3.h defines the extended codes as expressions (`SQLITE_CONSTRAINT | (8<<8)`), which
    // Swift does not import.
    /// SQLITE_IOERR_FSYNC (a macro Swift cannot import).
    static let ioErrorFsync: Int32 = 1_034
    static let constraintUnique: Int32 = 2_067
    static let constraintPrimaryKey: Int32 = 1_555

    public var description: String {
        var text = "SQLite error \(extendedResultCode): \(message)"
        if let sql { text += " — while executing `\(sql)`" }
        return text
    }

    /// The error currently recorded on `connection`.
    static func current(_ connection: OpaquePointer, sql: String?) -> DatabaseError {
        let code = sqlite3_extended_errcode(connection)
        let message = sqlite3_errmsg(connection).map { String(cString: $0) } ?? "unknown error"
        return DatabaseError(extendedResultCode: code, message: message, sql: sql)
    }
}
