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

/// Deferred commit syncs, for a writer that syncs off its own thread (pipelined group commit).
/// With deferral on for the calling thread, a sync SQLite asks of a WAL file at commit writes the
/// frames to the kernel but does not fsync; the WAL is remembered as pending instead. Anything
/// on that thread whose safety needs the WAL durable first — writing, syncing or truncating the
/// database file (a checkpoint), truncating the WAL — fsyncs the pending WAL before it proceeds.
/// A file's first sync is never deferred (the unix VFS then also syncs its directory).
void CSQLiteVFS_setDeferredCommitSync(int on);

/// After a commit on a thread with deferral on: 0 if its sync was real (nothing to do), else the
/// generation that must be made durable before the commit is acknowledged; `*wal` is then the
/// WAL's handle for `CSQLiteVFS_markSynced`. The caller fsyncs the WAL file (its own descriptor
/// is fine: fdatasync covers every write made before it) and then marks the generation synced,
/// so a later checkpoint on the writer thread need not sync again.
long long CSQLiteVFS_takePendingSync(void **wal);
void CSQLiteVFS_markSynced(void *wal, long long generation);

/// Statistics since start, for tests: WAL writes SQLite asked for, and pwrite calls made for them.
void CSQLiteVFS_statistics(long long *writesRequested, long long *writesIssued);

/// Commit syncs deferred; deferred syncs made real on the writer thread because a checkpoint,
/// truncation or close needed them before the syncer got to them; WAL syncs SQLite asked for
/// that were done at once (first syncs, and the header sync after a WAL restart).
void CSQLiteVFS_syncStatistics(long long *deferred, long long *forced, long long *walReal);

#endif
