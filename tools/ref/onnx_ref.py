#!/usr/bin/python3
"""A lupe detector checkpoint as ONNX, through PyTorch's exporter: a stand-in
for benchmarks and tests until lupe's own exporter (`lupe export onnx`) is
there, never used by lupe itself. Builds YOLOv8 with Ultralytics' module
names (the names lupe's det_build gives its parameters), loads the
checkpoint's weights and batch-norm statistics, and exports the model in
inference mode with Ultralytics' output layout: images [B, 3, H, W] float32
RGB 0..1 -> output0 [B, 4 + nc, N] (box centre x, y, width, height in input
pixels, then per-class sigmoid scores), batch dynamic.

usage: onnx_ref.py CKPT OUT.onnx [IMGSZ]
"""
import hashlib
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from yolov8_modules import C2f, SPPF, Conv  # noqa: E402

REG = 16


def read_ckpt(path):
    """lupe's checkpoint format (docs/formats.md): meta JSON and f32 tensors."""
    buf = open(path, "rb").read()
    if buf[:8] != b"LUPECKPT" or hashlib.sha256(buf[:-32]).digest() != buf[-32:]:
        sys.exit("%s: not a lupe checkpoint, or damaged" % path)
    version, flags, nt, nm = struct.unpack_from("<IIQQ", buf, 8)
    at = 32
    meta = json.loads(buf[at:at + nm])
    at += nm
    tensors = {}
    for _ in range(nt):
        (ln,) = struct.unpack_from("<H", buf, at)
        name = buf[at + 2:at + 2 + ln].decode()
        at += 2 + ln
        dtype, ndim = struct.unpack_from("<BB", buf, at)
        at += 2
        dims = struct.unpack_from("<%dQ" % ndim, buf, at)
        at += 8 * ndim
        n = math.prod(dims)
        tensors[name] = torch.frombuffer(bytearray(buf[at:at + 4 * n]), dtype=torch.float32).reshape(dims)
        at += 4 * n
    return meta, tensors


class Detect(nn.Module):
    def __init__(self, nc, chs, imgsz):
        super().__init__()
        c2, c3 = max(16, chs[0] // 4, 4 * REG), max(chs[0], min(nc, 100))
        self.nc = nc
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * REG, 1)) for x in chs)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in chs)
        pts, strides = [], []
        for i in range(3):
            s = 8 << i
            g = imgsz // s
            y, x = torch.meshgrid(torch.arange(g) + 0.5, torch.arange(g) + 0.5, indexing="ij")
            pts.append(torch.stack([x.flatten(), y.flatten()], 0))
            strides.append(torch.full((1, g * g), float(s)))
        self.register_buffer("anchors", torch.cat(pts, 1))
        self.register_buffer("strides", torch.cat(strides, 1))
        self.register_buffer("bins", torch.arange(REG, dtype=torch.float32).view(1, 1, REG, 1))

    def forward(self, xs):
        b = xs[0].shape[0]
        outs = [torch.cat([self.cv2[i](x), self.cv3[i](x)], 1).view(b, 4 * REG + self.nc, -1) for i, x in enumerate(xs)]
        y = torch.cat(outs, 2)
        box, cls = y[:, :4 * REG], y[:, 4 * REG:]
        d = (box.view(b, 4, REG, -1).softmax(2) * self.bins).sum(2)  # b, 4 (l t r b), anchors
        lt, rb = d[:, :2], d[:, 2:]
        x1y1, x2y2 = self.anchors - lt, self.anchors + rb
        xywh = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1) * self.strides
        return torch.cat([xywh, cls.sigmoid()], 1)


class Net(nn.Module):
    """yolov8.yaml: rows 0-22 as model.0 .. model.22."""

    def __init__(self, scale, nc, imgsz):
        super().__init__()
        w = 0.25 if scale == "n" else 0.5
        ch = lambda c: int(math.ceil(min(c, 1024) * w / 8) * 8)
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
             Detect(nc, (ch(256), ch(512), ch(1024)), imgsz)]
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


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    meta, t = read_ckpt(sys.argv[1])
    arch = meta["arch"]
    imgsz = int(sys.argv[3]) if len(sys.argv) > 3 else arch["imgsz"]
    net = Net(arch["scale"], arch["nc"], imgsz).eval()
    state = {}
    for name, p in net.state_dict().items():
        if name.endswith("num_batches_tracked") or name.split(".")[-1] in ("anchors", "strides", "bins"):
            continue
        if name not in t:
            sys.exit("%s: no tensor %s" % (sys.argv[1], name))
        v = t[name]
        if p.dim() == 4:  # lupe keeps convolution weights OHWI
            v = v.reshape(p.shape[0], p.shape[2], p.shape[3], p.shape[1]).permute(0, 3, 1, 2)
        state[name] = v.reshape(p.shape).clone()
    net.load_state_dict(state, strict=False)
    x = torch.rand(1, 3, imgsz, imgsz)
    torch.onnx.export(net, x, sys.argv[2], input_names=["images"], output_names=["output0"], opset_version=13,
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}})
    print("wrote %s: YOLOv8%s, %d classes, %dx%d" % (sys.argv[2], arch["scale"], arch["nc"], imgsz, imgsz))


main()
