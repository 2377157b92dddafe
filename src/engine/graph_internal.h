/*
 * What the graph files share: the graph, tensor, node and parameter
 * records, and the per-op preparation, forward and backward in graph_exec.c.
 */
#ifndef LUPE_GRAPH_INTERNAL_H
#define LUPE_GRAPH_INTERNAL_H

#include "lupe/engine.h"

#define G_MAX_IN 8

/* The public kinds, under the short names the engine's files use. */
enum {
    OP_INPUT = ENG_OP_INPUT,
    OP_CONV = ENG_OP_CONV,
    OP_BN = ENG_OP_BN,
    OP_SILU = ENG_OP_SILU,
    OP_SIGMOID = ENG_OP_SIGMOID,
    OP_ADD = ENG_OP_ADD,
    OP_CONCAT = ENG_OP_CONCAT,
    OP_SLICE = ENG_OP_SLICE,
    OP_MAXPOOL = ENG_OP_MAXPOOL,
    OP_UP2 = ENG_OP_UPSAMPLE2,
    OP_BN_SILU = ENG_OP_BN_SILU,
};

/* Ops with batch-norm parameters and state (mean, invstd, running stats). */
static inline int graph__has_bn(int op)
{
    return op == OP_BN || op == OP_BN_SILU;
}

typedef struct g_tensor {
    int n, h, w, c;
    size_t off, goff;  /* in floats from the arena start; goff SIZE_MAX = no gradient */
    int producer;      /* node index */
    int last;          /* last consuming node, -1 for the graph's outputs */
    int is_input;
    int split;         /* consumed only by slices that partition its channels */
} g_tensor;

typedef struct g_node {
    int op;
    char name[96];
    int in[G_MAX_IN], nin, out;
    int p0, p1;        /* parameters: conv weight and bias, bn gamma and beta; -1 = none */
    eng_conv_dims cd;
    int k, c0;         /* maxpool kernel; slice first channel */
    float eps, mom;    /* batch norm (OP_BN, OP_BN_SILU) */
    size_t st_off;     /* batch norm: mean, invstd, running mean, running var */
    char rmean_name[112], rvar_name[112];
    void *fast;        /* fast-path state (oneDNN), or NULL */
} g_node;

typedef struct g_param {
    char name[128];
    size_t n, off, goff;
    int group, ndim;
    int64_t dims[4];
    float lo, hi;      /* uniform initialisation range */
} g_param;

struct eng_graph {
    char name[64];
    g_tensor *t;
    int nt, tcap;
    g_node *nodes;
    int nn, ncap;
    g_param *p;
    int np, pcap;
    eng_param *params;
    float *arena;
    size_t arena_floats, scratch_off;
    int training, planned, fast, precision;
    uint64_t seed;
    lupe_status st;
    char err[512];
};

const char *graph__op_name(int op);
/* Creates fast-path state for a node; *scratch gets its scratch bytes. */
lupe_status graph__prepare(eng_graph *g, g_node *nd, size_t *scratch);
void graph__node_cleanup(g_node *nd);
void graph__forward(eng_graph *g, g_node *nd, int training);
/* Whether node i, with fast paths on, overwrites the gradient of its input
 * k rather than adding to it: it is the first to write it (the last to
 * consume the tensor, and k its first occurrence in the node's inputs) and
 * has an overwriting form (a fast convolution, batch norm, batch norm +
 * SiLU, SiLU, add, concat, upsampling); or it is a slice of a tensor that
 * slices partition (each overwrites its own channels). eng_graph_backward
 * zeroes the gradients that no first writer overwrites. */
int graph__first_writer_sets(const eng_graph *g, const g_node *nd, int i, int k);
/* Node i's backward pass. */
void graph__backward(eng_graph *g, g_node *nd, int i);

#endif
