/*
 * What the `lupe` command's files share: the command table entry, global
 * options, exit codes and small helpers for opening the workspace and
 * drawing progress.
 */
#ifndef LUPE_CLI_H
#define LUPE_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "lupe/base.h"
#include "lupe/store.h"

/* Exit codes, documented in docs/cli.md. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,    /* the command failed */
    EXIT_USAGE = 2,   /* bad command line */
    EXIT_PARTIAL = 3, /* finished, but some inputs were rejected */
};

typedef struct cli_ctx {
    const char *workspace; /* -w DIR; NULL = search from the current folder */
    int quiet;
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    int (*fn)(cli_ctx *ctx, int argc, char **argv);
    const char *summary;
    const char *help; /* usage and options, printed by `lupe CMD --help` */
} cli_cmd;

const cli_cmd *cli_find(const char *name);
/* Prints "lupe CMD: message" for a usage error and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) LUPE_PRINTF(2, 3);
/* Prints the current error detail as "lupe CMD: message" and returns EXIT_FAIL. */
int cli_fail(const char *cmd);
/* Handles --help anywhere before "--": returns the exit code to return at
 * once, or -1 to go on parsing. */
int cli_getopt_help(const char *cmd, int argc, char **argv);
int cli_print_help(const char *cmd);
lupe_status cli_open_ws(cli_ctx *ctx, lupe_ws **out);

/* Commands with actions (`lupe label set`, `lupe dataset create`) are a
 * table of verbs; cli_dispatch handles --help, opens the workspace and
 * calls the verb with argv starting at the verb's name. */
typedef struct cli_verb {
    const char *name;
    int (*fn)(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv);
} cli_verb;
int cli_dispatch(cli_ctx *ctx, const char *cmd, const cli_verb *verbs, int argc, char **argv);
/* Whole option values: 0, or -1 when s is not entirely a number in range. */
int cli_parse_int(const char *s, int lo, int hi, int *out);
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_float(const char *s, double lo, double hi, float *out);
/* Human-readable byte count into buf ("7.3 MB"). */
const char *cli_bytes(double n, char *buf, size_t bufsz);

/* A one-line progress bar on stderr, drawn only on a terminal. */
typedef struct cli_progress {
    int enabled;
    double last_draw, start;
    size_t total;
} cli_progress;
void cli_progress_start(cli_progress *p, size_t total);
void cli_progress_update(cli_progress *p, size_t done, const char *fmt, ...) LUPE_PRINTF(3, 4);
void cli_progress_end(cli_progress *p);

/* Writes count synthetic tags of stream seed, default settings (scratches),
 * as a new YOLO folder out, as `lupe synth` does (cmd_synth.c). */
lupe_status cli_synth_folder(uint64_t seed, long count, const char *out);

int cmd_init(cli_ctx *ctx, int argc, char **argv);
int cmd_ingest(cli_ctx *ctx, int argc, char **argv);
int cmd_images(cli_ctx *ctx, int argc, char **argv);
int cmd_fsck(cli_ctx *ctx, int argc, char **argv);
int cmd_status(cli_ctx *ctx, int argc, char **argv);
int cmd_labelset(cli_ctx *ctx, int argc, char **argv);
int cmd_label(cli_ctx *ctx, int argc, char **argv);
int cmd_dataset(cli_ctx *ctx, int argc, char **argv);
int cmd_import(cli_ctx *ctx, int argc, char **argv);
int cmd_import_onnx(cli_ctx *ctx, int argc, char **argv); /* `lupe import onnx`, argv[0] = "onnx" */
int cmd_synth(cli_ctx *ctx, int argc, char **argv);
int cmd_version(cli_ctx *ctx, int argc, char **argv);
int cmd_train(cli_ctx *ctx, int argc, char **argv);
int cmd_val(cli_ctx *ctx, int argc, char **argv);
int cmd_predict(cli_ctx *ctx, int argc, char **argv);
int cmd_bench(cli_ctx *ctx, int argc, char **argv);
int cmd_export(cli_ctx *ctx, int argc, char **argv);
int cmd_models(cli_ctx *ctx, int argc, char **argv);
int cmd_keys(cli_ctx *ctx, int argc, char **argv);
int cmd_help(cli_ctx *ctx, int argc, char **argv);

/* Registers a finished run as GROUP's next version and, when gate is set,
 * gates it (rules NULL: the default) as `lupe models register` does
 * (cmd_models.c); `lupe train --register` calls it too. Returns the exit
 * code: EXIT_PARTIAL when the version stays pending. */
int cli_models_register(cli_ctx *ctx, lupe_ws *ws, const char *run, const char *group, const char *rules, int gate,
                        const char *by, const char *note, int threads);

#endif
