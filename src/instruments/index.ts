import { InputError } from '../util/errors.js';
import { deadUnits } from './dead-units.js';
import { centerDrift } from './center-drift.js';
import { centerSplit } from './center-split.js';
import { featureNorms } from './feature-norms.js';
import { gatedShare } from './gated-share.js';
import { memorisation } from './memorisation.js';
import { paramStats } from './param-stats.js';
import type { Instrument, InstrumentFactory } from './types.js';

export type { Instrument, BatchView, Need, Values } from './types.js';

/** Every instrument, by name. The trainer never names any of them. */
export const INSTRUMENTS: Record<string, InstrumentFactory> = {
  'feature-norms': featureNorms,
  'center-split': centerSplit,
  'center-drift': centerDrift,
  'dead-units': deadUnits,
  'param-stats': paramStats,
  memorisation,
  'gated-share': gatedShare,
};

/** Cheap ones: they need only features, logits and centers read back. */
export const DEFAULT_INSTRUMENTS = ['feature-norms', 'center-split', 'center-drift', 'memorisation'];

export function makeInstruments(enable: 'default' | 'all' | 'none' | string[], where = 'instruments.enable'): Instrument[] {
  const names = enable === 'default' ? DEFAULT_INSTRUMENTS : enable === 'all' ? Object.keys(INSTRUMENTS) : enable === 'none' ? [] : enable;
  return names.map((n) => {
    const f = INSTRUMENTS[n];
    if (!f) throw new InputError(`unknown instrument '${n}' (known: ${Object.keys(INSTRUMENTS).join(', ')}, or default/all/none)`, undefined, where);
    return f();
  });
}
