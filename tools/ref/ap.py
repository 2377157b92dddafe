#!/usr/bin/python3
"""Expected detection metrics for lupe's evaluation, computed from the
definitions in docs/evaluation.md (a test oracle only; standard library).

Generates seeded random validation sets (images with ground-truth boxes of
2-3 classes and noisy predictions: jittered boxes, wrong classes, duplicates,
false positives, tied scores), computes per-class AP at IoU 0.50:0.05:0.95,
mAP50, mAP50-95, the precision/recall/F1 curves over confidence, P and R at
the maximum mean F1, and the confusion matrix, and writes the inputs and the
expected values to a JSON file that tests/eval/test_ap_oracle.c checks
lupe against. Written apart from src/eval/metrics.c: per-threshold matching
loops, bisect for the interpolation, dictionaries for the bookkeeping.

Every coordinate and score is a float32 value (lupe keeps them in float),
so both sides start from the same numbers; the arithmetic is IEEE double on
both sides in the same order, so agreement is expected to the last bit.

    make golden-ap    (runs: /usr/bin/python3 tools/ref/ap.py tests/eval/data/ap_case.json)
"""
import bisect
import json
import random
import struct
import sys

SEED = 20251125
NIOU = 10
NCURVE = 1000
CM_CONF = 0.25
CM_IOU = 0.45


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def thresholds():
    return [0.5 + 0.05 * k for k in range(NIOU)]


