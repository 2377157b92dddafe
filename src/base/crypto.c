/*
 * SHA-256 and Ed25519 through libsodium. Object ids, manifests and model
 * packages all hash and sign through these few functions.
 */
#include <sodium.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lupe/base.h"

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((lupe_sha256_ctx *)0)->state),
               "lupe_sha256_ctx too small for libsodium's state");

lupe_status lupe_crypto_init(void)
{
    if (sodium_init() < 0) return lupe_err(LUPE_EINTERNAL, "libsodium failed to initialise");
    return LUPE_OK;
}

void lupe_random_bytes(void *buf, size_t n)
{
    randombytes_buf(buf, n);
}

void lupe_sha256_init(lupe_sha256_ctx *h)
{
    crypto_hash_sha256_init((crypto_hash_sha256_state *)h->state);
}

void lupe_sha256_update(lupe_sha256_ctx *h, const void *data, size_t len)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)h->state, data, len);
}

void lupe_sha256_final(lupe_sha256_ctx *h, uint8_t out[LUPE_SHA256_BYTES])
{
    crypto_hash_sha256_final((crypto_hash_sha256_state *)h->state, out);
}

void lupe_sha256(const void *data, size_t len, uint8_t out[LUPE_SHA256_BYTES])
{
    crypto_hash_sha256(out, data, len);
}

void lupe_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int lupe_unhex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]);
        if (hi < 0) return -1;
        int lo = hexval(hex[2 * i + 1]);
        if (lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[2 * n] == 0 ? 0 : -1;
}

lupe_status lupe_sha256_file(const char *path, char out_hex[LUPE_SHA256_HEX])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lupe_err(errno == ENOENT ? LUPE_ENOTFOUND : LUPE_EIO, "%s: %s", path, strerror(errno));
    lupe_sha256_ctx h;
    lupe_sha256_init(&h);
    uint8_t buf[65536];
    lupe_status st = LUPE_OK;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) continue;
            st = lupe_err(LUPE_EIO, "%s: read: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        lupe_sha256_update(&h, buf, (size_t)r);
    }
    close(fd);
    if (st) return st;
    uint8_t d[LUPE_SHA256_BYTES];
    lupe_sha256_final(&h, d);
    lupe_hex(d, sizeof d, out_hex);
    return LUPE_OK;
}

lupe_status lupe_ed25519_keypair(uint8_t pk[LUPE_ED25519_PK], uint8_t sk[LUPE_ED25519_SK])
{
    if (crypto_sign_keypair(pk, sk) != 0) return lupe_err(LUPE_EINTERNAL, "ed25519 key generation failed");
    return LUPE_OK;
}

void lupe_ed25519_sign(uint8_t sig[LUPE_ED25519_SIG], const void *msg, size_t len, const uint8_t sk[LUPE_ED25519_SK])
{
    crypto_sign_detached(sig, NULL, msg, len, sk);
}

lupe_status lupe_ed25519_verify(const uint8_t sig[LUPE_ED25519_SIG], const void *msg, size_t len,
                                const uint8_t pk[LUPE_ED25519_PK])
{
    if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
        return lupe_err(LUPE_EVERIFY, "ed25519 signature does not verify");
    return LUPE_OK;
}
