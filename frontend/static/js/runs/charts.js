// Line charts of a run's numeric series, drawn by uPlot (vendored by scripts/copy-vendor.mjs).
// A SeriesChart holds one group of series over one x axis (hover values and series toggles are
// uPlot's live legend; log scale, PNG and CSV are its toolbar). A ChartBoard makes one chart per
// group the first time the group is seen, so a method's new series need no code here.
import uPlot from '../../vendor/uplot/uPlot.esm.js';

export const PALETTE = ['#1f6f8b', '#e6553c', '#3caae6', '#2e7d4f', '#c86edc', '#f0963c', '#7a5c3e', '#5f6b7a', '#b3261e', '#8bb83c'];

/** @param {number} v @returns {string} a short label (3 significant digits, exponent when tiny or huge) */
export function formatValue(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10000 || a < 0.01) return v.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(3)));
}

/**
 * The y range around the data. A flat series is padded by 10% of its value (so a constant
 * learning rate of 0.025 shows 0.0225..0.0275, not -0.475..0.525); otherwise 5% of the span.
 * @param {number|null} min @param {number|null} max @param {boolean} log
 * @returns {[number, number]}
 */
export function paddedRange(min, max, log) {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return log ? [0.1, 10] : [0, 1];
  if (log) return min === max ? [min / 2, max * 2] : [min / 1.25, max * 1.25];
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 0.1;
    return [min - pad, max + pad];
  }
  const pad = (max - min) * 0.05;
  return [min - pad, max + pad];
}

/**
 * The x (step) range: the data's own span, or a step either side of a single point (never
 * below 0), so one or two points do not get a fractional or negative axis.
 * @param {number|null} min @param {number|null} max @returns {[number, number]}
 */
export function stepRange(min, max) {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) return [Math.max(0, min - 1), max + 1];
  return [min, max];
}

/** Steps are whole numbers: ticks at 1, 2, 5 x 10^k. */
const STEP_INCREMENTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
/** A log axis labels only the 1, 2 and 5 of each decade (its other ticks would overlap). */
const LOG_LABELS = new Set([1, 2, 5]);
const leadingDigit = (v) => Math.round(Math.abs(v) / 10 ** Math.floor(Math.log10(Math.abs(v))));

/** Save ``blob`` as a file (also used by the comparison workspace). */
export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** One chart: several named series over a shared, increasing x (the step). */
export class SeriesChart {
  /**
   * @param {HTMLElement} container  the chart draws into it; data-points / data-series / data-log /
   *   data-y-min / data-y-max on it say what is drawn (read by the browser tests)
   * @param {{title?: string, log?: boolean, range?: [number, number]|null, height?: number, filename?: string}} options
   *   ``range``: a y range the axis always includes (Dice: [0, 1])
   */
  constructor(container, { title = '', log = false, range = null, height = 200, filename = 'series' } = {}) {
    this.container = container;
    this.title = title;
    this.log = log;
    this.range = range;
    this.height = height;
    this.filename = filename;
    this.xs = [];
    this.columns = new Map(); // name -> values aligned with xs (null where the series has none)
    this.hidden = new Set(); // names toggled off in the legend; kept when the chart is rebuilt
    this.plot = null;
    this.rebuild = true;
    this.pending = false;
    this.canvasBox = document.createElement('div');
    this.canvasBox.className = 'chart-canvas';
    this.empty = document.createElement('p');
    this.empty.className = 'chart-empty muted small';
    this.empty.textContent = 'no data yet';
    container.replaceChildren(this.canvasBox, this.empty);
    container.dataset.points = '0';
    container.dataset.series = '[]';
    container.dataset.log = String(log);
  }

