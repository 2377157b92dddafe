/*
 * Internal to the detector part: the one order of detections (best first)
 * that NMS sorts by and the decoder's top-k buffer keeps by, so both agree
 * on which of equal-score boxes comes first.
 */
#ifndef LUPE_DET_NMS_H
#define LUPE_DET_NMS_H

#include "lupe/det.h"

/* < 0 when a comes before b: higher score, then lower class, then corners. */
int det__pred_cmp(const det_pred *a, const det_pred *b);

#endif
