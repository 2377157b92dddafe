/*
 * lupe base library: status codes with detail messages, the allocation
 * funnel, logging, durable file I/O, hashing and signatures, JSON helpers and
 * table-driven config files. Everything else in lupe builds on this.
 *
 *     uint8_t *buf = NULL; size_t n = 0;
 *     lupe_status st = lupe_file_read("model.bin", 1 << 20, &buf, &n);
 *     if (st) { lupe_log_error("%s", lupe_errmsg()); return st; }
 *     ...
 *     lupe_free(buf);
 */
#ifndef LUPE_BASE_H
#define LUPE_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LUPE_VERSION "0.1.0"

#if defined(__GNUC__)
#define LUPE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define LUPE_NODISCARD __attribute__((warn_unused_result))
#else
#define LUPE_PRINTF(f, a)
#define LUPE_NODISCARD
#endif

/* ---- status -------------------------------------------------------------
 * One enum for the whole project, 0 = OK. The detail message lives in a
 * thread-local buffer: lupe_err() sets it, lupe_err_ctx() prefixes context as
 * the error travels up ("ingesting a.jpg: decoding: truncated at byte 812"). */
typedef enum lupe_status {
    LUPE_OK = 0,
    LUPE_ENOMEM,       /* allocation failed or memory limit reached */
    LUPE_EIO,          /* operating system I/O error */
    LUPE_EFORMAT,      /* input is not what was expected (bad bytes, bad syntax) */
    LUPE_EARG,         /* bad argument or option from the caller or user */
    LUPE_ENOTFOUND,    /* named thing does not exist */
    LUPE_EEXIST,       /* thing already exists */
    LUPE_ELIMIT,       /* input exceeds a configured cap */
    LUPE_ECORRUPT,     /* stored data failed a consistency check */
    LUPE_EDB,          /* database error */
    LUPE_EUNSUPPORTED, /* valid but not supported */
    LUPE_EVERIFY,      /* signature or hash verification failed */
    LUPE_EINTERNAL,    /* a bug: should not happen */
    LUPE_STATUS_COUNT
} lupe_status;

const char *lupe_strerror(lupe_status st);
/* Sets the thread's detail message and returns st, so `return lupe_err(...)`. */
lupe_status lupe_err(lupe_status st, const char *fmt, ...) LUPE_PRINTF(2, 3);
/* Prefixes "context: " to the current detail message and returns st. */
lupe_status lupe_err_ctx(lupe_status st, const char *fmt, ...) LUPE_PRINTF(2, 3);
/* Detail message of the last error on this thread ("" if none). */
const char *lupe_errmsg(void);
void lupe_err_clear(void);

/* ---- allocation funnel --------------------------------------------------
 * All lupe heap memory goes through these. They count live and peak bytes,
 * refuse allocations past an optional limit, and can be told to fail the Nth
 * allocation from now (tests of out-of-memory paths). Thread-safe.
 * lupe_free(NULL) is a no-op. Failure returns NULL and sets LUPE_ENOMEM. */
void *lupe_malloc(size_t n);
void *lupe_calloc(size_t count, size_t size);
void *lupe_realloc(void *p, size_t n);
void lupe_free(void *p);
char *lupe_strdup(const char *s);
char *lupe_strndup(const char *s, size_t n);
char *lupe_asprintf(const char *fmt, ...) LUPE_PRINTF(1, 2);
/* Usable size of a block from the funnel (the size that was asked for). */
size_t lupe_alloc_size(const void *p);

typedef struct lupe_alloc_stats {
    size_t live_bytes, peak_bytes, limit_bytes;
    uint64_t allocs, frees, failures;
} lupe_alloc_stats;
void lupe_alloc_get_stats(lupe_alloc_stats *out);
/* 0 = no limit. */
void lupe_alloc_set_limit(size_t bytes);
/* The nth allocation from now fails (1 = the next one); 0 disables. */
void lupe_alloc_fail_nth(uint64_t nth);
void lupe_alloc_reset_peak(void);

