#!/usr/bin/env node
// The test gate (npm test runs it first): the report tests need a Chromium. Where none is found this
// stops with one line saying what to install (exit 1); SPIKEPROBE_INSTALL_BROWSER=1 installs Debian's
// chromium first (root only). Same search as the tests: dist/env/browser.js (npm test builds first).
import { spawnSync } from 'node:child_process';
import { findChromium, BROWSER_INSTALL } from '../dist/env/browser.js';

let found = findChromium();
if (!found.path && process.env.SPIKEPROBE_INSTALL_BROWSER === '1') {
  const r = spawnSync('bash', [new URL('./setup-browser.sh', import.meta.url).pathname], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`spikeprobe tests: installing chromium failed (exit ${r.status}); install it yourself: ${BROWSER_INSTALL}\n`);
    process.exit(1);
  }
  found = findChromium();
}
if (!found.path) {
  process.stderr.write(`spikeprobe tests: the report tests need Chromium and none was found (${found.how}); install it: ${BROWSER_INSTALL}; or let npm test do it: SPIKEPROBE_INSTALL_BROWSER=1 npm test\n`);
  process.exit(1);
}
