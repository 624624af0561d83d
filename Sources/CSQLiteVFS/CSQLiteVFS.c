// A pass-through VFS over SQLite's default one that coalesces WAL writes; see CSQLiteVFS.h.
#include "CSQLiteVFS.h"
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

const char *const CSQLiteVFS_name = "jointlend-wal";

/// Most bytes held before they are written out: a batch of a thousand commands dirties a few
/// thousand pages; past this the buffer is written and refilled.
#define WAL_BUFFER_BYTES_MAX (8 * 1024 * 1024)

typedef struct {
    sqlite3_file base;       // must come first: SQLite sees this
    sqlite3_file *real;      // the default VFS's file, in the same allocation after this struct
    int isWAL;
    unsigned char *buffer;   // WAL bytes not yet written, for [bufferOffset, bufferOffset + bufferLength)
    sqlite3_int64 bufferOffset;
    int bufferLength;
    int hasSynced;           // a real sync has happened (the first is never deferred)
    int headerPending;       // the WAL header (offset 0) was written since the last real sync
    int failedRc;            // a buffered write that failed: every later write and sync fails too
    long long deferredGeneration;          // bumped by each deferred commit sync (writer thread)
    _Atomic long long syncedGeneration;    // the highest generation known durable
} CoalescingFile;

static sqlite3_vfs coalescingVFS;
static sqlite3_vfs *defaultVFS;
static sqlite3_io_methods coalescingMethods;
static atomic_llong writesRequested;
static atomic_llong writesIssued;
static atomic_llong syncsDeferred;
static atomic_llong syncsForced;
static atomic_llong walSyncsReal;

/// The unix VFS writes at most 0x1ffff bytes per call (it masks the length), so the buffer
/// goes out in pieces no larger than this.
#define WRITE_BYTES_MAX 0x1F000

// Per writer thread: whether commit syncs are deferred, and the WAL whose syncs were.
static _Thread_local int deferCommitSyncs;
static _Thread_local CoalescingFile *deferredWAL;

static void markSynced(CoalescingFile *wal, long long generation) {
    long long seen = atomic_load(&wal->syncedGeneration);
    while (seen < generation && !atomic_compare_exchange_weak(&wal->syncedGeneration, &seen, generation)) {}
}

/// Before something whose safety needs the deferred commits durable (a checkpoint writing or
/// syncing the database file, a truncation, a close), makes them durable here and now unless
/// the syncer already has.
static int syncPendingWAL(void) {
    CoalescingFile *wal = deferredWAL;
    if (wal == NULL) return SQLITE_OK;
    long long generation = wal->deferredGeneration;
    if (atomic_load(&wal->syncedGeneration) >= generation) return SQLITE_OK;
    atomic_fetch_add_explicit(&syncsForced, 1, memory_order_relaxed);
    int rc = wal->real->pMethods->xSync(wal->real, SQLITE_SYNC_NORMAL);
    if (rc == SQLITE_OK) markSynced(wal, generation);
    return rc;
}

static int flushBuffer(CoalescingFile *file) {
    if (file->failedRc != SQLITE_OK) return file->failedRc;
    int length = file->bufferLength;
    file->bufferLength = 0;
    for (int done = 0; done < length;) {
        int piece = length - done < WRITE_BYTES_MAX ? length - done : WRITE_BYTES_MAX;
        atomic_fetch_add_explicit(&writesIssued, 1, memory_order_relaxed);
        int rc = file->real->pMethods->xWrite(file->real, file->buffer + done, piece, file->bufferOffset + done);
        if (rc != SQLITE_OK) {
            // The bytes are gone from the buffer: no later sync may claim they are on disk.
            file->failedRc = rc;
            return rc;
        }
        done += piece;
    }
    return SQLITE_OK;
}

static int xClose(sqlite3_file *f) {
    CoalescingFile *file = (CoalescingFile *)f;
    int flushed = flushBuffer(file);
    if (deferredWAL == file) {
        int synced = syncPendingWAL();
        if (flushed == SQLITE_OK) flushed = synced;
        deferredWAL = NULL;
    }
    int closed = file->real->pMethods->xClose(file->real);
    free(file->buffer);
    file->buffer = NULL;
    return flushed != SQLITE_OK ? flushed : closed;
}