/* ---- logging ------------------------------------------------------------
 * Human text on a terminal, JSON lines for services. Goes to stderr unless
 * lupe_log_set_stream() says otherwise. LUPE_LOG=debug and
 * LUPE_LOG_FORMAT=json|text in the environment override the defaults. */
typedef enum { LUPE_LOG_ERROR, LUPE_LOG_WARN, LUPE_LOG_INFO, LUPE_LOG_DEBUG, LUPE_LOG_TRACE } lupe_log_level;
typedef enum { LUPE_LOG_AUTO, LUPE_LOG_TEXT, LUPE_LOG_JSON } lupe_log_format;

/* AUTO picks text when the stream is a terminal and JSON lines otherwise. */
void lupe_log_init(lupe_log_level level, lupe_log_format fmt, const char *component);
void lupe_log_set_level(lupe_log_level level);
lupe_log_level lupe_log_get_level(void);
void lupe_log_set_stream(FILE *f);
int lupe_log_parse_level(const char *s, lupe_log_level *out);
void lupe_log(lupe_log_level level, const char *fmt, ...) LUPE_PRINTF(2, 3);
#define lupe_log_error(...) lupe_log(LUPE_LOG_ERROR, __VA_ARGS__)
#define lupe_log_warn(...) lupe_log(LUPE_LOG_WARN, __VA_ARGS__)
#define lupe_log_info(...) lupe_log(LUPE_LOG_INFO, __VA_ARGS__)
#define lupe_log_debug(...) lupe_log(LUPE_LOG_DEBUG, __VA_ARGS__)

/* ---- files --------------------------------------------------------------
 * Whole-file reads with a cap, and atomic replacement: write a temp file in
 * the same folder, fsync it, rename it over the target, fsync the folder. */
lupe_status lupe_file_read(const char *path, size_t max_bytes, uint8_t **out_buf, size_t *out_len);
lupe_status lupe_file_write_atomic(const char *path, const void *data, size_t len);
/* Same, with the temp file in tmp_dir (same file system) rather than beside
 * the target, so a folder scanned by others never shows half-written files. */
lupe_status lupe_file_write_atomic_tmp(const char *path, const char *tmp_dir, const void *data, size_t len);
/* Same, with the file's permission bits (0600 for secrets such as signing
 * keys; the others use 0644). tmp_dir may be NULL (beside the target). */
lupe_status lupe_file_write_atomic_mode(const char *path, const char *tmp_dir, const void *data, size_t len,
                                        unsigned mode);
lupe_status lupe_fsync_dir(const char *dir);
/* Writes all of data to fd, retrying short writes and EINTR; errors name path. */
lupe_status lupe_write_all(int fd, const void *data, size_t len, const char *path);
/* mkdir -p; mode 0755. */
lupe_status lupe_mkdirs(const char *path);
int lupe_path_exists(const char *path);
/* Joins a and b with one '/'; returns a funnel string or NULL. */
char *lupe_path_join(const char *a, const char *b);

/* ---- hashing and signatures (libsodium) ---------------------------------- */
#define LUPE_SHA256_BYTES 32
#define LUPE_SHA256_HEX 65 /* 64 hex digits and NUL */
#define LUPE_ED25519_PK 32
#define LUPE_ED25519_SK 64
#define LUPE_ED25519_SIG 64

typedef struct lupe_sha256_ctx { _Alignas(16) unsigned char state[128]; } lupe_sha256_ctx;
lupe_status lupe_crypto_init(void);
/* Cryptographically secure random bytes. */
void lupe_random_bytes(void *buf, size_t n);
void lupe_sha256_init(lupe_sha256_ctx *h);
void lupe_sha256_update(lupe_sha256_ctx *h, const void *data, size_t len);
void lupe_sha256_final(lupe_sha256_ctx *h, uint8_t out[LUPE_SHA256_BYTES]);
void lupe_sha256(const void *data, size_t len, uint8_t out[LUPE_SHA256_BYTES]);
void lupe_hex(const uint8_t *bytes, size_t n, char *out /* 2n+1 */);
/* Parses exactly 2n hex digits; returns 0 on success, -1 otherwise. */
int lupe_unhex(const char *hex, uint8_t *out, size_t n);
lupe_status lupe_sha256_file(const char *path, char out_hex[LUPE_SHA256_HEX]);

