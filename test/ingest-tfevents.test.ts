/**
 * TensorBoard event files: the reader against files from two independent writers (Python's
 * protobuf with TensorFlow's schema: scripts/gen-tfevents.py; CatBoost's C++ writer), framing
 * errors, streaming within a memory bound, per-step series and runs grouped as variants.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, statSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputError } from './helpers.js';
import { describe, expect, it } from 'vitest';
import { frameRecord, ingestPaths, readEventFiles, readRecords } from '../src/ingest/index.js';
import { crc32c } from '../src/ingest/crc32c.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..');
const TFE = path.join(HERE, 'fixtures', 'tfevents');
const EXPECTED = JSON.parse(readFileSync(path.join(TFE, 'expected.json'), 'utf8')) as Record<string, Record<string, [number, number][]>>;
/**
 * A catboost_info folder written by CatBoost's C++ writer (learn/events.out.tfevents and
 * learn_error.tsv), from github.com/1587causalai/causal-sklearn at 521dfe488701f82668da94490ab43dbbb979b5f5
 * (Apache-2.0: its LICENSE and SOURCE lie beside it). SPIKEPROBE_CATBOOST_INFO points at another.
 */
const CATBOOST = process.env.SPIKEPROBE_CATBOOST_INFO ?? path.join(ROOT, 'test', 'fixtures', 'tfevents', 'catboost-causal-sklearn', 'catboost_info');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

const eventFiles = (dir: string) => readdirSync(dir).filter((f) => f.includes('tfevents')).map((f) => path.join(dir, f));
const tmp = () => mkdtempSync(path.join(tmpdir(), 'sp-tfe-'));

/** Byte offsets of a file's records, found by walking the length fields (no CRC checks). */
function recordOffsets(file: string): number[] {
  const b = readFileSync(file);
  const out: number[] = [];
  for (let o = 0; o < b.length; ) {
    out.push(o);
    o += 12 + Number(b.readBigUInt64LE(o)) + 4;
  }
  return out;
}

describe('event files from Python protobuf (TensorFlow schema)', () => {
  it('every scalar of both encodings, and nothing else, read as written', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual([
      'logs/prelu/s1',
      'logs/prelu/s2',
      'logs/relu/s1',
      'logs/relu/s1/1700000100.5',
      'logs/relu/s2',
      'steps',
      'tf2/train',
      'tf2/validation',
    ]);
    for (const [run, tags] of Object.entries(EXPECTED)) {
      const got = readEventFiles(eventFiles(path.join(TFE, run)));
      // histograms, images, graph_def, session_log, log_message, image/histogram tensors and a tensor
      // without the scalars plugin are not series
      expect([...got.keys()].sort(), run).toEqual(Object.keys(tags).sort());
      for (const [tag, pts] of Object.entries(tags)) {
        expect(got.get(tag)!.map((p) => [p.step, p.value]), `${run} ${tag}`).toEqual(pts);
      }
    }
  });

  it('CRC-32C check value and framing', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const file = eventFiles(path.join(TFE, 'logs/relu/s1'))[0]!;
    const bytes = readFileSync(file);
    // Re-framing each record's data with frameRecord gives back the Python writer's bytes exactly.
    const parts = [...readRecords(file)].map((r) => Buffer.from(frameRecord(r.data)));
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
  });
});

describe('event files from CatBoost (C++ writer)', () => {
  const learn = path.join(CATBOOST, 'learn', 'events.out.tfevents');
  const have = existsSync(learn);
  if (!have) console.warn(`notice: CatBoost event file not found at ${learn}; set SPIKEPROBE_CATBOOST_INFO to a catboost_info folder (skipped)`);
  it.skipIf(!have)('values equal its learn_error.tsv (float32) at every iteration', () => {
    const rows = readFileSync(path.join(CATBOOST, 'learn_error.tsv'), 'utf8').trim().split('\n');
    const cols = rows[0]!.split('\t');
    const got = readEventFiles([learn]);
    expect([...got.keys()].sort()).toEqual(cols.slice(1).sort());
    for (let c = 1; c < cols.length; c++) {
      const want = rows.slice(1).map((l) => {
        const f = l.split('\t');
        return [Number(f[0]), Math.fround(Number(f[c]))];
      });
      expect(got.get(cols[c]!)!.map((p) => [p.step, p.value])).toEqual(want);
    }
    // Read as a log directory: CatBoost's learn/ folder is the train split of run catboost_info.
    const e = inputError(() => ingestPaths([CATBOOST]));
    expect(e.message).toContain(`no center-loss series (found: ${cols.slice(1).join(', ')})`);
    const { runs } = ingestPaths([CATBOOST], { metric: cols[1]!, decayEpochs: [50] });
    expect(runs[0]!.manifest.name).toBe('catboost_info');
    expect(runs[0]!.records.filter((r) => r.split === 'train' && typeof r.center === 'number')).toHaveLength(rows.length - 1);
  });
});

