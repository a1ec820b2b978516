import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertInlineScriptSafe } from './escape.js';

/** The browser bundles the interactive page inlines (read once per process). */
export interface Bundles {
  vega: string;
  vegaEmbed: string;
  vegaVersion: string;
  vegaEmbedVersion: string;
}

let cached: Bundles | undefined;

function findPackageDir(name: string): string {
  const starts = [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    let dir = resolve(start);
    for (;;) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new Error(`report: cannot find the package ${name} in any node_modules above ${starts.join(' or ')}`);
}

function readBundle(pkg: string, file: string): { code: string; version: string } {
  const dir = findPackageDir(pkg);
  const path = join(dir, file);
  if (!existsSync(path)) throw new Error(`report: ${pkg} has no ${file} (looked at ${path})`);
  let code = readFileSync(path, 'utf8');
  // The HTML parser turns CR LF into LF, which would change the hash the CSP checks; source maps would
  // point at files the page cannot (and must not) load.
  code = code.replace(/\r\n?/g, '\n').replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, '\n');
  assertInlineScriptSafe(code, `${pkg}/${file}`);
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? '?';
  return { code, version };
}

export function loadBundles(): Bundles {
  if (!cached) {
    const vega = readBundle('vega', 'build/vega.min.js');
    const embed = readBundle('vega-embed', 'build/vega-embed.min.js');
    cached = { vega: vega.code, vegaEmbed: embed.code, vegaVersion: vega.version, vegaEmbedVersion: embed.version };
  }
  return cached;
}