lupe_status lupe_ed25519_keypair(uint8_t pk[LUPE_ED25519_PK], uint8_t sk[LUPE_ED25519_SK]);
void lupe_ed25519_sign(uint8_t sig[LUPE_ED25519_SIG], const void *msg, size_t len, const uint8_t sk[LUPE_ED25519_SK]);
/* LUPE_OK if the signature verifies, LUPE_EVERIFY otherwise. */
lupe_status lupe_ed25519_verify(const uint8_t sig[LUPE_ED25519_SIG], const void *msg, size_t len,
                                const uint8_t pk[LUPE_ED25519_PK]);

/* ---- JSON (jansson) ------------------------------------------------------
 * Thin helpers; callers use jansson's API on the returned json_t. Parse
 * errors name the source, line, column and byte. */
struct json_t;
lupe_status lupe_json_parse(const char *text, size_t len, const char *source_name, struct json_t **out);
lupe_status lupe_json_load_file(const char *path, size_t max_bytes, struct json_t **out);
/* Compact, key-sorted serialization; returns a funnel string. */
char *lupe_json_dump(const struct json_t *j, int pretty);
/* Routes jansson's allocations through the funnel; called by lupe_base_init. */
void lupe_json_use_funnel(void);

/* ---- config files --------------------------------------------------------
 * Lines of `key = value`; `#` starts a comment; blank lines ignored. Keys
 * come from a table; an unknown key, a repeated key or a bad value is an
 * error naming file and line. Values are stored into a struct by offset. */
typedef enum { LUPE_CFG_INT, LUPE_CFG_DOUBLE, LUPE_CFG_BOOL, LUPE_CFG_STRING, LUPE_CFG_SIZE, LUPE_CFG_ENUM } lupe_cfg_type;

typedef struct lupe_cfg_key {
    const char *name;
    lupe_cfg_type type;
    size_t offset;          /* offsetof(struct, field) */
    double min, max;        /* for INT, DOUBLE, SIZE; ignored when min > max */
    const char *const *choices; /* for ENUM: NULL-terminated; stored as int index */
    const char *help;
} lupe_cfg_key;

/* Field types: INT int64_t, DOUBLE double, BOOL bool, SIZE uint64_t (accepts
 * 64k, 3M, 2G), ENUM int (index into choices), STRING `char *` owned by the
 * struct: free with lupe_config_cleanup. */
lupe_status lupe_config_parse(const lupe_cfg_key *keys, void *dst, const char *text, size_t len, const char *source_name);
lupe_status lupe_config_load(const lupe_cfg_key *keys, void *dst, const char *path);
/* Sets one key from a string, as from a command-line override. */
lupe_status lupe_config_set(const lupe_cfg_key *keys, void *dst, const char *key, const char *value);
void lupe_config_cleanup(const lupe_cfg_key *keys, void *dst);
/* Parses "12", "64k", "3M", "2G" (powers of 1024). Returns 0 or -1. */
int lupe_parse_size(const char *s, uint64_t *out);

/* ---- misc ---------------------------------------------------------------- */
/* Initialises libsodium and routes library allocators through the funnel. */
lupe_status lupe_base_init(void);
/* Wall-clock and monotonic time. */
int64_t lupe_time_unix(void);
double lupe_time_mono(void);
/* Formats a unix time as "2026-11-24T22:07:09Z" into out (>= 21 bytes). */
void lupe_time_iso(int64_t t, char *out, size_t outsz);

#endif
