/*
 * Internal to the evaluation part: the numeric helpers that the metrics and
 * their tests share, and the drawing helpers that the charts, the confusion
 * matrix and the previews share.
 */
#ifndef LUPE_EVAL_INTERNAL_H
#define LUPE_EVAL_INTERNAL_H

#include "lupe/eval.h"

/* 0.50 + 0.05 k, k = 0..EVAL_NIOU-1. */
double eval__iou_threshold(int k);
/* numpy.interp for nondecreasing xs (n >= 1): left before xs[0], ys[n-1]
 * from xs[n-1] on, linear in between. */
double eval__interp(double q, const double *xs, const double *ys, size_t n, double left);
/* 101-point AP of n ranked (recall, precision) pairs; mrec, mpre: n + 2
 * doubles of scratch that come back holding the framed envelope. */
double eval__ap101(const double *recall, const double *precision, size_t n, double *mrec, double *mpre);
int eval__nc(const eval_ctx *e);

/* The series colours (Tableau 10), cycling. */
uint32_t eval__palette(int i);
/* Text rotated a quarter turn anticlockwise (read bottom to top), its
 * bounding box's top-left corner at (x, y). */
void eval__text_up(lupe_img *im, int x, int y, const char *text, int scale, uint32_t rgb);
/* Text centred on cx. */
void eval__text_center(lupe_img *im, int cx, int y, const char *text, int scale, uint32_t rgb);
/* Shortens text in place (with "..") until it is at most w pixels wide. */
void eval__text_fit(char *text, int scale, int w);

#endif
