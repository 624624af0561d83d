/// Schema migrations registered by id, applied in order, each in its own transaction, and
/// recorded in `schema_migrations`. A database that records a migration this build does not
/// know was written by a newer build: it is refused rather than guessed at.
public struct DatabaseMigrator: Sendable {
    public struct Migration: Sendable {
        public let id: String
        let migrate: @Sendable (Database) throws -> Void
    }

    public enum MigrationError: Error, Sendable, CustomStringConvertible, Equatable {
        /// The database records migrations this build does not know.
        case unknownMigrations([String])
        /// The recorded migrations are not a prefix of the registered ones.
        case outOfOrder(recorded: [String])

        public var description: String {
            switch self {
            case .unknownMigrations(let ids):
                "the database was written by a newer version (unknown migrations: \(ids.joined(separator: ", "))); refusing to open it"
            case .outOfOrder(let recorded):
                "the database's migrations (\(recorded.joined(separator: ", "))) do not match this version's order; refusing to open it"
            }
        }
    }

    public private(set) var migrations: [Migration] = []

    public init() {}

    public mutating func registerMigration(_ id: String, migrate: @escaping @Sendable (Database) throws -> Void) {
        precondition(!migrations.contains { $0.id == id }, "migration \(id) registered twice")
        migrations.append(Migration(id: id, migrate: migrate))
    }

    /// The ids recorded as applied, in the order they were applied.
    public func appliedIdentifiers(_ db: Database) throws -> [String] {
        try createTable(db)
        return try db.cachedStatement("SELECT id FROM schema_migrations ORDER BY rowid").fetchAll { $0.text(0) }
    }

    /// Applies every pending migration, or throws without changing anything if the database is
    /// newer than this build.
    public func migrate(_ db: Database) throws {
        let applied = try appliedIdentifiers(db)
        let known = Set(migrations.map(\.id))
        let unknown = applied.filter { !known.contains($0) }
        guard unknown.isEmpty else { throw MigrationError.unknownMigrations(unknown) }
        guard applied == migrations.prefix(applied.count).map(\.id) else {
            throw MigrationError.outOfOrder(recorded: applied)
        }
        for migration in migrations.dropFirst(applied.count) {
            try db.inTransaction {
                try migration.migrate(db)
                try db.execute("INSERT INTO schema_migrations(id) VALUES (?)", [.text(migration.id)])
            }
        }
    }

    private func createTable(_ db: Database) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY NOT NULL)")
    }
}