def iou(a, b):
    """a, b: (x1, y1, x2, y2)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if not (iw > 0) or not (ih > 0):
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def interp(q, xs, ys, left):
    """numpy.interp for nondecreasing xs: the segment after the LAST xs[j] <= q."""
    if q < xs[0]:
        return left
    if q >= xs[-1]:
        return ys[-1]
    j = bisect.bisect_right(xs, q) - 1
    return ys[j] + (q - xs[j]) * (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])


def ap101(recall, precision):
    """Envelope of the framed PR points, sampled at recall i/100, trapezoids."""
    mrec = [0.0] + list(recall) + [1.0]
    mpre = [1.0] + list(precision) + [0.0]
    for j in range(len(mpre) - 2, -1, -1):
        mpre[j] = max(mpre[j], mpre[j + 1])
    ys = [interp(i / 100.0, mrec, mpre, 1.0) for i in range(101)]
    area = 0.0
    for i in range(1, 101):
        area += (i / 100.0 - (i - 1) / 100.0) * (ys[i - 1] + ys[i]) / 2.0
    return area, mrec, mpre


def match_image(preds, gts):
    """COCO matching: per threshold, predictions by score (ties: input
    order) take the unmatched same-class box of highest IoU >= t (ties: the
    first box). Returns tp[i] = list of 0/1 per threshold."""
    order = sorted(range(len(preds)), key=lambda i: (-preds[i]["score"], i))
    tp = [[0] * NIOU for _ in preds]
    for k, t in enumerate(thresholds()):
        taken = set()
        for i in order:
            p = preds[i]
            best, best_v = None, 0.0
            for g, b in enumerate(gts):
                if g in taken or b["cls"] != p["cls"]:
                    continue
                v = iou(p["box"], b["box"])
                if v >= t and (best is None or v > best_v):
                    best, best_v = g, v
            if best is not None:
                taken.add(best)
                tp[i][k] = 1
    return tp


def confusion_image(preds, gts, nc, cm):
    """Class-agnostic, score > CM_CONF, IoU > CM_IOU, greedy by IoU (ties:
    prediction index, then box index), one to one."""
    live = [i for i, p in enumerate(preds) if p["score"] > CM_CONF]
    pairs = []
    for i in live:
        for g, b in enumerate(gts):
            v = iou(preds[i]["box"], b["box"])
            if v > CM_IOU:
                pairs.append((-v, i, g))
    pairs.sort()
    pm, gm = {}, {}
    for _, i, g in pairs:
        if i in pm or g in gm:
            continue
        pm[i], gm[g] = g, i
        cm[preds[i]["cls"]][gts[g]["cls"]] += 1
    for g, b in enumerate(gts):
        if g not in gm:
            cm[nc][b["cls"]] += 1
    for i in live:
        if i not in pm:
            cm[preds[i]["cls"]][nc] += 1


def evaluate(nc, images):
    ranked = []  # (score, seq, cls, tp)
    ngt = [0] * nc
    cm = [[0] * (nc + 1) for _ in range(nc + 1)]
    seq = 0
    for im in images:
        tp = match_image(im["pred"], im["gt"])
        for i, p in enumerate(im["pred"]):
            ranked.append((p["score"], seq, p["cls"], tp[i]))
            seq += 1
        for b in im["gt"]:
            ngt[b["cls"]] += 1
        confusion_image(im["pred"], im["gt"], nc, cm)
    ranked.sort(key=lambda r: (-r[0], r[1]))

    grid = [i / (NCURVE - 1) for i in range(NCURVE)]
    zero = [0.0] * NCURVE
    ap_iou = {c: [0.0] * NIOU for c in range(nc)}
    pc, rc, fc = {}, {}, {}
    for c in range(nc):
        pc[c], rc[c], fc[c] = zero, zero, zero
        if ngt[c] == 0:
            continue
        mine = [r for r in ranked if r[2] == c]
        if not mine:
            continue
        negconf = [-r[0] for r in mine]
        for k in range(NIOU):
            recall, precision = [], []
            tps = fps = 0.0
            for r in mine:
                if r[3][k]:
                    tps += 1.0
                else:
                    fps += 1.0
                recall.append(tps / ngt[c])
                precision.append(tps / (tps + fps))
            ap_iou[c][k] = ap101(recall, precision)[0]
            if k == 0:
                rec0, prec0 = recall, precision
        pc[c] = [interp(-x, negconf, prec0, 1.0) for x in grid]
        rc[c] = [interp(-x, negconf, rec0, 0.0) for x in grid]
        fc[c] = [2.0 * p * r / (p + r) if p + r > 0 else 0.0 for p, r in zip(pc[c], rc[c])]

    classes = [c for c in range(nc) if ngt[c] > 0]
    ap50 = [ap_iou[c][0] for c in range(nc)]
    ap = []
    for c in range(nc):
        s = 0.0
        for v in ap_iou[c]:
            s += v
        ap.append(s / NIOU)
    out = {"ngt": ngt, "ap50": ap50, "ap": ap, "ap_iou": [ap_iou[c] for c in range(nc)], "confusion": cm,
           "map50": 0.0, "map": 0.0, "p": 0.0, "r": 0.0, "f1": 0.0, "conf": 0.0, "conf_index": 0,
           "p_class": [0.0] * nc, "r_class": [0.0] * nc}
    if not classes:
        return out
    # Highest class-mean F1; ties to the highest confidence (the curves are
    # flat below the lowest score, so the first index would always say 0).
    best, best_f = 0, -1.0
    for i in range(NCURVE):
        s = 0.0
        for c in classes:
            s += fc[c][i]
        s /= len(classes)
        if s >= best_f:
            best, best_f = i, s
    out["p_class"] = [pc[c][best] for c in range(nc)]
    out["r_class"] = [rc[c][best] for c in range(nc)]

    def mean(v):
        s = 0.0
        for c in classes:
            s += v[c]
        return s / len(classes)

    out.update(map50=mean(ap50), map=mean(ap), p=mean(out["p_class"]), r=mean(out["r_class"]), f1=best_f,
               conf=grid[best], conf_index=best)
    return out


# ---- hand-checked cases: the oracle must agree with arithmetic done on paper
def selftest():
    g = [{"cls": 0, "box": (0.0, 0.0, 10.0, 10.0)}, {"cls": 0, "box": (50.0, 50.0, 60.0, 60.0)}]
    p = [{"cls": 0, "score": f32(0.9), "box": (0.0, 0.0, 10.0, 10.0)},
         {"cls": 0, "score": f32(0.8), "box": (100.0, 100.0, 110.0, 110.0)},
         {"cls": 0, "score": f32(0.7), "box": (50.0, 50.0, 60.0, 60.0)}]
    r = evaluate(1, [{"gt": g, "pred": p}])
    # TP, FP, TP over 2 boxes: the envelope is 1 up to recall 0.5 (exclusive),
    # 2/3 from 0.5 to 0.99, 0 at 1: 0.49 + 0.01*(5/6) + 0.49*(2/3) + 0.01*(1/3).
    assert abs(r["ap50"][0] - 497 / 600) < 1e-12, r["ap50"]
    assert abs(r["f1"] - 0.8) < 1e-12 and r["conf_index"] == 699, (r["f1"], r["conf_index"])
    perfect = evaluate(1, [{"gt": g, "pred": [p[0], p[2]]}])
    assert abs(perfect["map"] - 0.995) < 1e-12, perfect["map"]


# ---- random validation sets
def rand_box(rng, size=480):
    w, h = rng.uniform(10, 160), rng.uniform(8, 160)
    x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
    return (f32(x), f32(y), f32(x + w), f32(y + h))


def jitter(rng, b, s):
    w, h = b[2] - b[0], b[3] - b[1]
    return (f32(b[0] + rng.gauss(0, s * w)), f32(b[1] + rng.gauss(0, s * h)),
            f32(b[2] + rng.gauss(0, s * w)), f32(b[3] + rng.gauss(0, s * h)))


def score(rng, mu, sd, decimals):
    v = min(max(rng.gauss(mu, sd), 0.001), 0.999)
    return f32(round(v, decimals))  # rounding makes ties on purpose


def make_images(rng, nimg, nc, gt_classes, pred_classes, miss=0.15):
    images = []
    for _ in range(nimg):
        gts = [{"cls": rng.choice(gt_classes), "box": rand_box(rng)} for _ in range(rng.choice([0, 0, 1, 2, 3, 4, 6]))]
        preds = []
        for b in gts:
            if rng.random() < miss:
                continue
            cls = b["cls"] if rng.random() < 0.88 else rng.choice(pred_classes)
            if cls not in pred_classes:
                continue
            preds.append({"cls": cls, "box": jitter(rng, b["box"], rng.choice([0.02, 0.05, 0.1, 0.2])),
                          "score": score(rng, 0.7, 0.2, 3)})
            if rng.random() < 0.3:  # a duplicate, looser and usually weaker
                preds.append({"cls": cls, "box": jitter(rng, b["box"], 0.15), "score": score(rng, 0.45, 0.2, 2)})
        for _ in range(rng.choice([0, 1, 2, 3, 5])):
            preds.append({"cls": rng.choice(pred_classes), "box": rand_box(rng), "score": score(rng, 0.2, 0.15, 3)})
        rng.shuffle(preds)
        images.append({"gt": gts, "pred": preds})
    return images


def cases():
    rng = random.Random(SEED)
    return [
        ("three_classes", 3, make_images(rng, 80, 3, [0, 1, 2], [0, 1, 2])),
        ("two_classes_dense", 2, make_images(rng, 40, 2, [0, 1], [0, 1], miss=0.05)),
        # Class 1 has boxes but is never predicted; class 2 is predicted but
        # has no boxes (left out of every mean).
        ("unpredicted_and_unlabelled", 3, make_images(rng, 30, 3, [0, 1], [0, 2])),
        # No ground truth anywhere: every figure is 0.
        ("no_ground_truth", 2, [{"gt": [], "pred": im["pred"]} for im in make_images(rng, 10, 2, [0, 1], [0, 1])]),
    ]


def encode_image(im):
    return {"gt": [[b["cls"]] + list(b["box"]) for b in im["gt"]],
            "pred": [[p["cls"], p["score"]] + list(p["box"]) for p in im["pred"]]}


def main(path):
    selftest()
    out = {"generator": "tools/ref/ap.py", "seed": SEED,
           "note": "pred rows: class, score, x1, y1, x2, y2; gt rows: class, x1, y1, x2, y2; float32 values",
           "cases": []}
    for name, nc, images in cases():
        out["cases"].append({"name": name, "nc": nc, "images": [encode_image(im) for im in images],
                             "expected": evaluate(nc, images)})
    # One image or expected field per line: small diffs when regenerated.
    lines = ['{"generator": %s, "seed": %d, "note": %s, "cases": [' % (
        json.dumps(out["generator"]), out["seed"], json.dumps(out["note"]))]
    for ci, c in enumerate(out["cases"]):
        lines.append(' {"name": %s, "nc": %d, "images": [' % (json.dumps(c["name"]), c["nc"]))
        for ii, im in enumerate(c["images"]):
            lines.append("  " + json.dumps(im, separators=(",", ":")) + ("," if ii + 1 < len(c["images"]) else ""))
        lines.append(' ], "expected": {')
        keys = sorted(c["expected"])
        for ki, k in enumerate(keys):
            lines.append("  %s: %s%s" % (json.dumps(k), json.dumps(c["expected"][k], separators=(",", ":")),
                                         "," if ki + 1 < len(keys) else ""))
        lines.append(" }}" + ("," if ci + 1 < len(out["cases"]) else ""))
    lines.append("]}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # it must parse
    with open(path, "w") as f:
        f.write(text)
    for c in out["cases"]:
        e = c["expected"]
        print("%-28s mAP50 %.4f  mAP50-95 %.4f  P %.4f  R %.4f  F1 %.4f at %.3f" % (
            c["name"], e["map50"], e["map"], e["p"], e["r"], e["f1"], e["conf"]))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: ap.py OUT.json")
    main(sys.argv[1])
