/*
 * Fixtures for the registry tests: a workspace, and run folders that look
 * exactly like finished training runs (a real lupe checkpoint with detector
 * metadata, metrics.json with chosen figures, config.json, results.csv)
 * without training, so the tests can pick the metrics the gate sees.
 */
#ifndef LUPE_TEST_REGISTRY_FIXTURES_H
#define LUPE_TEST_REGISTRY_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/testutil.h"
#include "lupe/engine.h"
#include "lupe/registry.h"

#define FX_UNUSED __attribute__((unused))

#define FX_DATASET_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FX_DATASET_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

FX_UNUSED static lupe_ws *fx_ws(const char *name)
{
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path(name), &ws), LUPE_OK);
    return ws;
}

/* One split's metrics as trn_metrics_json writes them. */
FX_UNUSED static void fx_split(char *buf, size_t n, double map50_95)
{
    snprintf(buf, n,
             "{\"images\": 10, \"boxes\": 20, \"p\": 0.8, \"r\": 0.7, \"f1\": 0.75, \"map50\": %.4f, "
             "\"map50_95\": %.4f, \"conf\": 0.31, \"classes\": [{\"name\": \"scratch\", \"boxes\": 20, \"p\": 0.8, "
             "\"r\": 0.7, \"ap50\": %.4f, \"ap50_95\": %.4f}]}",
             map50_95 + 0.3, map50_95, map50_95 + 0.3, map50_95);
}

/* A finished run in tu_path(name): weights differ by `seed`; test < 0
 * means no test split. dataset: a 64-hex id, or "" for a folder. */
FX_UNUSED static const char *fx_run(const char *name, int seed, double val, double test, const char *dataset)
{
    static char dirs[8][1024];
    static int next;
    char *dir = dirs[next++ & 7];
    snprintf(dir, 1024, "%s", tu_path(name));
    char p[1200];
    snprintf(p, sizeof p, "%s/weights", dir);
    assert_int_equal(lupe_mkdirs(p), LUPE_OK);

    float data[8];
    for (int i = 0; i < 8; i++) data[i] = (float)(seed * 10 + i);
    char tname[] = "model.0.conv.weight";
    eng_tensor_rec t = {.name = tname, .ndim = 1, .dims = {8}, .n = 8, .data = data};
    const char *meta = "{\"format\": \"lupe-detector\", \"arch\": {\"family\": \"yolov8\", \"scale\": \"n\", "
                       "\"nc\": 1, \"imgsz\": 64}, \"classes\": [\"scratch\"]}";
    snprintf(p, sizeof p, "%s/weights/best.ckpt", dir);
    assert_int_equal(eng_ckpt_save(p, meta, &t, 1), LUPE_OK);
    char hash[LUPE_SHA256_HEX];
    assert_int_equal(lupe_sha256_file(p, hash), LUPE_OK);

    char vs[600], ts[600], text[2000];
    fx_split(vs, sizeof vs, val);
    if (test >= 0) fx_split(ts, sizeof ts, test);
    else snprintf(ts, sizeof ts, "null");
    snprintf(text, sizeof text,
             "{\"format\": \"lupe-run-metrics\", \"format_version\": 1, \"lupe_commit\": \"0123456789ab\", "
             "\"dataset\": \"%s\", \"dataset_name\": \"%s\", \"dataset_path\": %s, \"weights\": "
             "\"weights/best.ckpt\", \"weights_sha256\": \"%s\", \"epochs\": 3, \"val\": %s, \"test\": %s}",
             dataset, dataset[0] ? "tags@1" : "syn", dataset[0] ? "null" : "\"/nonexistent/syn\"", hash, vs, ts);
    snprintf(p, sizeof p, "%s/metrics.json", dir);
    tu_write(p, text, strlen(text));
    snprintf(p, sizeof p, "%s/config.json", dir);
    tu_write(p, "{\"epochs\": 3, \"imgsz\": 64}", 26);
    snprintf(p, sizeof p, "%s/results.csv", dir);
    tu_write(p, "epoch,x\n1,2\n", 12);
    return dir;
}

/* Registers a run as the next version of group g (no gate); returns it. */
FX_UNUSED static int fx_register(lupe_ws *ws, const char *g, const char *run)
{
    reg_register_opts o = {.run_dir = run, .group = g, .by = "tester"};
    reg_version v;
    assert_int_equal(reg_register(ws, &o, &v), LUPE_OK);
    int n = v.version;
    reg_version_cleanup(&v);
    return n;
}

#endif
