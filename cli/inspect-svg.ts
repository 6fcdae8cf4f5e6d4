import type { ViewModel } from './inspect-view.js';

/** Escapes text for HTML and SVG (element content and quoted attributes). */
export const esc = (s: unknown): string => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/**
 * The layer strip: layers 0..L-1 as boxes, a marker per compiled exit, and for each exit E a group
 * (`g.exit-view[data-exit=E]`, the page shows the picked one) with what draft and verify run. It
 * scales to the page (viewBox, width 100%) so every layer stays visible on a narrow window.
 */
export function layerStrip(v: ViewModel, exits: number[], k: number): string {
  const L = v.layers;
  const x0 = 58;
  const headW = 52;
  const w = Math.min(44, (1000 - x0 - headW - 14) / L);
  const right = x0 + L * w; // end of the last layer
  const W = Math.ceil(right + 8 + headW + 4);
  const X = (l: number): number => Math.round((x0 + l * w) * 10) / 10;
  const everyLabel = w >= 18 ? 1 : w >= 9 ? 2 : 4;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, attrs = ''): void => { out.push(`<text x="${x}" y="${y}"${attrs}>${esc(s)}</text>`); };

  text(0, 40, 'layers', ' class="row-label"');
  text(0, 75, 'draft', ' class="row-label"');
  text(0, 97, 'verify', ' class="row-label"');
  // behind the bands: a mark at every compiled exit
  for (const c of exits) {
    out.push(`<line class="exit-mark" x1="${X(c)}" y1="20" x2="${X(c)}" y2="56" stroke="#999" stroke-dasharray="2 2"><title>compiled exit E=${c}</title></line>`);
  }
  // per exit: the layers it drafts with (blue) and verifies with (green), its marker and spans
  for (const E of exits) {
    const parts: string[] = [];
    const rect = (x: number, y: number, width: number, h: number, fill: string, cls: string, title: string): void => {
      parts.push(`<rect class="${cls}" x="${x}" y="${y}" width="${Math.max(1, Math.round(width * 10) / 10)}" height="${h}" fill="${fill}"><title>${esc(title)}</title></rect>`);
    };
    rect(X(0), 26, X(E) - X(0), 24, '#cfe2f3', 'band-draft', `layers 0..${E - 1}: run by draft@${E}`);
    if (E < L) rect(X(E), 26, X(L) - X(E), 24, '#d9ead3', 'band-deep', `layers ${E}..${L - 1}: run only by verify@${E}`);
    const fromEmbedding = v.verify.from === 'embedding';
    parts.push(`<line x1="${X(E)}" y1="14" x2="${X(E)}" y2="56" stroke="#e69138" stroke-width="3"><title>exit after layer ${E - 1} (E=${E})</title></line>`);
    parts.push(`<text x="${X(E)}" y="11" text-anchor="middle" class="exit-label">E=${E}</text>`);
    const label = (x: number, y: number, width: number, s: string): void => {
      // inside the span when it fits (about 6 units a character), else left out: the title says it
      if (width >= s.length * 6 + 8) parts.push(`<text x="${x + 4}" y="${y + 12}" class="span-text">${esc(s)}</text>`);
    };
    const draftText = `layers 0..${E - 1} + head, 1 row per step`;
    rect(X(0), 62, X(E) - X(0), 17, '#fce5cd', 'span-draft', `draft@${E}: ${draftText}`);
    rect(right + 8, 62, headW, 17, '#fce5cd', 'span-draft', `draft@${E}: the shared head`);
    // inside a long span; right of a short one (the row is empty there)
    if (X(E) - X(0) >= draftText.length * 6 + 8) label(X(0), 62, X(E) - X(0), draftText);
    else parts.push(`<text x="${X(E) + 6}" y="74" class="span-text">${esc(draftText)}</text>`);
    if (fromEmbedding) {
      // verify recomputes every layer from the embedding: no exit query cache
      const allText = `layers 0..${L - 1} + head over k+1 = ${k + 1} rows, from the embedding`;
      rect(X(0), 84, right + 8 + headW - X(0), 17, '#f4cccc', 'span-verify', `verify@${E}: ${allText}`);
      label(X(0), 84, right + 8 + headW - X(0), allText);
    } else {
      const newest = 'newest draft';
      rect(X(0), 84, X(E) - X(0), 17, '#ead1dc', 'span-verify', `verify@${E}: the newest draft through layers 0..${E - 1}`);
      label(X(0), 84, X(E) - X(0), newest);
      const deepText = `layers ${E}..${L - 1} + head over k+1 = ${k + 1} rows`;
      if (E < L) rect(X(E), 84, right + 8 + headW - X(E), 17, '#f4cccc', 'span-verify', `verify@${E}: ${deepText}`);
      label(X(E), 84, right + 8 + headW - X(E), deepText);
    }
    out.push(`<g class="exit-view" data-exit="${E}">${parts.join('')}</g>`);
  }
  for (let l = 0; l < L; l++) {
    out.push(`<rect class="layer" data-layer="${l}" x="${X(l)}" y="26" width="${Math.round((w - 2) * 10) / 10}" height="24"><title>layer ${l}</title></rect>`);
    if (l % everyLabel === 0) text(Math.round((X(l) + (w - 2) / 2) * 10) / 10, 42, String(l), ' text-anchor="middle" class="layer-num"');
  }
  out.push(`<rect x="${right + 8}" y="26" width="${headW}" height="24" fill="#fff2cc" stroke="#666"><title>head: ${esc(v.exit.head.join(' → '))}</title></rect>`);
  text(right + 8 + headW / 2, 42, 'head', ' text-anchor="middle" class="layer-num"');
  return `<svg id="layer-strip" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} 106" width="100%" style="max-width:${Math.round(W * 1.3)}px" ` +
    `font-family="Helvetica, Arial, sans-serif" role="img" aria-label="layers, exits, draft and verify">${out.join('')}</svg>`;
}
