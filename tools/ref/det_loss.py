#!/usr/bin/python3
"""Golden values for lupe's detector loss, computed with PyTorch (a test oracle only).

Builds YOLOv8n (the layers of bench/torch_step.py, named as Ultralytics and
lupe's det_build name them) for 2 classes at 96x96, batch 2, in float64,
with weights and input from a formula that tests/det/test_loss.c computes
too (so the file need not hold 3 million weights). Runs one forward pass
(batch norm in training mode), the YOLOv8 loss written here from its
description (task-aligned assigner, CIoU, DFL, BCE; see docs/detector.md)
and the backward pass, and records:

  gt                 the ground-truth boxes, rows of img, cls, x1, y1, x2, y2
  wstat.NAME         sum and sum of squares of each weight and of the input
                     (proves both sides built the same network)
  out.L, dout.L      head output of level L and d total / d output (NHWC)
  loss               box, cls, dfl (gain-weighted), total, positives
  assign.gt          per anchor of the batch, the assigned box or -1
  assign.score       per anchor, the target score at the box's class
  gstat.NAME         of each parameter's gradient: L2 norm, sum(g * r),
                     sum(|g * r|) with r from the formula, max |g|
  grad.NAME          the whole gradient of parameters of up to FULL values,
  gsample.NAME       else SAMPLES values at evenly spread indices

Tensors are NHWC, convolution weights and their gradients OHWI. The run
also checks that the assignment has no near-tie that float32 rounding
could flip (the C side runs in float32), and refuses to write otherwise.
The file is a lupe checkpoint (LUPECKPT v1). Regenerate with:

    make golden-det    (runs: /usr/bin/python3 tools/ref/det_loss.py tests/det/data/det_loss.ckpt)
"""
import hashlib
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT_VERSION = 1
IMGSZ, BATCH, NC = 96, 2, 2
REG = 16
BOX_GAIN, CLS_GAIN, DFL_GAIN = 7.5, 0.5, 1.5
TOPK, ALPHA, BETA = 10, 0.5, 6.0
FULL, SAMPLES = 2304, 64
# Ground truth: img, cls, corners in pixels; float32-exact, no edge on an
# anchor centre; small, medium and large boxes, some overlapping.
GT = [(0, 0, 4.25, 6.5, 19.75, 17.5),
      (0, 1, 27.5, 30.25, 61.75, 66.5),
      (0, 0, 6.75, 5.25, 90.5, 91.75),
      (0, 1, 60.25, 9.5, 93.25, 29.75),
      (1, 1, 9.5, 49.25, 44.75, 90.25),
      (1, 0, 52.75, 3.25, 69.5, 20.5),
      (1, 1, 41.25, 14.5, 86.75, 81.5)]

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# ---- the formula for weights and input (also in tests/det/test_loss.c) ----
M64 = (1 << 64) - 1


def fnv1a(s):
    h = 0xCBF29CE484222325
    for c in s.encode():
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def uniform(key, n):
    """u in [0, 1) for elements 0..n-1 of the tensor called key: splitmix64's
    finaliser of fnv1a(key) + i * golden ratio, top 24 bits."""
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a(key)) + np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(40)).astype(np.float64) / 16777216.0


# Centre bin of the box-distribution bias per level: predicted sides of
# about 1.2, 1.7 and 1.5 cells (20, 54 and 96 pixel boxes), so that small,
# medium and large boxes align best with different levels.
BOX_BIAS_CENTRE = (1.0, 1.5, 1.3)


def param_value(name, shape):
    """The value of parameter `name` (lupe's and Ultralytics' names) in
    lupe's layout (OHWI for convolutions), float32 from float64."""
    n = int(np.prod(shape))
    u = uniform(name, n)
    if len(shape) == 4:                      # OHWI: fan_in = H * W * I
        fan_in = shape[1] * shape[2] * shape[3]
        v = (2 * u - 1) * math.sqrt(3.0 / fan_in)
    elif name.endswith(".bn.weight"):
        v = 1 + 0.4 * (u - 0.5)
    elif name.endswith(".bn.bias"):
        v = 0.4 * (u - 0.5)
    elif name.startswith("model.22.cv2.") and name.endswith(".2.bias"):
        c = BOX_BIAS_CENTRE[int(name.split(".")[3])]
        k = np.arange(n) % REG
        v = -0.5 * (k - c) ** 2 + 0.2 * (u - 0.5)
    elif name.startswith("model.22.cv3.") and name.endswith(".2.bias"):
        v = -1.0 + 0.4 * (u - 0.5)
    else:
        raise SystemExit("det_loss.py: no formula for parameter %s" % name)
    return v.astype(np.float32).reshape(shape)


