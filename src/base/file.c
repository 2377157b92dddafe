/*
 * Durable file I/O: capped whole-file reads and atomic replacement (temp
 * file in the same folder, fsync, rename, fsync the folder), so a crash at
 * any point leaves either the old file or the new one, never a mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lupe/base.h"

lupe_status lupe_file_read(const char *path, size_t max_bytes, uint8_t **out_buf, size_t *out_len)
{
    lupe_status st = LUPE_OK;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return lupe_err(errno == ENOENT ? LUPE_ENOTFOUND : LUPE_EIO, "%s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = lupe_err(LUPE_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = lupe_err(LUPE_EARG, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        st = lupe_err(LUPE_ELIMIT, "%s: %lld bytes is over the limit of %zu", path, (long long)sb.st_size, max_bytes);
        goto out;
    }
    /* The size can change while we read; read until EOF but never past cap. */
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    buf = lupe_malloc(cap);
    if (!buf) {
        st = lupe_err_ctx(LUPE_ENOMEM, "%s", path);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max_bytes) {
                st = lupe_err(LUPE_ELIMIT, "%s: grew past the limit of %zu bytes while reading", path, max_bytes);
                goto out;
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            uint8_t *nb = lupe_realloc(buf, ncap);
            if (!nb) {
                st = lupe_err_ctx(LUPE_ENOMEM, "%s", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            st = lupe_err(LUPE_EIO, "%s: read at byte %zu: %s", path, len, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    if (len > max_bytes) {
        st = lupe_err(LUPE_ELIMIT, "%s: over the limit of %zu bytes", path, max_bytes);
        goto out;
    }
    *out_buf = buf;
    *out_len = len;
    buf = NULL;
out:
    lupe_free(buf);
    close(fd);
    return st;
}

lupe_status lupe_write_all(int fd, const void *data, size_t len, const char *path)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return lupe_err(LUPE_EIO, "%s: write: %s", path, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return LUPE_OK;
}

lupe_status lupe_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return lupe_err(LUPE_EIO, "%s: open folder: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) return lupe_err(LUPE_EIO, "%s: fsync folder: %s", dir, strerror(e));
    return LUPE_OK;
}

lupe_status lupe_file_write_atomic(const char *path, const void *data, size_t len)
{
    return lupe_file_write_atomic_tmp(path, NULL, data, len);
}

lupe_status lupe_file_write_atomic_tmp(const char *path, const char *tmp_dir, const void *data, size_t len)
{
    return lupe_file_write_atomic_mode(path, tmp_dir, data, len, 0644);
}

lupe_status lupe_file_write_atomic_mode(const char *path, const char *tmp_dir, const void *data, size_t len,
                                        unsigned mode)
{
    lupe_status st = LUPE_OK;
    char *tmp = NULL, *dir = NULL;
    int fd = -1;

    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    dir = slash ? lupe_strndup(path, (size_t)(slash - path) + (slash == path)) : lupe_strdup(".");
    /* The pid in the name lets a checker tell whose temp file it is. */
    if (tmp_dir)
        tmp = lupe_asprintf("%s/%s.tmp.%ld.XXXXXX", tmp_dir, base, (long)getpid());
    else
        tmp = lupe_asprintf("%s.tmp.%ld.XXXXXX", path, (long)getpid());
    if (!tmp || !dir) {
        st = LUPE_ENOMEM;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = lupe_err(LUPE_EIO, "%s: create temp file: %s", path, strerror(errno));
        goto out;
    }
    /* mkstemp made the file 0600; a secret stays so from its first byte. */
    if (fchmod(fd, (mode_t)mode) != 0) {
        st = lupe_err(LUPE_EIO, "%s: chmod: %s", tmp, strerror(errno));
        goto out;
    }
    if ((st = lupe_write_all(fd, data, len, tmp))) goto out;
    if (fsync(fd) != 0) {
        st = lupe_err(LUPE_EIO, "%s: fsync: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = lupe_err(LUPE_EIO, "%s: close: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = lupe_err(LUPE_EIO, "%s: rename into place: %s", path, strerror(errno));
        goto out;
    }
    lupe_free(tmp);
    tmp = NULL;
    st = lupe_fsync_dir(dir);
out:
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
    lupe_free(tmp);
    lupe_free(dir);
    return st;
}

lupe_status lupe_mkdirs(const char *path)
{
    char *p = lupe_strdup(path);
    if (!p) return LUPE_ENOMEM;
    lupe_status st = LUPE_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                st = lupe_err(LUPE_EIO, "%s: mkdir: %s", p, strerror(errno));
                break;
            }
            *s = c;
            if (!c) break;
        }
    }
    lupe_free(p);
    return st;
}

int lupe_path_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

char *lupe_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/') la--;
    while (*b == '/') b++;
    return lupe_asprintf("%.*s/%s", (int)la, a, b);
}
