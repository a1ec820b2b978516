/**
 * The page shell every report page shares: the Content-Security-Policy (only the page's own inline
 * scripts, by hash, or none; no connections, no external anything), the meta tags and the styles.
 */
import { escapeHtml as h } from './escape.js';

export function csp(scriptSrc: string): string {
  return [
    "default-src 'none'",
    `script-src ${scriptSrc}`,
    "style-src 'unsafe-inline'",
    'img-src data: blob:',
    "font-src 'none'",
    "connect-src 'none'",
    "media-src 'none'",
    "object-src 'none'",
    "frame-src 'none'",
    "worker-src 'none'",
    "manifest-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

/** The whole document around `body`; `scriptSrc` is the CSP's script-src ("'none'" for a page without scripts). */
export function pageShell(title: string, bodyClass: 'static' | 'interactive', body: string, scripts: string, scriptSrc: string, css: string): string {
  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<meta http-equiv="Content-Security-Policy" content="${csp(scriptSrc)}">\n` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    '<meta name="referrer" content="no-referrer">\n' +
    `<title>${h(title)}</title>\n<style>${css}</style>\n</head>\n` +
    `<body class="${bodyClass}">\n${body}\n${scripts}\n</body>\n</html>\n`
  );
}
