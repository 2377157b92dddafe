/*
 * Signing key commands: `lupe keys create|list|export`. Keys sign model
 * packages; devices are given the public half (`export`) to verify them.
 */
#include <string.h>

#include "cli/cli.h"
#include "lupe/registry.h"

static int k_create(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    if (argc != 2) return cli_usage_error("keys", "usage: lupe keys create NAME");
    uint8_t pk[LUPE_ED25519_PK];
    if (reg_key_create(ws, argv[1], pk)) return cli_fail("keys");
    char hex[2 * LUPE_ED25519_PK + 1], id[REG_KEY_ID_HEX];
    lupe_hex(pk, sizeof pk, hex);
    reg_key_id(pk, id);
    if (!ctx->quiet)
        printf("created key %s (id %s) in %s/%s/keys/\npublic key %s\n", argv[1], id, lupe_ws_root(ws), LUPE_WS_DIR,
               hex);
    return EXIT_OK;
}

static int print_key(void *ud, const char *name, const uint8_t pk[LUPE_ED25519_PK])
{
    int *count = ud;
    char hex[2 * LUPE_ED25519_PK + 1], id[REG_KEY_ID_HEX];
    lupe_hex(pk, LUPE_ED25519_PK, hex);
    reg_key_id(pk, id);
    printf("%-20s id %s  %s\n", name, id, hex);
    (*count)++;
    return 0;
}

static int k_list(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) return cli_usage_error("keys", "usage: lupe keys list");
    int count = 0;
    if (reg_key_each(ws, print_key, &count)) return cli_fail("keys");
    if (!count && !ctx->quiet) printf("no keys yet (lupe keys create NAME)\n");
    return EXIT_OK;
}

static int k_export(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    if (argc != 2) return cli_usage_error("keys", "usage: lupe keys export NAME");
    uint8_t pk[LUPE_ED25519_PK];
    if (reg_key_public(ws, argv[1], pk)) return cli_fail("keys");
    char hex[2 * LUPE_ED25519_PK + 1];
    lupe_hex(pk, sizeof pk, hex);
    printf("%s\n", hex); /* the public half only, alone on its line, for scripts */
    return EXIT_OK;
}

int cmd_keys(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_verb verbs[] = {{"create", k_create}, {"list", k_list}, {"export", k_export}, {0}};
    return cli_dispatch(ctx, "keys", verbs, argc, argv);
}