static int xRead(sqlite3_file *f, void *out, int amount, sqlite3_int64 offset) {
    CoalescingFile *file = (CoalescingFile *)f;
    if (file->bufferLength > 0 && offset < file->bufferOffset + file->bufferLength && offset + amount > file->bufferOffset) {
        int rc = flushBuffer(file);
        if (rc != SQLITE_OK) return rc;
    }
    return file->real->pMethods->xRead(file->real, out, amount, offset);
}

static int xWrite(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
    CoalescingFile *file = (CoalescingFile *)f;
    if (!file->isWAL) {
        // A checkpoint writing database pages: the frames it copies must be durable first.
        int rc = syncPendingWAL();
        if (rc != SQLITE_OK) return rc;
        return file->real->pMethods->xWrite(file->real, data, amount, offset);
    }
    atomic_fetch_add_explicit(&writesRequested, 1, memory_order_relaxed);
    if (file->failedRc != SQLITE_OK) return file->failedRc;
    // After a WAL restart SQLite writes a new header and syncs it before the first frame
    // (out-of-order writes after a restart can corrupt); that sync must not be deferred.
    if (offset == 0) file->headerPending = 1;
    if (file->buffer == NULL) {
        file->buffer = malloc(WAL_BUFFER_BYTES_MAX);
        if (file->buffer == NULL) {
            atomic_fetch_add_explicit(&writesIssued, 1, memory_order_relaxed);
            return file->real->pMethods->xWrite(file->real, data, amount, offset);
        }
    }
    int contiguous = file->bufferLength > 0 && offset == file->bufferOffset + file->bufferLength;
    if (file->bufferLength > 0 && (!contiguous || file->bufferLength + amount > WAL_BUFFER_BYTES_MAX)) {
        int rc = flushBuffer(file);
        if (rc != SQLITE_OK) return rc;
    }
    if (amount > WRITE_BYTES_MAX) {
        int rc = flushBuffer(file);
        if (rc != SQLITE_OK) return rc;
        atomic_fetch_add_explicit(&writesIssued, 1, memory_order_relaxed);
        return file->real->pMethods->xWrite(file->real, data, amount, offset);
    }
    if (file->bufferLength == 0) file->bufferOffset = offset;
    memcpy(file->buffer + file->bufferLength, data, (size_t)amount);
    file->bufferLength += amount;
    return SQLITE_OK;
}

static int xTruncate(sqlite3_file *f, sqlite3_int64 size) {
    CoalescingFile *file = (CoalescingFile *)f;
    int rc = flushBuffer(file);
    if (rc != SQLITE_OK) return rc;
    rc = syncPendingWAL();
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xTruncate(file->real, size);
}

static int xSync(sqlite3_file *f, int flags) {
    CoalescingFile *file = (CoalescingFile *)f;
    int rc = flushBuffer(file);
    if (rc != SQLITE_OK) return rc;
    if (file->isWAL && deferCommitSyncs && file->hasSynced && !file->headerPending) {
        if (deferredWAL != NULL && deferredWAL != file) {
            rc = syncPendingWAL();
            if (rc != SQLITE_OK) return rc;
        }
        deferredWAL = file;
        file->deferredGeneration += 1;
        atomic_fetch_add_explicit(&syncsDeferred, 1, memory_order_relaxed);
        return SQLITE_OK;
    }
    if (!file->isWAL) {
        // Syncing the database file ends a checkpoint: its WAL frames must be durable before.
        rc = syncPendingWAL();
        if (rc != SQLITE_OK) return rc;
    }
    long long generation = file->deferredGeneration;
    rc = file->real->pMethods->xSync(file->real, flags);
    if (rc == SQLITE_OK) {
        if (file->isWAL) atomic_fetch_add_explicit(&walSyncsReal, 1, memory_order_relaxed);
        file->hasSynced = 1;
        file->headerPending = 0;
        if (file->isWAL) markSynced(file, generation);
    }
    return rc;
}

