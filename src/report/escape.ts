/**
 * Escaping for the report page. Every string that comes from a run (names, variants, config values,
 * explanation sentences) goes through one of these before it touches the HTML.
 */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escape text for an HTML text node or a quoted attribute value. */
export function escapeHtml(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value);
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!).replace(/[\u2028\u2029]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const JSON_SCRIPT_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/**
 * JSON text that is safe to place inside `<script type="application/json">…</script>`: `<`, `>`, `&`,
 * U+2028 and U+2029 are written as \uXXXX escapes. These characters can only occur inside JSON string
 * literals, where the escapes mean the same thing, so `JSON.parse` of the result gives back the value,
 * while `</script>`, `<!--` and `-->` can never appear in the text. Non-finite numbers become null.
 */
export function jsonForScript(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) return 'null';
  return json.replace(/[<>&\u2028\u2029]/g, (c) => JSON_SCRIPT_ESCAPES[c]!);
}

/** Check that a piece of JavaScript can be placed verbatim inside an inline <script> element. */
export function assertInlineScriptSafe(code: string, what: string): void {
  if (/<\/script|<!--|<script/i.test(code)) {
    throw new Error(`${what} contains a sequence (</script, <script or <!--) that cannot be inlined in a <script> element`);
  }
}
