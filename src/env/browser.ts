/**
 * Where a Chromium for the report's browser tests (and `doctor`) is: $SPIKEPROBE_CHROMIUM, then
 * the names people have on PATH, then the usual system paths. One rule for the tests, the test
 * gate (scripts/check-browser.mjs) and `spikeprobe doctor`.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const BROWSER_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];
export const BROWSER_PATHS = ['/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium', '/usr/bin/google-chrome'];
export const BROWSER_INSTALL = 'apt-get install -y chromium (as root; or npm run setup:browser), or point SPIKEPROBE_CHROMIUM at a Chromium or Chrome binary';

function executable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface BrowserFound {
  path?: string;
  /** How it was found ('SPIKEPROBE_CHROMIUM', 'PATH', 'system path'), or why none was. */
  how: string;
}

export function findChromium(env: NodeJS.ProcessEnv = process.env): BrowserFound {
  const set = env.SPIKEPROBE_CHROMIUM;
  if (set !== undefined && set !== '') {
    return executable(set) ? { path: set, how: 'SPIKEPROBE_CHROMIUM' } : { how: `SPIKEPROBE_CHROMIUM=${set} is not an executable file` };
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const n of BROWSER_NAMES) if (executable(join(dir, n))) return { path: join(dir, n), how: 'PATH' };
  }
  for (const p of BROWSER_PATHS) if (executable(p)) return { path: p, how: 'system path' };
  return { how: `no ${BROWSER_NAMES.join(' / ')} on PATH or at ${BROWSER_PATHS.join(', ')}` };
}
