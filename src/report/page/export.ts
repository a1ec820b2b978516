/**
 * The page's "SVG" and "PNG" buttons, written once as TypeScript and inlined into the interactive
 * page as text (Function.prototype.toString, src/report/index.ts), so it is self-contained: no
 * imports at run time, nothing outside its body.
 *
 * A button names its figure (data-target): a chart drawn by vega (its View in `views`: toSVG and
 * toImageURL('png'), both rendered in the page) or an inline SVG figure (the forest plot: its markup,
 * and for PNG that markup drawn on a canvas). The file is handed over as a data: URL on a link with
 * a download name: nothing leaves the page and nothing is fetched, which the page's CSP (img-src
 * data: blob:, connect-src 'none') allows.
 */

/** The part of a vega View the buttons use. */
export interface ExportView {
  toSVG(scaleFactor?: number): Promise<string>;
  toImageURL(type: string, scaleFactor?: number): Promise<string>;
}

export function installExport(doc: Document, views: Record<string, ExportView>): void {
  const svgUrl = (svg: string): string => 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg);
  const save = (url: string, name: string): void => {
    const a = doc.createElement('a');
    a.href = url;
    a.download = name;
    a.style.display = 'none';
    doc.body.appendChild(a);
    a.click();
    a.remove();
  };
  const fail = (button: Element, err: unknown): void => {
    button.setAttribute('data-export-error', err instanceof Error ? err.message : String(err));
    console.warn('export failed', err);
  };
  doc.addEventListener('click', (ev) => {
    const target = ev.target as Element | null;
    const button = target && target.closest ? target.closest('button[data-export]') : null;
    if (!button) return;
    const format = button.getAttribute('data-export') === 'png' ? 'png' : 'svg';
    const id = button.getAttribute('data-target') || '';
    const name = (button.getAttribute('data-name') || id).replace(/[^A-Za-z0-9_.-]+/g, '_') + '.' + format;
    const view = views[id];
    if (view) {
      const p = format === 'svg' ? view.toSVG().then(svgUrl) : view.toImageURL('png', 2);
      p.then((url) => save(url, name)).catch((e: unknown) => fail(button, e));
      return;
    }
    const el = doc.getElementById(id);
    const svg = el ? el.querySelector('svg') : null;
    if (!svg) {
      fail(button, new Error('no figure ' + id));
      return;
    }
    const clone = svg.cloneNode(true) as SVGSVGElement;
    clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
    const text = new XMLSerializer().serializeToString(clone);
    if (format === 'svg') {
      save(svgUrl(text), name);
      return;
    }
    const img = new Image();
    img.onload = () => {
      const scale = 2;
      const w = svg.viewBox.baseVal && svg.viewBox.baseVal.width ? svg.viewBox.baseVal.width : svg.clientWidth;
      const h = svg.viewBox.baseVal && svg.viewBox.baseVal.height ? svg.viewBox.baseVal.height : svg.clientHeight;
      const canvas = doc.createElement('canvas');
      canvas.width = Math.ceil(w * scale);
      canvas.height = Math.ceil(h * scale);
      const ctx = canvas.getContext('2d');
      if (!ctx) {
        fail(button, new Error('no 2d canvas'));
        return;
      }
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      save(canvas.toDataURL('image/png'), name);
    };
    img.onerror = () => fail(button, new Error('the figure could not be drawn'));
    img.src = svgUrl(text);
  });
}
