/**
 * The page's payload carries series and queries under compact field names; the TypeScript code
 * (src/report/data.ts) uses readable ones. The names are mapped here, in one table each way:
 * Node compacts when it writes the payload into the page (src/report/index.ts), and the page
 * expands it on load with the same function, inlined as text (Function.prototype.toString), so
 * renameFields is self-contained.
 */

/** Series fields: readable -> compact. */
export const SERIES_FIELDS: Readonly<Record<string, string>> = {
  kind: 't',
  variant: 'v',
  split: 's',
  key: 'k',
  firstEpoch: 'e0',
  xIndex: 'xi',
  mean: 'm',
  min: 'lo',
  max: 'hi',
  seeds: 'n',
};

/** Query fields: readable -> compact. */
export const QUERY_FIELDS: Readonly<Record<string, string>> = { kind: 't', keys: 'k', splits: 's', from: 'a', to: 'b', label: 'lab' };

/** The inverse of a field table (compact -> readable). */
export function inverse(names: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(names).map(([a, b]) => [b, a]));
}

/** Copies of the objects with their fields renamed by `names` (fields not in it keep their name). */
export function renameFields(list: readonly object[], names: Readonly<Record<string, string>>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const o of list) {
    const r: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) r[Object.prototype.hasOwnProperty.call(names, k) ? names[k]! : k] = v;
    out.push(r);
  }
  return out;
}
