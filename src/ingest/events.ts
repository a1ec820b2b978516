/**
 * TensorBoard event files (`*tfevents*`): TFRecord-framed `Event` protos (tensorflow
 * event.proto / summary.proto / tensor.proto). What is read of them: scalars, in both encodings
 * TensorBoard accepts:
 *  - `Summary.Value.simple_value` (float; PyTorch SummaryWriter, tensorboardX, CatBoost, TF1);
 *  - `Summary.Value.tensor` (TF2 tf.summary.scalar, Keras): a one-element DT_FLOAT / DT_DOUBLE
 *    tensor in float_val, double_val or tensor_content, for a tag whose metadata names the plugin
 *    "scalars" (or data class SCALAR). Writers put the metadata on a tag's first value only, so a
 *    tag keeps the plugin it was first given, across the files of a run.
 * The file_version event's SourceMetadata.writer is kept (spikeprobe's own export names itself).
 * Everything else (file_version, graph_def, images, histograms, audio, run metadata, session logs,
 * deprecated fields, tensors of other plugins) is skipped undecoded.
 *
 * A run's files are read in name order (TensorBoard's order: the names start with a timestamp).
 * When a tag's step goes back (a restarted run writing into the same folder), the points at and
 * after that step are dropped and the new ones kept, as TensorBoard's orphaned-data purge does.
 */
import { InputError } from '../util/errors.js';
import {
  WireError,
  fieldDouble,
  fieldFloat,
  fieldInt64,
  fieldString,
  fields,
  repeatedFloats,
  MessageWriter,
  WIRE_I32,
  WIRE_VARINT,
} from './protowire.js';
import { frameRecord, readRecords } from './tfrecord.js';

export interface EventPoint {
  step: number;
  wall: number;
  value: number;
}

/** Scalars of one run by tag, in the order they were logged (steps increasing per tag). */
export type TagSeries = Map<string, EventPoint[]>;

const DT_FLOAT = 1;
const DT_DOUBLE = 2;
const DATA_CLASS_SCALAR = 1;

/** State carried across the files of one run. */
export interface EventReadState {
  /** Tag -> plugin name ('' when its first value had no plugin). */
  plugin: Map<string, string>;
  /** Records read, and records skipped as not scalars. */
  records: number;
  skipped: number;
  /** SourceMetadata.writer of the file_version event, where a writer names itself. */
  writer?: string;
}

export function newEventState(): EventReadState {
  return { plugin: new Map(), records: 0, skipped: 0 };
}

function tensorScalar(buf: Uint8Array): number | undefined {
  let dtype = 0;
  let elements = 1;
  const vals: number[] = [];
  let content: Uint8Array | undefined;
  for (const f of fields(buf)) {
    if (f.no === 1 && f.wire === WIRE_VARINT) dtype = f.num;
    else if (f.no === 2 && f.bytes) {
      for (const d of fields(f.bytes)) {
        if (d.no === 2 && d.bytes) {
          for (const s of fields(d.bytes)) if (s.no === 1 && s.wire === WIRE_VARINT) elements *= fieldInt64(s);
        }
      }
    } else if (f.no === 4 && f.bytes) content = f.bytes;
    else if (f.no === 5 && dtype !== DT_DOUBLE) repeatedFloats(buf, f, 4, vals);
    else if (f.no === 6) repeatedFloats(buf, f, 8, vals);
  }
  if (elements !== 1) return undefined;
  if (dtype === DT_FLOAT) {
    if (content && content.length === 4) return new DataView(content.buffer, content.byteOffset, 4).getFloat32(0, true);
    return vals.length >= 1 ? vals[0] : undefined;
  }
  if (dtype === DT_DOUBLE) {
    if (content && content.length === 8) return new DataView(content.buffer, content.byteOffset, 8).getFloat64(0, true);
    return vals.length >= 1 ? vals[0] : undefined;
  }
  return undefined;
}

function metadataPlugin(buf: Uint8Array): string {
  let plugin = '';
  let dataClass = 0;
  for (const f of fields(buf)) {
    if (f.no === 1 && f.bytes) {
      for (const p of fields(f.bytes)) if (p.no === 1 && p.bytes) plugin = fieldString(p);
    } else if (f.no === 4 && f.wire === WIRE_VARINT) dataClass = f.num;
  }
  return plugin === '' && dataClass === DATA_CLASS_SCALAR ? 'scalars' : plugin;
}

