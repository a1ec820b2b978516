/**
 * Test-only fault injection. SPIKEPROBE_FAULT="site:n[,site:n...]": the n-th time this process
 * passes `site` (inside a durable write: after part of the bytes are out), it kills itself with
 * SIGKILL there, as a crash or a power cut would. Unset (always, outside the fault tests): a no-op.
 */
export const FAULT_SITES = ['metrics-append', 'checkpoint-write', 'checkpoint-rename', 'manifest-write', 'epoch-commit'] as const;
export type FaultSite = (typeof FAULT_SITES)[number];

let plan: Map<string, number> | undefined;
const hits = new Map<string, number>();

function load(): Map<string, number> {
  plan = new Map();
  for (const part of (process.env.SPIKEPROBE_FAULT ?? '').split(',').filter(Boolean)) {
    const [site, n] = part.split(':');
    if (site && n && Number.isInteger(Number(n))) plan.set(site, Number(n));
  }
  return plan;
}

export function faultPoint(site: FaultSite): void {
  const p = plan ?? load();
  if (p.size === 0) return;
  const n = (hits.get(site) ?? 0) + 1;
  hits.set(site, n);
  if (p.get(site) === n) process.kill(process.pid, 'SIGKILL');
}
