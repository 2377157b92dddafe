/*
 * Status codes and the thread-local detail message. lupe_err() sets the
 * message, lupe_err_ctx() adds context in front of it as an error travels up,
 * so the final message reads outermost-first.
 */
#include <stdio.h>
#include <string.h>

#include "lupe/base.h"

#define ERRMSG_MAX 1024

static _Thread_local char errmsg[ERRMSG_MAX];

static const char *const names[LUPE_STATUS_COUNT] = {
    [LUPE_OK] = "ok",
    [LUPE_ENOMEM] = "out of memory",
    [LUPE_EIO] = "I/O error",
    [LUPE_EFORMAT] = "bad format",
    [LUPE_EARG] = "bad argument",
    [LUPE_ENOTFOUND] = "not found",
    [LUPE_EEXIST] = "already exists",
    [LUPE_ELIMIT] = "limit exceeded",
    [LUPE_ECORRUPT] = "corrupt data",
    [LUPE_EDB] = "database error",
    [LUPE_EUNSUPPORTED] = "unsupported",
    [LUPE_EVERIFY] = "verification failed",
    [LUPE_EINTERNAL] = "internal error",
};

const char *lupe_strerror(lupe_status st)
{
    if ((int)st < 0 || st >= LUPE_STATUS_COUNT) return "unknown status";
    return names[st];
}

lupe_status lupe_err(lupe_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return st;
}

lupe_status lupe_err_ctx(lupe_status st, const char *fmt, ...)
{
    char old[ERRMSG_MAX];
    memcpy(old, errmsg, sizeof old);
    const char *tail = old[0] ? old : lupe_strerror(st);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    /* Append ": tail", truncating quietly if the chain grows too long. */
    size_t used = n < 0 ? 0 : (size_t)n >= sizeof errmsg ? sizeof errmsg - 1 : (size_t)n;
    size_t room = sizeof errmsg - 1 - used;
    size_t tl = strlen(tail);
    if (room >= 2) {
        memcpy(errmsg + used, ": ", 2);
        used += 2;
        room -= 2;
        if (tl > room) tl = room;
        memcpy(errmsg + used, tail, tl);
        used += tl;
    }
    errmsg[used] = 0;
    return st;
}

const char *lupe_errmsg(void)
{
    return errmsg;
}

void lupe_err_clear(void)
{
    errmsg[0] = 0;
}
