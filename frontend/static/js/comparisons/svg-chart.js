// A chart's series as a standalone SVG document (axes, ticks, one polyline per shown series,
// a colour key): the vector counterpart of SeriesChart.png() for figures in a paper.
import { PALETTE, formatValue, paddedRange } from '../runs/charts.js';

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));

/** Ticks at 1, 2, 5 x 10^k covering [lo, hi], about ``n`` of them. */
export function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * @param {import('../runs/charts.js').SeriesChart} chart
 * @param {{width?: number, height?: number}} size
 * @returns {string} the SVG document
 */
export function chartSvg(chart, { width = 720, height = 360 } = {}) {
  const names = [...chart.columns.keys()].filter((n) => !chart.hidden.has(n));
  const log = chart.log;
  const m = { left: 70, right: 16, top: 40, bottom: 44 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const xs = chart.xs;
  let ymin = null; let ymax = null;
  for (const n of names) for (const v of chart.columns.get(n)) {
    if (v === null || (log && v <= 0)) continue;
    ymin = ymin === null ? v : Math.min(ymin, v);
    ymax = ymax === null ? v : Math.max(ymax, v);
  }
  if (chart.range) { ymin = Math.min(chart.range[0], ymin ?? chart.range[0]); ymax = Math.max(chart.range[1], ymax ?? chart.range[1]); }
  const [y0, y1] = paddedRange(ymin, ymax, log);
  const x0 = xs.length ? xs[0] : 0;
  const x1 = xs.length > 1 ? xs[xs.length - 1] : x0 + 1;
  const fy = log ? (v) => Math.log10(v) : (v) => v;
  const px = (x) => m.left + ((x - x0) / (x1 - x0 || 1)) * w;
  const py = (y) => m.top + h - ((fy(y) - fy(y0)) / (fy(y1) - fy(y0) || 1)) * h;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.left}" y="16" font-size="13" fill="#1d2733">${esc(chart.title)}</text>`];
  const yTicks = log
    ? niceTicks(Math.floor(Math.log10(y0)), Math.ceil(Math.log10(y1)), 4).map((e) => 10 ** e).filter((v) => v >= y0 && v <= y1)
    : niceTicks(y0, y1);
  for (const t of yTicks) {
    const y = py(t).toFixed(1);
    parts.push(`<line x1="${m.left}" x2="${m.left + w}" y1="${y}" y2="${y}" stroke="#e3e7ec"/>`,
      `<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#4a5663">${esc(formatValue(t))}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    const x = px(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.top + h}" y2="${m.top + h + 4}" stroke="#4a5663"/>`,
      `<text x="${x}" y="${m.top + h + 16}" text-anchor="middle" fill="#4a5663">${esc(formatValue(t))}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#4a5663"/>`,
    `<text x="${m.left + w / 2}" y="${height - 8}" text-anchor="middle" fill="#1d2733">step</text>`);
  let keyX = m.left;
  [...chart.columns.keys()].forEach((name, i) => {
    if (chart.hidden.has(name)) return;
    const colour = PALETTE[i % PALETTE.length];
    const points = [];
    chart.columns.get(name).forEach((v, j) => { if (v !== null && !(log && v <= 0)) points.push(`${px(xs[j]).toFixed(1)},${py(v).toFixed(1)}`); });
    if (points.length === 1) parts.push(`<circle cx="${points[0].split(',')[0]}" cy="${points[0].split(',')[1]}" r="2.5" fill="${colour}"/>`);
    else parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.6" points="${points.join(' ')}"><title>${esc(name)}</title></polyline>`);
    parts.push(`<rect x="${keyX}" y="25" width="12" height="4" fill="${colour}"/>`, `<text x="${keyX + 16}" y="30" fill="#1d2733">${esc(name)}</text>`);
    keyX += 30 + 6.2 * name.length;
  });
  parts.push('</svg>');
  return parts.join('\n');
}
