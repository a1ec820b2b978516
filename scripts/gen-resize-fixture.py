"""Writes test/fixtures/resize.json: inputs and PyTorch's bilinear resize of them
(F.interpolate(mode='bilinear', align_corners=False, antialias=False)), stored NHWC.
Run with Debian's PyTorch 1.13: /usr/bin/python3 scripts/gen-resize-fixture.py"""
import json, os
import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []
for (n, c, h, w, oh, ow) in [(2, 2, 5, 7, 6, 11), (1, 1, 28, 28, 48, 48), (1, 1, 28, 28, 13, 13), (2, 3, 9, 9, 8, 8), (1, 1, 4, 4, 9, 3)]:
    x = torch.randn(n, c, h, w)
    y = F.interpolate(x, size=(oh, ow), mode='bilinear', align_corners=False)
    cases.append({
        'n': n, 'c': c, 'h': h, 'w': w, 'outH': oh, 'outW': ow,
        'x': x.permute(0, 2, 3, 1).reshape(-1).tolist(),
        'y': y.permute(0, 2, 3, 1).reshape(-1).tolist(),
    })
out = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'resize.json')
with open(out, 'w') as fh:
    json.dump({'torch': torch.__version__, 'cases': cases}, fh)
print('wrote', out, torch.__version__)
