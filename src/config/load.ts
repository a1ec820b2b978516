import { existsSync, readFileSync } from 'node:fs';
import { parseDocument, isMap, isSeq, type Document, type Node } from 'yaml';
import type { ZodError, ZodType } from 'zod';
import { InputError } from '../util/errors.js';
import { ConfigSchema, type Config } from './schema.js';
import { PRESETS, deepMerge, type PresetName } from './presets.js';

/** Read and parse a YAML (or JSON) file; syntax errors become InputError with file and line. */
export function readYaml(path: string): { value: unknown; doc: Document } {
  if (!existsSync(path)) throw new InputError('file not found', path);
  const text = readFileSync(path, 'utf8');
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? text.slice(0, e.pos[0]).split('\n').length;
    throw new InputError(`malformed YAML: ${e.message.split('\n')[0]}`, line ? `${path}:${line}` : path);
  }
  return { value: doc.toJS(), doc };
}

/** 1-based line of the node at `path` in the YAML document (or of its nearest existing parent). */
export function lineOf(doc: Document | undefined, path: (string | number)[]): number | undefined {
  if (!doc) return undefined;
  let node: Node | null | undefined = doc.contents as Node | null;
  let best: Node | null | undefined = node;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === String(key));
      if (!pair) break;
      best = (pair.key as Node) ?? best;
      node = pair.value as Node | null;
      if (node) best = node;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key] as Node | null;
      if (node) best = node;
    } else break;
  }
  const range = best?.range;
  if (!range) return undefined;
  return lineFromOffset(doc, range[0]);
}

function lineFromOffset(doc: Document, offset: number): number {
  const src = (doc as Document & { __source?: string }).__source;
  if (src === undefined) return 0;
  let line = 1;
  for (let i = 0; i < offset && i < src.length; i++) if (src.charCodeAt(i) === 10) line++;
  return line;
}

/** Parse a YAML file keeping its source so that lines can be named in errors. */
export function readYamlWithSource(path: string): { value: unknown; doc: Document } {
  const r = readYaml(path);
  (r.doc as Document & { __source?: string }).__source = readFileSync(path, 'utf8');
  return r;
}

/** Turn the first zod issue into a one-line InputError naming file, line and field. */
export function zodToInputError(err: ZodError, file: string, doc?: Document, prefix: (string | number)[] = []): InputError {
  const issue = err.issues[0]!;
  const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
  let field = path.join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    field = [...path, keys[0]].join('.');
    message = `unknown key '${keys[0]}'${keys.length > 1 ? ` (and ${keys.slice(1).join(', ')})` : ''}`;
    path.push(keys[0]!);
  } else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    message = 'is required';
  }
  const line = lineOf(doc, path);
  return new InputError(message, line ? `${file}:${line}` : file, field || undefined);
}

export function parseWith<T>(schema: ZodType<T>, value: unknown, file: string, doc?: Document, prefix: (string | number)[] = []): T {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToInputError(r.error, file, doc, prefix);
  return r.data;
}

/** Apply a preset under a raw config object (the config's own keys win). */
export function withPreset(raw: Record<string, unknown>, preset?: PresetName): Record<string, unknown> {
  if (!preset) return raw;
  const p = PRESETS[preset];
  if (!p) throw new InputError(`unknown preset '${String(preset)}' (tiny, small, seed)`, undefined, '--preset');
  return deepMerge(presetFor(p as Record<string, unknown>, raw), raw);
}

/** The preset without keys the config replaces: its train_per_class where the config gives train_counts. */
function presetFor(p: Record<string, unknown>, raw: Record<string, unknown>): Record<string, unknown> {
  const data = raw.data as Record<string, unknown> | undefined;
  const pd = p.data as Record<string, unknown> | undefined;
  if (!data || data.train_counts === undefined || !pd) return p;
  const { train_per_class: _dropped, ...rest } = pd;
  return { ...p, data: rest };
}

export interface LoadOptions {
  preset?: PresetName;
  overrides?: Record<string, unknown>;
}

/** Load a config file in the seed's format (plus optional keys), apply a preset and overrides, validate. */
export function loadConfig(path: string, opts: LoadOptions = {}): Config {
  const { value, doc } = readYamlWithSource(path);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError('expected a mapping of keys (lr, momentum, weight_decay, alpha, lamb, epochs, ...)', path);
  }
  let raw = withPreset(value as Record<string, unknown>, opts.preset);
  if (opts.overrides) raw = deepMerge(raw, opts.overrides);
  return parseWith(ConfigSchema, raw, path, doc);
}

/** Validate an in-memory config (library use). */
export function resolveConfig(raw: Record<string, unknown>, preset?: PresetName, where = 'config'): Config {
  return parseWith(ConfigSchema, withPreset(raw, preset), where);
}
