#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer: Swift cannot import it.
static inline sqlite3_destructor_type CSQLite_TRANSIENT(void) { return SQLITE_TRANSIENT; }
static inline sqlite3_destructor_type CSQLite_STATIC(void) { return SQLITE_STATIC; }

// sqlite3_config and sqlite3_db_config are variadic: Swift cannot call them.

/// Turns off SQLite's memory statistics, which take a global mutex on every allocation.
/// Only effective before SQLite initializes; returns SQLITE_MISUSE afterwards (harmless).
static inline int CSQLite_disableMemoryStatistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/// Sizes the connection's lookaside allocator (small allocations without malloc).
static inline int CSQLite_setLookaside(sqlite3 *db, int slotBytes, int slotCount) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, (void *)0, slotBytes, slotCount);
}
#endif
