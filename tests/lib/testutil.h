/*
 * Helpers shared by the cmocka unit tests: a scratch folder per test
 * program, the path of the shared datasets, and small file utilities.
 * Include after <cmocka.h>'s prerequisites; tests include "lib/testutil.h".
 */
#ifndef LUPE_TESTUTIL_H
#define LUPE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lupe/base.h"

/* A fresh folder under $TMPDIR, removed at exit unless LUPE_KEEP_TMP is set. */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name in a static rotating buffer. */
const char *tu_path(const char *name);
/* $LUPE_SHARED (default ../shared relative to the repository) joined with rel. */
const char *tu_shared(const char *rel);
/* Reads a whole file into a funnel buffer; fails the test on error. */
uint8_t *tu_read(const char *path, size_t *len);
void tu_write(const char *path, const void *data, size_t len);

#endif
