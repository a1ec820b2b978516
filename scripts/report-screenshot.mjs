// The README's screenshot: the first screen (1400x900) of a report, opened in Chromium once its
// charts are drawn.
//   node scripts/report-screenshot.mjs reports/fer-demo.html docs/report-fer-demo.png
import { chromium } from 'playwright-core';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [html, png] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.SPIKEPROBE_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(pathToFileURL(resolve(html)).href);
  await page.waitForFunction(() => !document.querySelector('script') || document.body.hasAttribute('data-charts'), undefined, { timeout: 120_000 });
  await page.screenshot({ path: png });
  console.log(`${png}: first screen of ${html}, page height ${await page.evaluate(() => document.documentElement.scrollHeight)} px`);
} finally {
  await browser.close();
}
