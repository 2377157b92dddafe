#!/usr/bin/python3
"""ONNX files for lupe's ONNX import test, made by PyTorch (a test oracle only).

Builds a small YOLOv8-style detector written from YOLOv8's design: Conv-BN-
SiLU, C2f (with split), SPPF, an upsample+concat neck (top-down and bottom-
up) and the decoupled head with DFL and dist2bbox, whose output is
[1, 4 + nc, N] (box centre x, y, width, height in input pixels, then class
sigmoid scores; no NMS), the layout Ultralytics' YOLOv8 exports. The head
computes its anchors in forward from the feature shapes, as Ultralytics'
does, so the exported graph has the Shape/Range/Gather chains a real export
has (folded away by do_constant_folding=True, kept otherwise).

Weights and batch-norm statistics are random (fixed seed), scaled so that
activations stay of order 1 through the network. The model is exported
with torch.onnx.export at opsets 12 and 17, with and without constant
folding, and run on one random input in float32 and in float64; the input
and both outputs are written to io.ckpt (a lupe checkpoint, LUPECKPT v1):

  input            [1, 3, H, W] float32, uniform in [0, 1)
  output.f64       [1, 4 + nc, N] PyTorch's output computed in float64
                   (the exact answer for the float32 weights, rounded)
  output.f32       the same computed in float32, as the exporter traced it

Regenerate with:

    make golden-onnx   (runs: /usr/bin/python3 tools/ref/onnx_yolo.py tests/onnx/data)

`onnx_yolo.py --bench DIR [IMGSZ]` writes a model of YOLOv8n's size
instead (one class, 480 by default), for timing; it is not committed.
"""
import copy
import hashlib
import io
import json
import os
import struct
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from yolov8_modules import C2f, SPPF, Conv  # noqa: E402

IMGSZ, NC, REG = 96, 3, 16
SEED = 6
# Two exports of the detector cover both opsets and both ways of folding
# (the other two combinations add nothing the importer sees differently);
# two of the operator zoo cover opset-dependent semantics.
VARIANTS = [("yolo_op12.onnx", 12, True), ("yolo_op17_nofold.onnx", 17, False)]
ZOO_VARIANTS = [("zoo_op12.onnx", 12), ("zoo_op17.onnx", 17)]
ZOO_SHAPE = (1, 3, 20, 24)

torch.set_num_threads(1)


class DFL(nn.Module):
    """Expectation of the 16-bin distance distribution, as a 1x1 convolution
    with weights 0..15 (Ultralytics' DFL)."""

    def __init__(self, c1=REG):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats, strides, offset=0.5):
    points, stride_tensor = [], []
    dtype = feats[0].dtype
    for i, stride in enumerate(strides):
        _, _, h, w = feats[i].shape
        sx = torch.arange(end=w, dtype=dtype) + offset
        sy = torch.arange(end=h, dtype=dtype) + offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_tensor.append(torch.full((h * w, 1), stride, dtype=dtype))
    return torch.cat(points), torch.cat(stride_tensor)


def dist2bbox(distance, anchor_points, dim):
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)


class Detect(nn.Module):
    def __init__(self, nc, ch, c2, c3):
        super().__init__()
        self.nc, self.nl, self.no = nc, len(ch), nc + 4 * REG
        self.stride = [8.0, 16.0, 32.0]
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * REG, 1)) for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(REG)

    def forward(self, x):
        shape = x[0].shape
        x = [torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1) for i in range(self.nl)]
        anchors, strides = (t.transpose(0, 1) for t in make_anchors(x, self.stride))
        x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
        box, cls = x_cat.split((REG * 4, self.nc), 1)
        dbox = dist2bbox(self.dfl(box), anchors.unsqueeze(0), dim=1) * strides
        return torch.cat((dbox, cls.sigmoid()), 1)


