"""Writes test/fixtures/label_smoothing.json: nn.CrossEntropyLoss(label_smoothing=eps) of
PyTorch 1.13 (mean reduction) and its gradient with respect to the logits, on random logits.
Run with Debian's PyTorch 1.13: /usr/bin/python3 scripts/gen-label-smoothing-golden.py"""
import json, os
import torch

torch.manual_seed(0)
cases = []
for (b, k, eps, scale) in [(6, 8, 0.1, 1.0), (5, 3, 0.3, 4.0), (4, 8, 0.0, 2.0), (7, 8, 0.2, 10.0)]:
    logits = (torch.randn(b, k) * scale).requires_grad_(True)
    labels = torch.randint(0, k, (b,))
    loss = torch.nn.CrossEntropyLoss(label_smoothing=eps)(logits, labels)
    loss.backward()
    cases.append({'b': b, 'k': k, 'eps': eps, 'logits': logits.detach().reshape(-1).tolist(),
                  'labels': labels.tolist(), 'loss': loss.item(), 'grad': logits.grad.reshape(-1).tolist()})
out = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'label_smoothing.json')
with open(out, 'w') as fh:
    json.dump({'torch': torch.__version__, 'cases': cases}, fh, indent=0)
print('wrote', out)
