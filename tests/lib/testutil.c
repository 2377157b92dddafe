/*
 * Implementation of the shared test helpers (see testutil.h).
 */
#include "lib/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[512];

static void rm_tmpdir(void)
{
    if (!tmpdir[0] || getenv("LUPE_KEEP_TMP")) return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *tu_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/lupe-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) fail_msg("mkdtemp %s failed", tmpdir);
        atexit(rm_tmpdir);
    }
    return tmpdir;
}

const char *tu_path(const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, 1024, "%s/%s", tu_tmpdir(), name);
    return b;
}

const char *tu_shared(const char *rel)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ & 3];
    const char *base = getenv("LUPE_SHARED");
    snprintf(b, 1024, "%s/%s", base && *base ? base : "../shared", rel);
    return b;
}

uint8_t *tu_read(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    if (lupe_file_read(path, (size_t)1 << 30, &buf, len) != LUPE_OK) fail_msg("reading %s: %s", path, lupe_errmsg());
    return buf;
}

void tu_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (len && fwrite(data, 1, len, f) != len) fail_msg("cannot write %s", path);
    if (fclose(f) != 0) fail_msg("cannot close %s", path);
}
