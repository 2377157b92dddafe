/*
 * `lupe bench`: the benchmarks that compare lupe with other engines live in
 * their own programs (bench/NAME.c, built by `make bench`), because they load
 * those engines (ONNX Runtime) and lupe itself never does. This command
 * finds such a program beside the lupe binary, or in the release build of
 * the same tree, and runs it with the remaining arguments.
 */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct bench_prog {
    const char *name, *program;
} bench_prog;

static const bench_prog progs[] = {
    {"infer", "bench_infer"},
    {"infer-acc", "bench_infer_acc"},
    {NULL, NULL},
};

/* The program's path: next to this binary, else build/release/bin of the
 * tree this binary was built in (build/X/bin/lupe). NULL if neither. */
static char *find_program(const char *program)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return NULL;
    self[n] = 0;
    char *dir = dirname(self);
    char *p = lupe_asprintf("%s/%s", dir, program);
    if (p && access(p, X_OK) == 0) return p;
    lupe_free(p);
    p = lupe_asprintf("%s/../../release/bin/%s", dir, program);
    if (p && access(p, X_OK) == 0) return p;
    lupe_free(p);
    return NULL;
}

int cmd_bench(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc < 2) return cli_usage_error("bench", "which benchmark?");
        return cli_print_help("bench");
    }
    for (const bench_prog *b = progs; b->name; b++) {
        if (strcmp(b->name, argv[1])) continue;
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return cli_print_help("bench");
        char *path = find_program(b->program);
        if (!path) {
            fprintf(stderr,
                    "lupe bench %s: the benchmark program %s is not built; build it with\n"
                    "    make bench            (all benchmarks, release build; then runs the engine's)\n"
                    "or  make BUILD=release build/release/bin/%s\n",
                    b->name, b->program, b->program);
            return EXIT_FAIL;
        }
        argv[1] = path;
        fflush(NULL);
        execv(path, argv + 1);
        fprintf(stderr, "lupe bench %s: cannot run %s\n", b->name, path);
        lupe_free(path);
        return EXIT_FAIL;
    }
    return cli_usage_error("bench", "unknown benchmark '%s'", argv[1]);
}
