#!/usr/bin/python3
"""PyTorch 1.13 reference for lupe's training-step benchmark (bench/engine.c).

Builds the same YOLOv8 network as lupe's det_build (Conv-BN-SiLU, C2f, SPPF,
PAN neck, decoupled head; Ultralytics' layer rules), channels-last, and
times one training step: forward, backward from fixed output gradients, and
an SGD (Nesterov) step. Used only as a yardstick, never by lupe itself.

usage: torch_step.py SCALE IMGSZ BATCH THREADS STEPS
prints: params=N step_ms=MEDIAN min_ms=MIN peak_rss_mb=M
"""
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "ref"))
from yolov8_modules import C2f, SPPF, Conv  # noqa: E402


class Net(nn.Module):
    def __init__(self, scale, nc):
        super().__init__()
        d, w = 0.33, (0.25 if scale == "n" else 0.5)
        ch = lambda c: int(math.ceil(min(c, 1024) * w / 8) * 8)
        rep = lambda n: max(round(n * d), 1)
        self.b = nn.ModuleList([Conv(3, ch(64), 3, 2), Conv(ch(64), ch(128), 3, 2), C2f(ch(128), ch(128), rep(3), True),
                                Conv(ch(128), ch(256), 3, 2), C2f(ch(256), ch(256), rep(6), True),
                                Conv(ch(256), ch(512), 3, 2), C2f(ch(512), ch(512), rep(6), True),
                                Conv(ch(512), ch(1024), 3, 2), C2f(ch(1024), ch(1024), rep(3), True),
                                SPPF(ch(1024), ch(1024))])
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.h12 = C2f(ch(1024) + ch(512), ch(512), rep(3), False)
        self.h15 = C2f(ch(512) + ch(256), ch(256), rep(3), False)
        self.h16 = Conv(ch(256), ch(256), 3, 2)
        self.h18 = C2f(ch(256) + ch(512), ch(512), rep(3), False)
        self.h19 = Conv(ch(512), ch(512), 3, 2)
        self.h21 = C2f(ch(512) + ch(1024), ch(1024), rep(3), False)
        c0 = ch(256)
        c2, c3 = max(16, c0 // 4, 64), max(c0, min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 64, 1))
                                 for x in (ch(256), ch(512), ch(1024)))
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1))
                                 for x in (ch(256), ch(512), ch(1024)))

    def forward(self, x):
        t = {}
        for i, m in enumerate(self.b):
            x = m(x)
            t[i] = x
        p12 = self.h12(torch.cat([self.up(t[9]), t[6]], 1))
        p15 = self.h15(torch.cat([self.up(p12), t[4]], 1))
        p18 = self.h18(torch.cat([self.h16(p15), p12], 1))
        p21 = self.h21(torch.cat([self.h19(p18), t[9]], 1))
        return [torch.cat([self.cv2[i](p), self.cv3[i](p)], 1) for i, p in enumerate((p15, p18, p21))]


def main():
    scale, imgsz, batch, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Net(scale, 1).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    x = torch.rand(batch, 3, imgsz, imgsz).to(memory_format=torch.channels_last)
    grads = None
    times = []
    for i in range(steps + 1):  # the first step warms up and is not counted
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        outs = net(x)
        if grads is None:
            grads = [torch.randn_like(o) * 1e-3 for o in outs]
        torch.autograd.backward(outs, grads)
        opt.step()
        if i:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    params = sum(p.numel() for p in net.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("params=%d step_ms=%.1f min_ms=%.1f peak_rss_mb=%.0f" % (params, times[len(times) // 2], times[0], rss))


main()
