#!/usr/bin/env python3
"""PyTorch reference for the training-speed bench (src/bench/train.ts).

The same model, batch and training step as spikeprobe's TensorFlow.js trainer:
  - a ResNet of BasicBlocks like src/model/resnet.ts: Conv2d(bias=False, padding=k//2),
    BatchNorm2d (eps 1e-5, momentum 0.1), ReLU or PReLU(1, 0.25), 1x1 conv + BN shortcut when the
    shape changes, 'imagenet' stem (7x7/2 + max-pool 3/2) or 'cifar' stem (3x3, stride 1 or 2),
    features = global average pool of the last block, logits = Linear(features);
  - loss = cross-entropy + lamb * center loss, the center loss with the seed's custom gradient
    (features: upstream * (x - c_y) / B; centers: sum_{y_i=j}(c_j - x_i) / (1 + n_j), not scaled
    by the upstream gradient nor by B);
  - SGD(momentum 0.9, weight_decay 5e-4) on the model, plain SGD(lr=alpha) on the centers;
  - per step the trainer reads back cross-entropy, center loss and the number correct (.item()).
Runs --steps steps on one fixed random batch (data loading is not timed) and prints one JSON line
with per-step wall times.

  python3 bench/torch_step.py --preset small --batch 128 --steps 6 --threads 1
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # src/config/presets.ts
    "tiny": dict(blocks=[1, 1], widths=[8, 16], stem="cifar", stem_stride=2),
    "small": dict(blocks=[1, 1, 1], widths=[16, 32, 64], stem="cifar", stem_stride=1),
    "seed": dict(blocks=[2, 2, 2, 2], widths=[64, 128, 256, 512], stem="imagenet", stem_stride=1),
    # src/bench/harness.ts FER_BENCH: the FER-like regime's ResNet18 layout at width 16, 48 px
    "fer": dict(blocks=[2, 2, 2, 2], widths=[16, 32, 64, 128], stem="imagenet", stem_stride=1, size=48),
}


def act(kind):
    return nn.PReLU(1, 0.25) if kind == "prelu" else nn.ReLU(inplace=False)


class BasicBlock(nn.Module):
    def __init__(self, cin, w, stride, kind):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, w, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.act1 = act(kind)
        self.conv2 = nn.Conv2d(w, w, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(w)
        self.downsample = None
        if stride != 1 or cin != w:
            self.downsample = nn.Sequential(nn.Conv2d(cin, w, 1, stride, 0, bias=False), nn.BatchNorm2d(w))
        self.act2 = act(kind)

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        o = self.act1(self.bn1(self.conv1(x)))
        o = self.bn2(self.conv2(o))
        return self.act2(o + idt)


class ResNet(nn.Module):
    def __init__(self, blocks, widths, stem, stem_stride, in_ch=1, num_classes=8, kind="relu"):
        super().__init__()
        w0 = widths[0]
        if stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(in_ch, w0, 7, 2, 3, bias=False), nn.BatchNorm2d(w0), act(kind), nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_ch, w0, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(w0), act(kind))
        layers = []
        cin = w0
        for si, (n, w) in enumerate(zip(blocks, widths)):
            for bi in range(n):
                layers.append(BasicBlock(cin, w, 2 if si > 0 and bi == 0 else 1, kind))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
        self.feat_dim = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        h = self.layers(self.stem(x))
        feat = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
        return feat, self.fc(feat)


class CenterLossFunc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feature, label, centers, batch_size):
        ctx.save_for_backward(feature, label, centers, batch_size)
        centers_batch = centers.index_select(0, label.long())
        return (feature - centers_batch).pow(2).sum() / 2.0 / batch_size

    @staticmethod
    def backward(ctx, grad_output):
        feature, label, centers, batch_size = ctx.saved_tensors
        centers_batch = centers.index_select(0, label.long())
        diff = centers_batch - feature
        counts = centers.new_ones(centers.size(0))
        ones = centers.new_ones(label.size(0))
        grad_centers = centers.new_zeros(centers.size())
        counts = counts.scatter_add_(0, label.long(), ones)
        grad_centers.scatter_add_(0, label.unsqueeze(1).expand(feature.size()).long(), diff)
        grad_centers = grad_centers / counts.view(-1, 1)
        return -grad_output * diff / batch_size, None, grad_centers, None


class CenterLoss(nn.Module):
    def __init__(self, num_classes, feat_dim, size_average=True):
        super().__init__()
        self.centers = nn.Parameter(torch.empty(num_classes, feat_dim))
        nn.init.kaiming_normal_(self.centers.t())
        self.size_average = size_average

    def forward(self, label, feat):
        b = feat.size(0)
        bs = feat.new_empty(1).fill_(b if self.size_average else 1)
        return CenterLossFunc.apply(feat.view(b, -1), label, self.centers, bs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=1, help="leading steps not reported")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--activation", default="relu", choices=["relu", "prelu"])
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    p = PRESETS[a.preset]
    model = ResNet(p["blocks"], p["widths"], p["stem"], p["stem_stride"], 1, a.classes, a.activation)
    model.train()
    center = CenterLoss(a.classes, model.feat_dim)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    opt_c = torch.optim.SGD(center.parameters(), lr=0.5)
    lamb = 0.01
    side = p.get("size", 28)
    x = torch.randn(a.batch, 1, side, side)
    y = torch.randint(0, a.classes, (a.batch,))

    times = []
    for _ in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        feat, logits = model(x)
        ce = F.cross_entropy(logits, y)
        cl = center(y, feat)
        loss = ce + lamb * cl
        opt.zero_grad()
        opt_c.zero_grad()
        loss.backward()
        opt.step()
        opt_c.step()
        correct = (logits.argmax(1) == y).sum()
        _ = (ce.item(), cl.item(), correct.item())
        times.append((time.perf_counter() - t0) * 1000)
    step_ms = times[a.warmup:]
    s = sorted(step_ms)
    med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "preset": a.preset,
        "batch": a.batch,
        "activation": a.activation,
        "steps": len(step_ms),
        "step_ms": [round(t, 3) for t in step_ms],
        "median_ms": round(med, 3),
        "img_per_s": round(a.batch * 1000 / med, 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
