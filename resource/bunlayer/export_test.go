package bunlayer

// PGMigrationLock is the SQL of the key of the advisory lock that
// ApplyMigrations holds on PostgreSQL, for tests that hold it themselves.
const PGMigrationLock = pgMigrationLock
