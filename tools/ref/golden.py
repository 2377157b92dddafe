#!/usr/bin/python3
"""Golden values for lupe's engine, computed with PyTorch (a test oracle only).

Builds a small network from the ops lupe's engine has (convolution with and
without bias, stride and groups, batch norm in training mode, SiLU, split,
concat, a residual add, 5x5 max pooling as in SPPF, nearest upsampling,
softmax for a distribution-focal-style loss and binary cross-entropy with
logits), runs it once and records the input, every weight, the output, the
loss and ALL gradients, then the loss of each of 10 SGD steps (momentum,
Nesterov, weight decay on conv weights) and the final weights and batch-norm
running statistics.

The file is a lupe checkpoint (magic LUPECKPT, version 1; see
docs/formats.md) with activations in NHWC and convolution weights in OHWI,
so the C test reads it with eng_ckpt_load. Regenerate with:

    make golden        (runs: /usr/bin/python3 tools/ref/golden.py tests/engine/data/golden.ckpt)
"""
import hashlib
import json
import struct
import sys

import torch
import torch.nn.functional as F

FORMAT_VERSION = 1
torch.manual_seed(1234)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

N, H, W = 2, 16, 16
REG = 4  # bins of the distribution head


def conv_w(o, i, k):
    return (torch.randn(o, i, k, k) * (2.0 / (i * k * k)) ** 0.5).requires_grad_()


P = {
    "conv1.w": conv_w(8, 3, 3),
    "bn1.g": (1 + 0.1 * torch.randn(8)).requires_grad_(), "bn1.b": (0.1 * torch.randn(8)).requires_grad_(),
    "conv2.w": conv_w(16, 8, 3),
    "bn2.g": (1 + 0.1 * torch.randn(16)).requires_grad_(), "bn2.b": (0.1 * torch.randn(16)).requires_grad_(),
    "conv3.w": conv_w(8, 4, 3), "conv3.b": (0.1 * torch.randn(8)).requires_grad_(),  # groups=2
    "conv4.w": conv_w(16, 24, 1), "conv4.b": (0.1 * torch.randn(16)).requires_grad_(),
    "conv5.w": conv_w(4 * REG + 2, 56, 1), "conv5.b": (0.1 * torch.randn(4 * REG + 2)).requires_grad_(),
}
BN = {"bn1": (torch.zeros(8), torch.ones(8)), "bn2": (torch.zeros(16), torch.ones(16))}
x = torch.randn(N, 3, H, W)
t_dist = torch.softmax(torch.randn(N, 4, REG, H, W) * 2, dim=2)  # target distributions
t_cls = torch.rand(N, 2, H, W)                                   # soft class targets


def forward(p, keep):
    def bn(z, name):
        rm, rv = BN[name]
        return F.batch_norm(z, rm, rv, p[name + ".g"], p[name + ".b"], training=True, momentum=0.03, eps=1e-3)

    a1 = F.silu(bn(F.conv2d(x, p["conv1.w"], padding=1), "bn1"))
    a2 = F.silu(bn(F.conv2d(a1, p["conv2.w"], stride=2, padding=1), "bn2"))
    s0, s1 = a2.split(8, dim=1)
    a3 = F.silu(F.conv2d(s1, p["conv3.w"], p["conv3.b"], padding=1, groups=2)) + s1
    c = torch.cat([s0, s1, a3], dim=1)
    a4 = F.conv2d(c, p["conv4.w"], p["conv4.b"])
    p1 = F.max_pool2d(a4, 5, 1, 2)
    p2 = F.max_pool2d(p1, 5, 1, 2)
    up = F.interpolate(torch.cat([a4, p1, p2], dim=1), scale_factor=2, mode="nearest")
    out = F.conv2d(torch.cat([up, a1], dim=1), p["conv5.w"], p["conv5.b"])
    dist = torch.softmax(out[:, : 4 * REG].reshape(N, 4, REG, H, W), dim=2)
    l_dfl = -(t_dist * torch.log(dist)).sum() / (N * H * W)
    l_cls = F.binary_cross_entropy_with_logits(out[:, 4 * REG:], t_cls, reduction="sum") / (N * H * W)
    if keep is not None:
        keep.update(out=out, a1=a1, a2=a2, c=c, a4=a4, c2=torch.cat([a4, p1, p2], dim=1), c3=torch.cat([up, a1], dim=1))
    return l_dfl + l_cls


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t.detach().contiguous()


def ohwi(t):
    return t.detach().permute(0, 2, 3, 1).contiguous()


tensors = []


def add(name, t):
    # clone: detach() shares storage, and the optimizer changes the weights in place
    tensors.append((name, t.detach().clone().contiguous().float()))


def add_params(prefix, p):
    for k, v in p.items():
        add(prefix + k, ohwi(v) if v.dim() == 4 else v)


add("input", nhwc(x))
add("target.dist", t_dist.permute(0, 3, 4, 1, 2).contiguous())  # N H W 4 REG
add("target.cls", nhwc(t_cls))
add_params("w0.", P)
keep = {}
loss = forward(P, keep)
loss.backward()
add("output", nhwc(keep["out"]))
for k in ("a1", "a2", "c", "a4", "c2", "c3"):  # intermediates: where a mismatch starts
    add("act." + k, nhwc(keep[k]))
add("loss", torch.tensor([loss.item()]))
for k, v in P.items():
    add("grad." + k, ohwi(v.grad) if v.dim() == 4 else v.grad)

# 10 SGD steps from the same start (the running statistics go on from where
# the first forward left them, as they would in training).
opt = torch.optim.SGD([{"params": [P[k] for k in P if k.startswith("conv") and k.endswith(".w")], "weight_decay": 5e-4},
                       {"params": [P[k] for k in P if not (k.startswith("conv") and k.endswith(".w"))], "weight_decay": 0}],
                      lr=0.01, momentum=0.9, nesterov=True)
losses = []
for step in range(10):
    opt.zero_grad()
    l = forward(P, None)
    l.backward()
    opt.step()
    losses.append(l.item())
add("steps.loss", torch.tensor(losses))
add_params("w10.", P)
for k, (rm, rv) in BN.items():
    add("w10.%s.rmean" % k, rm)
    add("w10.%s.rvar" % k, rv)

meta = json.dumps({"generator": "tools/ref/golden.py", "format_version": FORMAT_VERSION, "torch": torch.__version__,
                   "note": "first forward updates the running stats once before the 10 steps"}, sort_keys=True)
body = bytearray(b"LUPECKPT")
body += struct.pack("<IIQQ", 1, 0, len(tensors), len(meta)) + meta.encode()
for name, t in tensors:
    nb = name.encode()
    body += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", 0, t.dim())
    body += struct.pack("<%dQ" % t.dim(), *t.shape)
    body += t.numpy().astype("<f4").tobytes()
body += hashlib.sha256(body).digest()
with open(sys.argv[1], "wb") as f:
    f.write(body)
print("wrote %s: %d tensors, loss %.6f, loss after 10 steps %.6f" % (sys.argv[1], len(tensors), loss.item(), losses[-1]))