static int xFileSize(sqlite3_file *f, sqlite3_int64 *size) {
    CoalescingFile *file = (CoalescingFile *)f;
    int rc = flushBuffer(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xFileSize(file->real, size);
}

static int xLock(sqlite3_file *f, int level) { return ((CoalescingFile *)f)->real->pMethods->xLock(((CoalescingFile *)f)->real, level); }
static int xUnlock(sqlite3_file *f, int level) { return ((CoalescingFile *)f)->real->pMethods->xUnlock(((CoalescingFile *)f)->real, level); }
static int xCheckReservedLock(sqlite3_file *f, int *out) { return ((CoalescingFile *)f)->real->pMethods->xCheckReservedLock(((CoalescingFile *)f)->real, out); }

static int xFileControl(sqlite3_file *f, int op, void *arg) {
    CoalescingFile *file = (CoalescingFile *)f;
    // Anything that asks about or acts on the file's contents sees them all.
    int rc = flushBuffer(file);
    if (rc != SQLITE_OK) return rc;
    if (op == SQLITE_FCNTL_VFSNAME) {
        int inner = file->real->pMethods->xFileControl(file->real, op, arg);
        if (inner == SQLITE_OK) {
            char **name = (char **)arg;
            char *combined = sqlite3_mprintf("%s/%z", CSQLiteVFS_name, *name);
            *name = combined;
        }
        return inner;
    }
    return file->real->pMethods->xFileControl(file->real, op, arg);
}

static int xSectorSize(sqlite3_file *f) { return ((CoalescingFile *)f)->real->pMethods->xSectorSize(((CoalescingFile *)f)->real); }
static int xDeviceCharacteristics(sqlite3_file *f) { return ((CoalescingFile *)f)->real->pMethods->xDeviceCharacteristics(((CoalescingFile *)f)->real); }

static int xShmMap(sqlite3_file *f, int page, int pageSize, int extend, void volatile **out) {
    sqlite3_file *real = ((CoalescingFile *)f)->real;
    return real->pMethods->xShmMap(real, page, pageSize, extend, out);
}
static int xShmLock(sqlite3_file *f, int offset, int n, int flags) {
    sqlite3_file *real = ((CoalescingFile *)f)->real;
    return real->pMethods->xShmLock(real, offset, n, flags);
}
static void xShmBarrier(sqlite3_file *f) {
    sqlite3_file *real = ((CoalescingFile *)f)->real;
    real->pMethods->xShmBarrier(real);
}
static int xShmUnmap(sqlite3_file *f, int deleteFlag) {
    sqlite3_file *real = ((CoalescingFile *)f)->real;
    return real->pMethods->xShmUnmap(real, deleteFlag);
}
static int xFetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
    CoalescingFile *file = (CoalescingFile *)f;
    if (file->isWAL || file->real->pMethods->iVersion < 3) { *out = NULL; return SQLITE_OK; }
    return file->real->pMethods->xFetch(file->real, offset, amount, out);
}
static int xUnfetch(sqlite3_file *f, sqlite3_int64 offset, void *page) {
    CoalescingFile *file = (CoalescingFile *)f;
    if (file->isWAL || file->real->pMethods->iVersion < 3) return SQLITE_OK;
    return file->real->pMethods->xUnfetch(file->real, offset, page);
}

static int xOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *outFlags) {
    (void)vfs;
    CoalescingFile *file = (CoalescingFile *)f;
    memset(file, 0, sizeof(CoalescingFile));
    file->real = (sqlite3_file *)(file + 1);
    int rc = defaultVFS->xOpen(defaultVFS, name, file->real, flags, outFlags);
    if (file->real->pMethods == NULL) {
        // The inner open failed before it set methods: SQLite will not call xClose on us.
        f->pMethods = NULL;
        return rc;
    }
    file->isWAL = (flags & SQLITE_OPEN_WAL) != 0;
    f->pMethods = &coalescingMethods;
    return rc;
}

