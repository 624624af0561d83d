#ifndef CSQLITEVFS_H
#define CSQLITEVFS_H

/// Registers (once) the "jointlend-wal" VFS: SQLite's default VFS, except that writes to a WAL
/// file are gathered in memory and handed to the kernel in one call when SQLite syncs, reads,
/// truncates or closes that file. SQLite writes a WAL frame as two calls (24-byte header, then
/// the page), so a commit of n pages costs 2n pwrite calls without it and about one with it.
///
/// Only for connections with synchronous=FULL: there every commit ends with a sync of the
/// WAL before the WAL index makes its frames visible to other connections, so no other
/// connection can be told of a frame still in the buffer. Returns SQLITE_OK or an error code.
int CSQLiteVFS_register(void);

/// The VFS name to pass to sqlite3_open_v2.
extern const char *const CSQLiteVFS_name;

/// Statistics since start, for tests: WAL writes SQLite asked for, and pwrite calls made for them.
void CSQLiteVFS_statistics(long long *writesRequested, long long *writesIssued);

#endif