  /** Row index of ``x``, inserting a row (null in every series) when it is new. */
  row(x) {
    const last = this.xs.length - 1;
    if (last >= 0 && this.xs[last] === x) return last;
    let at = this.xs.length;
    if (last >= 0 && x < this.xs[last]) {
      let lo = 0; let hi = this.xs.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (this.xs[mid] < x) lo = mid + 1; else hi = mid; }
      if (this.xs[lo] === x) return lo;
      at = lo;
    }
    this.xs.splice(at, 0, x);
    for (const values of this.columns.values()) values.splice(at, 0, null);
    return at;
  }

  /** Add point (x, value) to series ``name``; drawn on the next animation frame. */
  add(name, x, value) {
    if (typeof x !== 'number' || typeof value !== 'number' || !Number.isFinite(value)) return;
    if (!this.columns.has(name)) {
      this.columns.set(name, new Array(this.xs.length).fill(null));
      this.rebuild = true;
    }
    const i = this.row(x);
    this.columns.get(name)[i] = value;
    this.schedule();
  }

  clear() {
    this.xs = [];
    this.columns.clear();
    this.rebuild = true;
    this.schedule();
  }

  get pointCount() {
    let n = 0;
    for (const values of this.columns.values()) for (const v of values) if (v !== null) n += 1;
    return n;
  }

  setLog(on) {
    this.log = Boolean(on);
    this.container.dataset.log = String(this.log);
    this.rebuild = true; // uPlot fixes a scale's distribution when it is built
    this.render();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  /** uPlot's columns: x, then each series (non-positive values dropped on a log axis). */
  data() {
    const cols = [...this.columns.values()].map((values) => (this.log ? values.map((v) => (v !== null && v > 0 ? v : null)) : values));
    return [this.xs, ...cols];
  }

  options(width) {
    const names = [...this.columns.keys()];
    const fixed = this.range;
    return {
      width,
      height: this.height,
      scales: {
        // Steps: one point gets a window of a step either side (never below 0), not uPlot's
        // fractional auto range; two or more span exactly their steps.
        x: { time: false, range: (u, min, max) => stepRange(min, max) },
        y: {
          distr: this.log ? 3 : 1,
          log: 10,
          range: (u, min, max) => paddedRange(fixed ? Math.min(fixed[0], min ?? fixed[0]) : min, fixed ? Math.max(fixed[1], max ?? fixed[1]) : max, this.log),
        },
      },
      axes: [
        { label: 'step', labelSize: 18, size: 34, incrs: STEP_INCREMENTS, values: (u, splits) => splits.map((v) => (v === null ? '' : formatValue(v))) },
        { size: 62, values: (u, splits) => splits.map((v) => (v === null || (this.log && !LOG_LABELS.has(leadingDigit(v))) ? '' : formatValue(v))) },
      ],
      series: [
        { label: 'step', value: (u, v) => (v === null || v === undefined ? '—' : String(v)) },
        ...names.map((name, i) => ({
          label: name,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.6,
          spanGaps: true,
          show: !this.hidden.has(name),
          value: (u, v) => formatValue(v),
        })),
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSeries: [(u, index) => {
          if (index === null || index === 0) return;
          const name = u.series[index].label;
          if (u.series[index].show) this.hidden.delete(name); else this.hidden.add(name);
        }],
        draw: [(u) => {
          this.container.dataset.yMin = String(u.scales.y.min);
          this.container.dataset.yMax = String(u.scales.y.max);
          this.container.dataset.xMin = String(u.scales.x.min);
          this.container.dataset.xMax = String(u.scales.x.max);
        }],
      },
    };
  }

  render() {
    const width = Math.max(this.container.clientWidth || 400, 240);
    this.container.dataset.points = String(this.pointCount);
    this.container.dataset.series = JSON.stringify([...this.columns.keys()]);
    this.empty.hidden = this.xs.length > 0;
    if (!this.xs.length) {
      if (this.plot) { this.plot.destroy(); this.plot = null; }
      this.rebuild = true;
      return;
    }
    if (this.rebuild || !this.plot) {
      if (this.plot) this.plot.destroy();
      this.plot = new uPlot(this.options(width), this.data(), this.canvasBox);
      this.rebuild = false;
    } else {
      this.plot.setData(this.data());
    }
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: Math.max(this.container.clientWidth || 400, 240), height: this.height });
  }

  /** @returns {string} the chart's table: `step,<series...>`, one row per step, empty where a series has no value */
  csv() {
    const names = [...this.columns.keys()];
    const quote = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    const lines = [['step', ...names].map(quote).join(',')];
    this.xs.forEach((x, i) => {
      lines.push([x, ...names.map((n) => { const v = this.columns.get(n)[i]; return v === null ? '' : String(v); })].join(','));
    });
    return `${lines.join('\n')}\n`;
  }

  /** @returns {Promise<Blob|null>} the plot (axes included) under a title and a colour key of the shown series */
  png() {
    if (!this.plot) return Promise.resolve(null);
    const plotCanvas = this.plot.ctx.canvas;
    const ratio = plotCanvas.width / Math.max(1, this.plot.width);
    const head = Math.round(24 * ratio);
    const canvas = document.createElement('canvas');
    canvas.width = plotCanvas.width;
    canvas.height = plotCanvas.height + head;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.font = `${Math.round(12 * ratio)}px sans-serif`;
    ctx.textBaseline = 'middle';
    let x = 8 * ratio;
    ctx.fillStyle = '#1d2733';
    ctx.fillText(this.title, x, head / 2);
    x += ctx.measureText(this.title).width + 16 * ratio;
    this.plot.series.slice(1).forEach((s) => {
      if (!s.show) return;
      ctx.fillStyle = typeof s.stroke === 'function' ? s.stroke(this.plot, 1) : s.stroke;
      ctx.fillRect(x, head / 2 - 2 * ratio, 12 * ratio, 4 * ratio);
      ctx.fillStyle = '#1d2733';
      ctx.fillText(s.label, x + 16 * ratio, head / 2);
      x += ctx.measureText(s.label).width + 30 * ratio;
    });
    ctx.drawImage(plotCanvas, 0, head);
    return new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  }

  downloadCsv() { download(new Blob([this.csv()], { type: 'text/csv' }), `${this.filename}.csv`); }

  async downloadPng() {
    const blob = await this.png();
    if (blob) download(blob, `${this.filename}.png`);
  }
}