class TinyYolo(nn.Module):
    """YOLOv8's layout at a small width: P3-P5 backbone with C2f and SPPF,
    PAN neck, three-level head."""

    def __init__(self, nc, w=(4, 8, 8, 12, 16), n=(1, 1, 1, 1), c23=(8, 8)):
        super().__init__()
        self.b0 = Conv(3, w[0], 3, 2)
        self.b1 = Conv(w[0], w[1], 3, 2)
        self.b2 = C2f(w[1], w[1], n[0], True)
        self.b3 = Conv(w[1], w[2], 3, 2)
        self.b4 = C2f(w[2], w[2], n[1], True)              # P3, stride 8
        self.b5 = Conv(w[2], w[3], 3, 2)
        self.b6 = C2f(w[3], w[3], n[2], True)              # P4, stride 16
        self.b7 = Conv(w[3], w[4], 3, 2)
        self.b8 = C2f(w[4], w[4], n[3], True)
        self.b9 = SPPF(w[4], w[4], 5)                      # P5, stride 32
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.n12 = C2f(w[4] + w[3], w[3], 1, False)
        self.n15 = C2f(w[3] + w[2], w[2], 1, False)        # out P3
        self.n16 = Conv(w[2], w[2], 3, 2)
        self.n18 = C2f(w[2] + w[3], w[3], 1, False)        # out P4
        self.n19 = Conv(w[3], w[3], 3, 2)
        self.n21 = C2f(w[3] + w[4], w[4], 1, False)        # out P5
        self.head = Detect(nc, (w[2], w[3], w[4]), c23[0], c23[1])

    def forward(self, x):
        x = self.b1(self.b0(x))
        p3 = self.b4(self.b3(self.b2(x)))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        n4 = self.n12(torch.cat((self.up(p5), p4), 1))
        o3 = self.n15(torch.cat((self.up(n4), p3), 1))
        o4 = self.n18(torch.cat((self.n16(o3), n4), 1))
        o5 = self.n21(torch.cat((self.n19(o4), p5), 1))
        return self.head([o3, o4, o5])


class Zoo(nn.Module):
    """Operators and attributes a detector export may use beyond the
    detector above: batch norm that cannot be folded (after a ReLU),
    LeakyReLU, depthwise and grouped convolutions with bias, a 5x5 kernel,
    strided and ceil-mode max pooling, Resize to sizes, arithmetic with
    constants, Flatten, Softmax over a middle axis, Transpose, Slice with a
    step, Concat along a non-channel axis."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, 1, 1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, 2, 1, groups=8)
        self.g2 = nn.Conv2d(8, 12, 1, 1, 0, groups=2)
        self.c5 = nn.Conv2d(12, 6, 5, 1, 2, bias=False)

    def forward(self, x):
        y = self.bn(torch.relu(self.c1(x)))
        y = nn.functional.leaky_relu(self.dw(y), 0.1)
        y = self.g2(y)                                                  # [1, 12, 10, 12]
        z = nn.functional.max_pool2d(y, 3, 2, 1)                        # [1, 12, 5, 6]
        z2 = nn.functional.max_pool2d(y[:, :, :9, :11], 2, 2, ceil_mode=True)
        u = nn.functional.interpolate(z, size=(10, 12), mode="nearest")
        y = y + u * 0.5 - y / 3.0
        y = torch.sigmoid(self.c5(y))                                   # [1, 6, 10, 12]
        f = y.flatten(2)                                                # [1, 6, 120]
        s = f.softmax(1)
        r = f.permute(0, 2, 1)[:, ::3, 1:5]                             # [1, 40, 4]
        return torch.cat([s.flatten(1), r.flatten(1), z2.flatten(1), torch.cat([z, z], 3).flatten(1)], 1)


def randomize(model, gen):
    """Random weights of about unit gain and random batch-norm statistics,
    so that folding batch norm into the convolutions changes every weight."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and not name.endswith("dfl.conv"):
            fan_in = m.weight[0].numel()
            m.weight.data = torch.randn(m.weight.shape, generator=gen) * (1.6 / fan_in) ** 0.5
            if m.bias is not None:
                m.bias.data = torch.randn(m.bias.shape, generator=gen) * 0.5
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.6 + 0.8 * torch.rand(c, generator=gen)
            m.bias.data = 0.4 * torch.randn(c, generator=gen)
            m.running_mean.data = 0.3 * torch.randn(c, generator=gen)
            m.running_var.data = 0.5 + torch.rand(c, generator=gen)


def varint(n):
    b = bytearray()
    while True:
        b.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(b)


def metadata_props(pairs):
    """ModelProto.metadata_props (field 14) entries as protobuf bytes: fields
    of a message may be appended to its encoding, so no onnx package is
    needed to add what Ultralytics writes there."""
    out = bytearray()
    for k, v in pairs:
        kb, vb = k.encode(), v.encode()
        entry = b"\x0a" + varint(len(kb)) + kb + b"\x12" + varint(len(vb)) + vb
        out += b"\x72" + varint(len(entry)) + entry
    return bytes(out)