describe('framing errors', () => {
  const src = eventFiles(path.join(TFE, 'logs/relu/s1'))[0]!;

  it('a torn last record is skipped with one warning', () => {
    const dir = path.join(tmp(), 'run');
    mkdirSync(dir);
    const torn = path.join(dir, path.basename(src));
    const full = readFileSync(src);
    const offs = recordOffsets(src);
    writeFileSync(torn, full.subarray(0, full.length - 5));
    const warnings: string[] = [];
    const got = readEventFiles([torn], (m) => warnings.push(m));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`torn last record at byte ${offs[offs.length - 1]}`);
    const all = readEventFiles([src]);
    // the last record holds the last lr point only
    expect(got.get('lr')!.length).toBe(all.get('lr')!.length - 1);
    expect(got.get('L_center/train')).toEqual(all.get('L_center/train'));
    // A header cut short is torn too.
    writeFileSync(torn, full.subarray(0, offs[offs.length - 1]! + 7));
    warnings.length = 0;
    readEventFiles([torn], (m) => warnings.push(m));
    expect(warnings).toHaveLength(1);
    // The CLI: exit 0, the warning one line on stderr.
    writeFileSync(torn, full.subarray(0, full.length - 5));
    const r = cli(['analyze', dir, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^spikeprobe: warning: .*torn last record at byte \d+/);
  });

  it('a corrupt record elsewhere is an error naming the file and byte offset; exit 2, one line', () => {
    const dir = path.join(tmp(), 'run');
    mkdirSync(dir);
    const bad = path.join(dir, path.basename(src));
    const offs = recordOffsets(src);
    const k = Math.floor(offs.length / 2);
    const bytes = readFileSync(src);
    bytes[offs[k]! + 12 + 3]! ^= 0x40; // inside record k's data
    writeFileSync(bad, bytes);
    let e = inputError(() => readEventFiles([bad]));
    expect(e.message).toBe(`${bad}: corrupt record at byte ${offs[k]}: data checksum mismatch`);
    const r = cli(['analyze', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`spikeprobe: ${bad}: corrupt record at byte ${offs[k]}: data checksum mismatch\n`);
    // A damaged length field.
    const b2 = readFileSync(src);
    b2[offs[2]! + 1]! ^= 0x01;
    writeFileSync(bad, b2);
    e = inputError(() => readEventFiles([bad]));
    expect(e.message).toBe(`${bad}: corrupt record at byte ${offs[2]}: length checksum mismatch`);
    // Valid framing around bytes that are not an Event.
    const junk = Buffer.concat([readFileSync(src).subarray(0, offs[1]), Buffer.from(frameRecord(Uint8Array.from([0xff, 0xff, 0xff])))]);
    writeFileSync(bad, junk);
    e = inputError(() => readEventFiles([bad]));
    expect(e.message).toContain(`${bad}: record at byte ${offs[1]} is not a valid Event`);
  });
});

describe('a large log', () => {
  it('is streamed: a file far larger than the heap cap, read in bounded memory', () => {
    const dir = tmp();
    const file = path.join(dir, 'events.out.tfevents.big');
    // 240 records of 1 MiB (an image-sized payload in an unknown field) between scalar events.
    const fd = openSync(file, 'w');
    const blob = Buffer.alloc(1 << 20, 7);
    const payload = Buffer.concat([Buffer.from([0x22]), Buffer.from([0x80, 0x80, 0x40]), blob]); // field 4 (graph_def), length 2^20
    const scalar = (step: number, v: number) => {
      const tag = Buffer.from('center_loss');
      const val = Buffer.concat([Buffer.from([0x0a, tag.length]), tag, Buffer.from([0x15]), (() => { const b = Buffer.alloc(4); b.writeFloatLE(v); return b; })()]);
      const summary = Buffer.concat([Buffer.from([0x0a, val.length]), val]);
      return Buffer.concat([Buffer.from([0x10, step]), Buffer.from([0x2a, summary.length]), summary]);
    };
    for (let i = 0; i < 240; i++) {
      writeSync(fd, frameRecord(payload));
      writeSync(fd, frameRecord(scalar(i % 120, i)));
    }
    closeSync(fd);
    const size = statSync(file).size;
    expect(size).toBeGreaterThan(240 * 2 ** 20);
    const code = `
      const { readEventFiles } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'ingest', 'index.js'))});
      const t0 = Date.now();
      const pts = readEventFiles([${JSON.stringify(file)}]).get('center_loss');
      console.log(JSON.stringify({ n: pts.length, last: pts[pts.length - 1], peakRss: process.resourceUsage().maxRSS * 1024, ms: Date.now() - t0 }));
    `;
    const r = spawnSync(process.execPath, ['--max-old-space-size=48', '--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    // steps 0..119 twice: the second pass purges the first (a restarted run), as TensorBoard does
    expect(out.n).toBe(120);
    expect(out.last).toMatchObject({ step: 119, value: 239 });
    // The whole process stays far below the file's size: the reader holds one record at a time.
    expect(out.peakRss).toBeLessThan(size / 2);
    console.log(`streamed ${(size / 2 ** 20).toFixed(0)} MiB with --max-old-space-size=48: rss ${(out.peakRss / 2 ** 20).toFixed(0)} MiB, ${out.ms} ms`);
  });
});