/** How the known groups are titled and scaled; any other group gets its key as title. */
const GROUPS = {
  losses: { title: 'Losses', log: true, span: 2 },
  dice: { title: 'Validation Dice', range: [0, 1] },
  lrs: { title: 'Learning rates' },
  metrics: { title: 'Metrics' },
  memory_bytes: { title: 'Memory the worker reports (bytes)' },
  seconds: { title: 'Seconds per step' },
};
const ORDER = Object.keys(GROUPS);

/** One card and chart per series group, made on first sight, known groups first. */
export class ChartBoard {
  /** @param {HTMLElement} root  the cards go into it @param {{filenamePrefix?: string}} options */
  constructor(root, { filenamePrefix = 'run' } = {}) {
    this.root = root;
    this.filenamePrefix = filenamePrefix;
    this.charts = new Map();
  }

  chart(group) {
    if (this.charts.has(group)) return this.charts.get(group);
    const known = GROUPS[group] || {};
    const slug = group.replace(/[^A-Za-z0-9_-]/g, '-');
    const card = document.createElement('section');
    card.className = `card chart-card${known.span === 2 ? ' span2' : ''}`;
    card.id = `${slug}-card`;
    card.dataset.group = group;
    card.dataset.rank = String(group in GROUPS ? ORDER.indexOf(group) : ORDER.length + this.charts.size);
    const headRow = document.createElement('div');
    headRow.className = 'card-head';
    const h2 = document.createElement('h2');
    h2.textContent = known.title || group;
    const tools = document.createElement('div');
    tools.className = 'chart-tools small';
    const logLabel = document.createElement('label');
    logLabel.className = 'checkbox';
    const logBox = document.createElement('input');
    logBox.type = 'checkbox';
    logBox.className = 'chart-log';
    logBox.checked = Boolean(known.log);
    logLabel.append(logBox, document.createTextNode(' log scale'));
    const png = document.createElement('button');
    png.type = 'button';
    png.className = 'small chart-png';
    png.textContent = 'PNG';
    const csv = document.createElement('button');
    csv.type = 'button';
    csv.className = 'small chart-csv';
    csv.textContent = 'CSV';
    tools.append(logLabel, png, csv);
    headRow.append(h2, tools);
    const box = document.createElement('div');
    box.className = 'chart';
    box.id = `chart-${slug}`;
    card.append(headRow, box);
    const after = [...this.root.children].find((c) => Number(c.dataset.rank) > Number(card.dataset.rank));
    this.root.insertBefore(card, after || null);
    const chart = new SeriesChart(box, {
      title: known.title || group, log: Boolean(known.log), range: known.range || null,
      height: known.span === 2 ? 220 : 200, filename: `${this.filenamePrefix}-${slug}`,
    });
    logBox.addEventListener('change', () => chart.setLog(logBox.checked));
    png.addEventListener('click', () => chart.downloadPng());
    csv.addEventListener('click', () => chart.downloadCsv());
    this.charts.set(group, chart);
    return chart;
  }

  /** @param {Array<{group: string, name: string, value: number}>} points @param {number|null} x */
  addAll(points, x) {
    if (x === null) return;
    for (const { group, name, value } of points) this.chart(group).add(name, x, value);
  }

  clear() { this.charts.forEach((c) => c.clear()); }

  resize() { this.charts.forEach((c) => c.resize()); }
}