function addPoint(out: TagSeries, tag: string, p: EventPoint): void {
  let list = out.get(tag);
  if (!list) out.set(tag, (list = []));
  if (list.length > 0 && p.step <= list[list.length - 1]!.step) {
    let k = list.length;
    while (k > 0 && list[k - 1]!.step >= p.step) k--;
    list.length = k;
  }
  list.push(p);
}

/** Decode one Event record into `out` (scalars only). */
export function decodeEvent(data: Uint8Array, state: EventReadState, out: TagSeries): void {
  let wall = 0;
  let step = 0;
  let summary: Uint8Array | undefined;
  for (const f of fields(data)) {
    if (f.no === 1) wall = fieldDouble(data, f);
    else if (f.no === 2) step = fieldInt64(f);
    else if (f.no === 5 && f.bytes) summary = f.bytes;
    else if (f.no === 10 && f.bytes) {
      for (const w of fields(f.bytes)) if (w.no === 1 && w.bytes) state.writer = fieldString(w);
    }
  }
  if (!summary) {
    state.skipped++;
    return;
  }
  for (const v of fields(summary)) {
    if (v.no !== 1 || !v.bytes) continue;
    const vb = v.bytes;
    let tag = '';
    let nodeName = '';
    let simple: number | undefined;
    let tensor: Uint8Array | undefined;
    let plugin: string | undefined;
    for (const f of fields(vb)) {
      if (f.no === 1) tag = fieldString(f);
      else if (f.no === 7) nodeName = fieldString(f);
      else if (f.no === 2 && f.wire === WIRE_I32) simple = fieldFloat(vb, f);
      else if (f.no === 8 && f.bytes) tensor = f.bytes;
      else if (f.no === 9 && f.bytes) plugin = metadataPlugin(f.bytes);
    }
    if (tag === '') tag = nodeName;
    if (tag === '') continue;
    if (plugin !== undefined && !state.plugin.has(tag)) state.plugin.set(tag, plugin);
    let value: number | undefined;
    if (simple !== undefined) value = simple;
    else if (tensor && (plugin ?? state.plugin.get(tag)) === 'scalars') value = tensorScalar(tensor);
    if (value === undefined || !Number.isFinite(value)) continue;
    if (!Number.isSafeInteger(step) || step < 0) continue;
    addPoint(out, tag, { step, wall, value });
  }
}

/**
 * Read the scalars of a run's event files (in the order given) into one TagSeries. A torn last
 * record is reported through onWarn; a corrupt record or a record that is not an Event is an
 * InputError naming the file and the byte offset.
 */
export function readEventFiles(files: readonly string[], onWarn: (msg: string) => void = () => {}, state: EventReadState = newEventState()): TagSeries {
  const out: TagSeries = new Map();
  for (const file of files) {
    const records = readRecords(file, (offset, size) =>
      onWarn(`${file}: torn last record at byte ${offset} (file ends at ${size}; a writer still running?), skipped`),
    );
    for (const r of records) {
      state.records++;
      try {
        decodeEvent(r.data, state, out);
      } catch (e) {
        if (e instanceof WireError) throw new InputError(`record at byte ${r.offset} is not a valid Event: ${e.message}`, file);
        throw e;
      }
    }
  }
  return out;
}

/** The writer name `spikeprobe export` puts in SourceMetadata: its tags are exactly `<split>/<store key>`. */
export const SPIKEPROBE_WRITER = 'spikeprobe';

/** Event writer for `spikeprobe export`: scalars as simple_value, as PyTorch's SummaryWriter writes them. */
export function fileVersionEvent(wall: number): Uint8Array {
  return frameRecord(
    new MessageWriter().double(1, wall).string(3, 'brain.Event:2').message(10, new MessageWriter().string(1, SPIKEPROBE_WRITER)).finish(),
  );
}

export function scalarEvent(wall: number, step: number, values: readonly [tag: string, value: number][]): Uint8Array {
  const summary = new MessageWriter();
  for (const [tag, value] of values) summary.message(1, new MessageWriter().string(1, tag).float(2, value));
  return frameRecord(new MessageWriter().double(1, wall).uint(2, step).message(5, summary).finish());
}