def sample_index(n):
    m = min(n, SAMPLES)
    return [(2 * k + 1) * n // (2 * m) for k in range(m)]


# ---- YOLOv8n, Ultralytics' module names ----------------------------------
from yolov8_modules import C2f, SPPF, Bottleneck, Conv  # noqa: E402,F401


class Detect(nn.Module):
    def __init__(self, nc, chs):
        super().__init__()
        c2, c3 = max(16, chs[0] // 4, 4 * REG), max(chs[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * REG, 1)) for x in chs)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in chs)

    def forward(self, xs):
        return [torch.cat([self.cv2[i](x), self.cv3[i](x)], 1) for i, x in enumerate(xs)]


class Net(nn.Module):
    """yolov8.yaml at scale n: rows 0-22 as model.0 .. model.22."""

    def __init__(self, nc):
        super().__init__()
        ch = lambda c: int(math.ceil(min(c, 1024) * 0.25 / 8) * 8)
        rep = lambda n: max(round(n * 0.33), 1)
        m = [Conv(3, ch(64), 3, 2), Conv(ch(64), ch(128), 3, 2), C2f(ch(128), ch(128), rep(3), True),
             Conv(ch(128), ch(256), 3, 2), C2f(ch(256), ch(256), rep(6), True),
             Conv(ch(256), ch(512), 3, 2), C2f(ch(512), ch(512), rep(6), True),
             Conv(ch(512), ch(1024), 3, 2), C2f(ch(1024), ch(1024), rep(3), True), SPPF(ch(1024), ch(1024)),
             nn.Upsample(scale_factor=2, mode="nearest"), nn.Identity(),
             C2f(ch(1024) + ch(512), ch(512), rep(3), False),
             nn.Upsample(scale_factor=2, mode="nearest"), nn.Identity(),
             C2f(ch(512) + ch(256), ch(256), rep(3), False),
             Conv(ch(256), ch(256), 3, 2), nn.Identity(), C2f(ch(256) + ch(512), ch(512), rep(3), False),
             Conv(ch(512), ch(512), 3, 2), nn.Identity(), C2f(ch(512) + ch(1024), ch(1024), rep(3), False),
             Detect(nc, (ch(256), ch(512), ch(1024)))]
        self.model = nn.ModuleList(m)

    def forward(self, x):
        m, t = self.model, {}
        for i in range(10):
            x = t[i] = m[i](x)
        t[12] = m[12](torch.cat([m[10](t[9]), t[6]], 1))
        t[15] = m[15](torch.cat([m[13](t[12]), t[4]], 1))
        t[18] = m[18](torch.cat([m[16](t[15]), t[12]], 1))
        t[21] = m[21](torch.cat([m[19](t[18]), t[9]], 1))
        return m[22]([t[15], t[18], t[21]])


# ---- the loss, from its description ----------------------------------------
def ciou(p, t, eps=1e-7, alpha_grad=False):
    """CIoU of corner boxes p and t (..., 4), Ultralytics' eps placement; the
    aspect weight alpha is computed without gradient."""
    w1, h1 = p[..., 2] - p[..., 0], p[..., 3] - p[..., 1] + eps
    w2, h2 = t[..., 2] - t[..., 0], t[..., 3] - t[..., 1] + eps
    iw = (torch.minimum(p[..., 2], t[..., 2]) - torch.maximum(p[..., 0], t[..., 0])).clamp(min=0)
    ih = (torch.minimum(p[..., 3], t[..., 3]) - torch.maximum(p[..., 1], t[..., 1])).clamp(min=0)
    inter = iw * ih
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    cw = torch.maximum(p[..., 2], t[..., 2]) - torch.minimum(p[..., 0], t[..., 0])
    ch = torch.maximum(p[..., 3], t[..., 3]) - torch.minimum(p[..., 1], t[..., 1])
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((t[..., 0] + t[..., 2] - p[..., 0] - p[..., 2]) ** 2 +
            (t[..., 1] + t[..., 3] - p[..., 1] - p[..., 3]) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def anchors(sizes):
    pts, strides = [], []
    for lv, n in enumerate(sizes):
        y, x = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
        pts.append(torch.stack([x.reshape(-1) + 0.5, y.reshape(-1) + 0.5], 1))
        strides.append(torch.full((n * n, 1), float(8 << lv), dtype=torch.float64))
    return torch.cat(pts), torch.cat(strides)


def assign(scores, pbox_px, anc_px, boxes, margins):
    """Task-aligned assignment of one image as matrices over (box, anchor).
    scores [A, nc] sigmoid, pbox_px [A, 4], anc_px [A, 2], boxes: list of
    (global index, cls, x1, y1, x2, y2). Returns the assigned global box
    index per anchor (-1 none) and the target score at its class."""
    A = anc_px.shape[0]
    gt_of = torch.full((A,), -1, dtype=torch.long)
    tscore = torch.zeros(A, dtype=torch.float64)
    if not boxes:
        return gt_of, tscore
    G = len(boxes)
    gb = torch.tensor([b[2:] for b in boxes], dtype=torch.float64)                      # [G, 4]
    cls = torch.tensor([b[1] for b in boxes])
    d = torch.cat([anc_px[None] - gb[:, None, :2], gb[:, None, 2:] - anc_px[None]], 2)  # [G, A, 4]
    inside = d.amin(2) > 1e-9
    margins["inside"] = min(margins["inside"], d.amin(2).abs().min().item())
    ov = torch.where(inside, ciou(pbox_px[None].expand(G, A, 4), gb[:, None].expand(G, A, 4)).clamp(min=0),
                     torch.zeros(()))
    s = scores[:, cls].T                                                                 # [G, A]
    metric = torch.where(inside, s ** ALPHA * ov ** BETA, torch.zeros(()))
    pos = torch.zeros(G, A, dtype=torch.bool)
    idx = torch.arange(A)
    for g in range(G):
        cand = idx[inside[g]]
        m = metric[g, cand].numpy()
        order = np.lexsort((cand.numpy(), -m))  # metric descending, then anchor number
        pos[g, cand[order[:TOPK]]] = True
        if len(cand) > TOPK:
            a, b = m[order[TOPK - 1]], m[order[TOPK]]
            margins["topk"] = min(margins["topk"], (a - b) / a if a > 0 else 1.0)
    multi = pos.sum(0) > 1
    if multi.any():
        best = ov.argmax(0)                     # first box on ties
        pos[:, multi] = F.one_hot(best[multi], G).T.bool()
        top2 = ov[:, multi].sort(0, descending=True).values[:2]
        if G > 1:
            gap = ((top2[0] - top2[1]) / top2[0].clamp(min=1e-30)).min().item()
            margins["settle"] = min(margins["settle"], gap)
    am = metric * pos
    maxm = am.amax(1, keepdim=True)
    maxo = (ov * pos).amax(1, keepdim=True)
    norm = (am * maxo / (maxm + 1e-9)).amax(0)
    fg = pos.any(0)
    which = pos.double().argmax(0)
    gt_of[fg] = torch.tensor([boxes[g][0] for g in which[fg].tolist()], dtype=torch.long)
    tscore[fg] = norm[fg]
    return gt_of, tscore


def yolo_loss(outs, gt, margins):
    """outs: head outputs NCHW (float64, with grad). Returns box, cls, dfl
    (gain-weighted), total, positives, gt_of [B, A] and tscore [B, A]."""
    B = outs[0].shape[0]
    sizes = [o.shape[2] for o in outs]
    pred = torch.cat([o.permute(0, 2, 3, 1).reshape(B, -1, 4 * REG + NC) for o in outs], 1)  # [B, A, 64 + nc]
    anc, stride = anchors(sizes)
    logits_box, logits_cls = pred[..., :4 * REG], pred[..., 4 * REG:]
    prob = logits_box.reshape(B, -1, 4, REG).softmax(3)
    dist = prob @ torch.arange(REG, dtype=torch.float64)                               # [B, A, 4] grid units
    pbox = torch.cat([anc - dist[..., :2], anc + dist[..., 2:]], 2)
    gt_of, tscore = [], []
    with torch.no_grad():
        for b in range(B):
            boxes = [(i,) + tuple(g[1:]) for i, g in enumerate(gt) if g[0] == b]
            o, s = assign(logits_cls[b].sigmoid(), pbox[b] * stride, anc * stride, boxes, margins)
            gt_of.append(o)
            tscore.append(s)
    gt_of, tscore = torch.stack(gt_of), torch.stack(tscore)
    tss = max(tscore.sum().item(), 1.0)
    target = torch.zeros_like(logits_cls)
    fg = gt_of >= 0
    gcls = torch.tensor([g[1] for g in gt] + [0])[gt_of]  # -1 picks the dummy
    target[fg, gcls[fg]] = tscore[fg]
    l_cls = F.binary_cross_entropy_with_logits(logits_cls, target, reduction="sum") / tss
    gtb = torch.tensor([g[2:] for g in gt] + [(0, 0, 0, 0)], dtype=torch.float64)[gt_of]  # [B, A, 4] pixels
    st = stride.expand(B, -1, -1)[fg]
    tb = gtb[fg] / st                                                                   # grid units
    w = tscore[fg]
    l_box = ((1 - ciou(pbox[fg], tb)) * w).sum() / tss
    a = anc.expand(B, -1, -1)[fg]
    t = torch.cat([a - tb[:, :2], tb[:, 2:] - a], 1).clamp(0, REG - 1 - 0.01)          # [P, 4]
    tl = t.floor().long()
    wl = tl + 1 - t
    logp = F.log_softmax(logits_box[fg].reshape(-1, 4, REG), 2)
    ce_l = -logp.gather(2, tl[..., None])[..., 0]
    ce_r = -logp.gather(2, (tl + 1)[..., None])[..., 0]
    l_dfl = (((ce_l * wl + ce_r * (1 - wl)).mean(1)) * w).sum() / tss
    box, cls, dfl = BOX_GAIN * l_box, CLS_GAIN * l_cls, DFL_GAIN * l_dfl
    total = (box + cls + dfl) * B
    return box, cls, dfl, total, int(fg.sum()), gt_of, tscore


def main():
    out_path = sys.argv[1]
    net = Net(NC).double()
    net.train()
    tensors = []

    def add(name, t):
        t = torch.as_tensor(t).detach().double()
        tensors.append((name, t.float().contiguous()))

    def stat(name, a):
        a = np.asarray(a, dtype=np.float64).reshape(-1)
        add("wstat." + name, [a.sum(), (a * a).sum()])

    params = dict(net.named_parameters())
    for name, p in params.items():
        shape = tuple(p.shape)
        if p.dim() == 4:  # lupe's OHWI
            v = param_value(name, (shape[0], shape[2], shape[3], shape[1]))
            p.data.copy_(torch.from_numpy(v).permute(0, 3, 1, 2))
        else:
            v = param_value(name, shape)
            p.data.copy_(torch.from_numpy(v))
        stat(name, v)
    x_nhwc = uniform("images", BATCH * IMGSZ * IMGSZ * 3).astype(np.float32).reshape(BATCH, IMGSZ, IMGSZ, 3)
    stat("images", x_nhwc)
    x = torch.from_numpy(x_nhwc).double().permute(0, 3, 1, 2)

    outs = net(x)
    for o in outs:
        o.retain_grad()
    margins = {"inside": math.inf, "topk": math.inf, "settle": math.inf}
    box, cls, dfl, total, npos, gt_of, tscore = yolo_loss(outs, GT, margins)
    total.backward()

    # The assignment must not hang on a rounding: float32 on the C side
    # moves metrics and overlaps by about 1e-6 relative.
    per_level = [int((gt_of[:, a0:a1] >= 0).sum()) for a0, a1 in
                 ((0, 144), (144, 180), (180, 189))]
    print("positives per level %s, margins %s" % (per_level, margins))
    if margins["inside"] < 1e-3 or margins["topk"] < 1e-3 or margins["settle"] < 1e-3 or min(per_level) == 0:
        raise SystemExit("det_loss.py: the assignment is fragile or misses a level; change GT or the formula")

    add("gt", GT)
    for lv, o in enumerate(outs):
        add("out.%d" % lv, o.permute(0, 2, 3, 1))
        add("dout.%d" % lv, o.grad.permute(0, 2, 3, 1))
    add("loss", [box.item(), cls.item(), dfl.item(), total.item(), npos])
    add("assign.gt", gt_of.reshape(-1).double())
    add("assign.score", tscore.reshape(-1))
    nfull = nsample = 0
    for name, p in params.items():
        g = p.grad.detach()
        if g.dim() == 4:
            g = g.permute(0, 2, 3, 1)
        g = g.contiguous().reshape(-1).numpy()
        r = 2 * uniform("proj." + name, g.size) - 1
        add("gstat." + name, [np.sqrt((g * g).sum()), (g * r).sum(), np.abs(g * r).sum(), np.abs(g).max()])
        if g.size <= FULL:
            add("grad." + name, g)
            nfull += 1
        else:
            add("gsample." + name, g[sample_index(g.size)])
            nsample += 1

    meta = json.dumps({"generator": "tools/ref/det_loss.py", "format_version": FORMAT_VERSION,
                       "torch": torch.__version__, "imgsz": IMGSZ, "batch": BATCH, "nc": NC, "scale": "n",
                       "precision": "float64", "positives_per_level": per_level}, sort_keys=True)
    body = bytearray(b"LUPECKPT")
    body += struct.pack("<IIQQ", 1, 0, len(tensors), len(meta)) + meta.encode()
    for name, t in tensors:
        nb = name.encode()
        body += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", 0, t.dim())
        body += struct.pack("<%dQ" % t.dim(), *t.shape)
        body += t.numpy().astype("<f4").tobytes()
    body += hashlib.sha256(body).digest()
    with open(out_path, "wb") as f:
        f.write(body)
    print("wrote %s: %d tensors, %d bytes; loss box %.6f cls %.6f dfl %.6f total %.6f, %d positives; "
          "%d full gradients, %d sampled" % (out_path, len(tensors), len(body), box.item(), cls.item(), dfl.item(),
                                             total.item(), npos, nfull, nsample))


main()