def ckpt_bytes(meta, tensors):
    body = bytearray(b"LUPECKPT")
    body += struct.pack("<IIQQ", 1, 0, len(tensors), len(meta)) + meta.encode()
    for name, t in tensors:
        nb = name.encode()
        body += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", 0, t.dim())
        body += struct.pack("<%dQ" % t.dim(), *t.shape)
        body += t.detach().float().contiguous().numpy().astype("<f4").tobytes()
    body += hashlib.sha256(body).digest()
    return bytes(body)


def bench_model(out_dir, imgsz):
    """YOLOv8n's widths and depths (and head widths for one class) at imgsz,
    random weights: for timing lupe against ONNX Runtime; not committed."""
    torch.manual_seed(SEED)
    model = TinyYolo(1, (16, 32, 64, 128, 256), (1, 2, 2, 1), (64, 64))
    randomize(model, torch.Generator().manual_seed(SEED))
    model.eval()
    x = torch.rand((1, 3, imgsz, imgsz))
    path = os.path.join(out_dir, "yolov8n_like_%d.onnx" % imgsz)
    torch.onnx.export(model, x, path, opset_version=17, input_names=["images"], output_names=["output0"])
    print("wrote %s: %d parameters" % (path, sum(p.numel() for p in model.parameters())))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--bench":
        os.makedirs(sys.argv[2], exist_ok=True)
        bench_model(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 480)
        return
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/onnx/data"
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    model = TinyYolo(NC)
    randomize(model, gen)
    model.eval()
    x = torch.rand((1, 3, IMGSZ, IMGSZ), generator=gen)
    with torch.no_grad():
        y32 = model(x)
        y64 = copy.deepcopy(model).double()(x.double())
    params = sum(p.numel() for p in model.parameters())
    print("model: %d parameters, output %s, |box| <= %.1f, scores %.3f..%.3f, f32 vs f64 max %.3g"
          % (params, tuple(y32.shape), y64[0, :4].abs().max().item(), y64[0, 4:].min().item(),
             y64[0, 4:].max().item(), (y32.double() - y64).abs().max().item()))

    for fname, opset, fold in VARIANTS:
        buf = io.BytesIO()
        torch.onnx.export(model, x, buf, opset_version=opset, do_constant_folding=fold, input_names=["images"],
                          output_names=["output0"])
        data = buf.getvalue() + metadata_props([("names", str({i: "class%d" % i for i in range(NC)})),
                                                 ("stride", "32"), ("task", "detect"),
                                                 ("imgsz", str([IMGSZ, IMGSZ]))])
        path = os.path.join(out_dir, fname)
        with open(path, "wb") as f:
            f.write(data)
        print("wrote %s: opset %d, constant folding %s, %d bytes" % (path, opset, fold, len(data)))

    zoo = Zoo()
    randomize(zoo, gen)
    zoo.eval()
    zx = torch.rand(ZOO_SHAPE, generator=gen) * 2 - 1
    with torch.no_grad():
        zy32 = zoo(zx)
        zy64 = copy.deepcopy(zoo).double()(zx.double())
    for fname, opset in ZOO_VARIANTS:
        buf = io.BytesIO()
        torch.onnx.export(zoo, zx, buf, opset_version=opset, input_names=["x"], output_names=["y"])
        path = os.path.join(out_dir, fname)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        print("wrote %s: opset %d, %d bytes, output %s" % (path, opset, len(buf.getvalue()), tuple(zy32.shape)))

    meta = json.dumps({"generator": "tools/ref/onnx_yolo.py", "torch": torch.__version__, "imgsz": IMGSZ, "nc": NC,
                       "reg_max": REG, "seed": SEED, "parameters": params}, sort_keys=True)
    data = ckpt_bytes(meta, [("input", x), ("output.f64", y64), ("output.f32", y32), ("zoo.input", zx),
                             ("zoo.output.f64", zy64), ("zoo.output.f32", zy32)])
    path = os.path.join(out_dir, "io.ckpt")
    with open(path, "wb") as f:
        f.write(data)
    print("wrote %s: %d bytes" % (path, len(data)))


main()