static int xDelete(sqlite3_vfs *v, const char *name, int syncDir) { (void)v; return defaultVFS->xDelete(defaultVFS, name, syncDir); }
static int xAccess(sqlite3_vfs *v, const char *name, int flags, int *out) { (void)v; return defaultVFS->xAccess(defaultVFS, name, flags, out); }
static int xFullPathname(sqlite3_vfs *v, const char *name, int n, char *out) { (void)v; return defaultVFS->xFullPathname(defaultVFS, name, n, out); }
static void *xDlOpen(sqlite3_vfs *v, const char *name) { (void)v; return defaultVFS->xDlOpen(defaultVFS, name); }
static void xDlError(sqlite3_vfs *v, int n, char *out) { (void)v; defaultVFS->xDlError(defaultVFS, n, out); }
static void (*xDlSym(sqlite3_vfs *v, void *handle, const char *symbol))(void) { (void)v; return defaultVFS->xDlSym(defaultVFS, handle, symbol); }
static void xDlClose(sqlite3_vfs *v, void *handle) { (void)v; defaultVFS->xDlClose(defaultVFS, handle); }
static int xRandomness(sqlite3_vfs *v, int n, char *out) { (void)v; return defaultVFS->xRandomness(defaultVFS, n, out); }
static int xSleep(sqlite3_vfs *v, int microseconds) { (void)v; return defaultVFS->xSleep(defaultVFS, microseconds); }
static int xCurrentTime(sqlite3_vfs *v, double *out) { (void)v; return defaultVFS->xCurrentTime(defaultVFS, out); }
static int xGetLastError(sqlite3_vfs *v, int n, char *out) { (void)v; return defaultVFS->xGetLastError ? defaultVFS->xGetLastError(defaultVFS, n, out) : 0; }
static int xCurrentTimeInt64(sqlite3_vfs *v, sqlite3_int64 *out) { (void)v; return defaultVFS->xCurrentTimeInt64(defaultVFS, out); }

static int registerOnce(void) {
    if (sqlite3_initialize() != SQLITE_OK) return SQLITE_ERROR;
    defaultVFS = sqlite3_vfs_find(NULL);
    if (defaultVFS == NULL || defaultVFS->iVersion < 2) return SQLITE_ERROR;
    coalescingMethods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = xClose, .xRead = xRead, .xWrite = xWrite, .xTruncate = xTruncate, .xSync = xSync,
        .xFileSize = xFileSize, .xLock = xLock, .xUnlock = xUnlock, .xCheckReservedLock = xCheckReservedLock,
        .xFileControl = xFileControl, .xSectorSize = xSectorSize, .xDeviceCharacteristics = xDeviceCharacteristics,
        .xShmMap = xShmMap, .xShmLock = xShmLock, .xShmBarrier = xShmBarrier, .xShmUnmap = xShmUnmap,
        .xFetch = xFetch, .xUnfetch = xUnfetch,
    };
    coalescingVFS = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(CoalescingFile) + defaultVFS->szOsFile,
        .mxPathname = defaultVFS->mxPathname,
        .zName = CSQLiteVFS_name,
        .xOpen = xOpen, .xDelete = xDelete, .xAccess = xAccess, .xFullPathname = xFullPathname,
        .xDlOpen = xDlOpen, .xDlError = xDlError, .xDlSym = xDlSym, .xDlClose = xDlClose,
        .xRandomness = xRandomness, .xSleep = xSleep, .xCurrentTime = xCurrentTime,
        .xGetLastError = xGetLastError, .xCurrentTimeInt64 = xCurrentTimeInt64,
    };
    return sqlite3_vfs_register(&coalescingVFS, 0);
}

static int registration = -1;

int CSQLiteVFS_register(void) {
    if (sqlite3_initialize() != SQLITE_OK) return SQLITE_ERROR;
    sqlite3_mutex *mutex = sqlite3_mutex_alloc(SQLITE_MUTEX_STATIC_APP1);
    sqlite3_mutex_enter(mutex);
    if (registration == -1) registration = registerOnce();
    int result = registration;
    sqlite3_mutex_leave(mutex);
    return result;
}

void CSQLiteVFS_setDeferredCommitSync(int on) {
    deferCommitSyncs = on;
}

long long CSQLiteVFS_takePendingSync(void **wal) {
    CoalescingFile *file = deferredWAL;
    *wal = file;
    if (file == NULL) return 0;
    long long generation = file->deferredGeneration;
    return atomic_load(&file->syncedGeneration) >= generation ? 0 : generation;
}

void CSQLiteVFS_markSynced(void *wal, long long generation) {
    markSynced((CoalescingFile *)wal, generation);
}

void CSQLiteVFS_statistics(long long *requested, long long *issued) {
    *requested = atomic_load(&writesRequested);
    *issued = atomic_load(&writesIssued);
}

void CSQLiteVFS_syncStatistics(long long *deferred, long long *forced, long long *walReal) {
    *deferred = atomic_load(&syncsDeferred);
    *forced = atomic_load(&syncsForced);
    *walReal = atomic_load(&walSyncsReal);
}
