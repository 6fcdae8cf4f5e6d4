import { createHash } from 'node:crypto';

/**
 * The style and the one script of the HTML view. The script holds no data: it reads the JSON in
 * #lsc-data; the page's Content-Security-Policy lets only this script (by hash) run, and nothing
 * be fetched.
 */
export const PAGE_CSS = `
body { font: 13px/1.4 Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1600px; }
h1 { font-size: 20px; overflow-wrap: anywhere; } h2 { font-size: 15px; margin-top: 28px; border-bottom: 1px solid #ddd; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } .mono, code, pre { font-family: Menlo, Consolas, monospace; font-size: 12px; } .num { text-align: right; white-space: nowrap; }
td.mono, td.heat { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
.dim { display: inline-block; padding: 1px 6px; margin: 2px; border: 1px solid #ddd; border-radius: 3px; }
details { margin: 4px 0; } summary { cursor: pointer; overflow-wrap: anywhere; }
.off { display: none; }
#layer-strip { display: block; margin: 8px 0; }
#layer-strip .layer { fill: none; stroke: #666; pointer-events: all; }
#layer-strip .row-label { font-size: 13px; } #layer-strip .layer-num { font-size: 11px; }
#layer-strip .exit-label { font-size: 12px; fill: #b45f06; font-weight: bold; } #layer-strip .span-text { font-size: 11px; }
.picker { margin: 8px 0; } .picker select { font-size: 13px; }
.stages { margin: 0; padding-left: 16px; } #entries td:first-child { white-space: nowrap; }
details.kernel > summary { padding: 3px 6px; border: 1px solid #e4e4e4; border-radius: 3px; }
details.kernel .panel { padding: 4px 12px 8px; border-left: 3px solid #cfe2f3; margin: 4px 0 12px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 4px 0; } dt { color: #666; } dd { margin: 0; overflow-wrap: anywhere; }
pre.wgsl { background: #f7f7f7; border: 1px solid #e4e4e4; padding: 8px; max-height: 480px; overflow: auto; white-space: pre; }
.note { color: #666; } .family { color: #555; }
tr.kind th { background: #eef3f8; }
.bar { display: inline-block; height: 10px; background: #e06666; vertical-align: middle; }
`;

export const PAGE_SCRIPT = `(() => {
  'use strict';
  const data = JSON.parse(document.getElementById('lsc-data').textContent);
  const picker = document.getElementById('exit-picker');
  const showExit = () => {
    for (const el of document.querySelectorAll('[data-exit]')) el.classList.toggle('off', el.getAttribute('data-exit') !== picker.value);
  };
  picker.addEventListener('change', showExit);
  showExit();
  const openKernel = (id) => {
    const d = [...document.querySelectorAll('details.kernel')].find((x) => x.getAttribute('data-kernel') === id);
    if (!d) return;
    d.open = true;
    d.scrollIntoView({ block: 'start' });
  };
  document.addEventListener('click', (ev) => {
    const a = ev.target instanceof Element ? ev.target.closest('a.kernel-link') : null;
    if (!a) return;
    ev.preventDefault();
    openKernel(a.getAttribute('data-kernel'));
  });
  if (location.hash.startsWith('#kernel-')) openKernel(decodeURIComponent(location.hash.slice(8)));
  const prof = data.profile;
  const sel = document.getElementById('profile-entry');
  if (!prof || !sel) return;
  const fmt = (ms) => (ms >= 1 ? ms.toFixed(2) : ms.toFixed(3)) + ' ms';
  const heat = (f) => 'hsl(' + Math.round(50 - 50 * f) + ', 95%, ' + Math.round(92 - 30 * f) + '%)';
  const paint = () => {
    const e = prof.entries[Number(sel.value)];
    let max = 0;
    for (const k of Object.values(e.kernels)) max = Math.max(max, k.ms);
    for (const el of document.querySelectorAll('.heat[data-kernel]')) {
      const k = e.kernels[el.getAttribute('data-kernel')];
      el.style.background = k ? heat(max > 0 ? k.ms / max : 0) : '';
      if (k) el.setAttribute('data-ms', String(k.ms)); else el.removeAttribute('data-ms');
    }
    for (const el of document.querySelectorAll('.kernel-time[data-kernel]')) {
      const k = e.kernels[el.getAttribute('data-kernel')];
      el.textContent = k ? '· ' + fmt(k.ms) + ' in ' + e.entry + ' (' + (e.totalMs > 0 ? (100 * k.ms / e.totalMs).toFixed(1) : '0') + '%)' : '';
    }
    for (const el of document.querySelectorAll('[data-profile-entry]')) el.classList.toggle('off', el.getAttribute('data-profile-entry') !== sel.value);
  };
  sel.addEventListener('change', paint);
  paint();
})();`;

const scriptHash = `sha256-${createHash('sha256').update(PAGE_SCRIPT).digest('base64')}`;

export const PAGE_CSP = `default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '${scriptHash}'`;

/** JSON for a <script type="application/json"> element: nothing in it can close the element. */
export const scriptJson = (x: unknown): string =>
  JSON.stringify(x).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
