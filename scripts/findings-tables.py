"""Markdown tables for FINDINGS.md from a suite's runs directory (spikeprobe report --json and the
runs' metrics.jsonl). Usage: python3 scripts/findings-tables.py runs/fer-like > tables.md"""
import json, os, subprocess, sys, statistics as st

root = sys.argv[1]
a = json.loads(subprocess.run(['node', 'dist/cli/main.js', 'report', root, '--json'], capture_output=True, text=True).stdout)

def t_ci(xs):
    n = len(xs)
    if n < 2: return (xs[0], xs[0]) if xs else (float('nan'),) * 2
    T = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}
    m, s = st.mean(xs), st.stdev(xs)
    h = T.get(n - 1, 2.0) * s / n ** 0.5
    return m - h, m + h

def f(x, d=2): return '-' if x is None else f'{x:.{d}f}'

print('| variant | decay | seeds | ratio over trend | 95% CI | verdict | shape (recovery) |')
print('|---|---|---|---|---|---|---|')
for r in a['results']:
    if r['split'] == 'train' and r['resolution'] == 'epoch' and r['n'] > 0:
        print(f"| {r['variant']} | {r['decayEpoch']} | {r['n']} | x{f(r['ratioMean'])} | {f(r['ci'][0])}-{f(r['ci'][1])} | {r['verdict']} | {(r.get('shape') or '-') + (' (' + str(round(100 * r['recoveryMean'])) + '%)' if r.get('recoveryMean') is not None and r['verdict']=='spike' else '')} |")
print()

# per-variant epoch means across seeds
runs = {}
for d in sorted(os.listdir(root)):
    p = os.path.join(root, d, 'manifest.json')
    if not os.path.exists(p): continue
    m = json.load(open(p))
    if m['status'] != 'done': continue
    recs = {}
    for line in open(os.path.join(root, d, 'metrics.jsonl')):
        r = json.loads(line)
        if r['kind'] == 'epoch': recs[(r['epoch'], r['split'])] = r
    runs.setdefault(m['variant'], []).append(recs)

def mean_at(v, e, split, key):
    xs = [rs[(e, split)][key] for rs in runs.get(v, []) if (e, split) in rs and key in rs[(e, split)]]
    return st.mean(xs) if xs else None

cols = [('center', 'CL'), ('center/clean', 'CL clean'), ('center/flipped', 'CL flipped'), ('cl_within', 'within'), ('cl_lag', 'lag'), ('acc/flipped', 'memorised'), ('acc', 'train acc'), ('feat_norm_mean', 'feature norm'), ('gated_share', 'gated share')]
print('| variant | epoch | ' + ' | '.join(c for _, c in cols) + ' | test acc |')
print('|---|---|' + '---|' * (len(cols) + 1))
for v in runs:
    for e in [9, 10, 12, 19, 20, 22, 29]:
        vals = [mean_at(v, e, 'train', k) for k, _ in cols]
        if all(x is None for x in vals): continue
        print(f'| {v} | {e} | ' + ' | '.join(f(x, 3) for x in vals) + f" | {f(mean_at(v, e, 'test', 'acc'), 3)} |")
print()
print('| fork vs its parent (3 epochs from the fork) | metric | seeds | parent | twin | parent - twin | 95% CI |')
print('|---|---|---|---|---|---|---|')
for fk in a.get('forks', []):
    for m in fk['metrics']:
        key = (m['split'], m['metric'])
        if key in [('train', 'center'), ('train', 'cl_within'), ('train', 'center/clean'), ('train', 'center/flipped'), ('train', 'acc/flipped'), ('train', 'feat_norm_mean'), ('test', 'acc')]:
            sets = ', '.join(f'{k}={json.dumps(v)}' for k, v in fk['set'].items())
            print(f"| {fk['fork']} ({sets} at {fk['at']}) | {m['split']} {m['metric']} | {m['diff']['n']} | {f(m['parentMean'], 3)} | {f(m['twinMean'], 3)} | {f(m['diff']['mean'], 3)} | {f(m['diff']['ci'][0], 3)}..{f(m['diff']['ci'][1], 3)} |")
print()
# final and best test accuracy per variant
print('| variant | seeds | final test acc (epoch 29) | best test acc | final train acc |')
print('|---|---|---|---|---|')
for v, rs in runs.items():
    fin = [r[(29, 'test')]['acc'] for r in rs if (29, 'test') in r]
    best = [max(r[(e, 'test')]['acc'] for e in range(30) if (e, 'test') in r) for r in rs]
    tr = [r[(29, 'train')]['acc'] for r in rs if (29, 'train') in r]
    if fin: print(f'| {v} | {len(rs)} | {f(st.mean(fin), 3)} ({f(min(fin), 3)}-{f(max(fin), 3)}) | {f(st.mean(best), 3)} | {f(st.mean(tr), 3)} |')
