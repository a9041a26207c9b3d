// A small hand-written SVG line chart: several named series, linear or log y axis, redrawn at
// most once per animation frame. No dependencies.
const SVG = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#1f6f8b', '#e6553c', '#3caae6', '#2e7d4f', '#c86edc', '#f0963c', '#7a5c3e', '#5f6b7a', '#b3261e', '#8bb83c'];

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

function fmt(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.01) return v.toExponential(1);
  return v.toPrecision(3).replace(/\.?0+$/, '');
}

export class LineChart {
  constructor(container, { log = false, height = 200, yMin = null, yMax = null } = {}) {
    this.container = container;
    this.log = log;
    this.height = height;
    this.yMin = yMin;
    this.yMax = yMax;
    this.series = new Map();
    this.pending = false;
    this.svg = el('svg', { class: 'line-chart', preserveAspectRatio: 'none', role: 'img' });
    this.legend = document.createElement('div');
    this.legend.className = 'chart-legend';
    container.append(this.svg, this.legend);
  }

  clear() {
    this.series.clear();
    this.schedule();
  }

  add(name, x, y) {
    if (y === null || y === undefined || !Number.isFinite(y) || (this.log && y <= 0)) return;
    if (!this.series.has(name)) this.series.set(name, { points: [], color: PALETTE[this.series.size % PALETTE.length] });
    this.series.get(name).points.push([x, y]);
    this.schedule();
  }

  get pointCount() {
    let n = 0;
    for (const s of this.series.values()) n += s.points.length;
    return n;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  render() {
    const width = Math.max(this.container.clientWidth || 400, 200);
    const height = this.height;
    const pad = { l: 52, r: 10, t: 8, b: 22 };
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.svg.setAttribute('width', width);
    this.svg.setAttribute('height', height);
    this.svg.replaceChildren();
    this.svg.dataset.points = String(this.pointCount);
    const ty = (v) => (this.log ? Math.log10(v) : v);
    let x0 = Infinity; let x1 = -Infinity; let y0 = Infinity; let y1 = -Infinity;
    for (const s of this.series.values()) {
      for (const [x, y] of s.points) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, ty(y)); y1 = Math.max(y1, ty(y));
      }
    }
    if (!Number.isFinite(x0)) {
      el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' }, this.svg).textContent = 'no data yet';
      this.legend.replaceChildren();
      return;
    }
    if (this.yMin !== null) y0 = Math.min(y0, this.yMin);
    if (this.yMax !== null) y1 = Math.max(y1, this.yMax);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
    const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
    const sy = (y) => pad.t + (1 - (ty(y) - y0) / (y1 - y0)) * (height - pad.t - pad.b);
    const axis = el('g', { class: 'chart-axis' }, this.svg);
    el('line', { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b }, axis);
    el('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b }, axis);
    for (let i = 0; i <= 4; i += 1) {
      const v = y0 + ((y1 - y0) * i) / 4;
      const y = pad.t + (1 - i / 4) * (height - pad.t - pad.b);
      el('line', { x1: pad.l, y1: y, x2: width - pad.r, y2: y, class: 'grid' }, axis);
      el('text', { x: pad.l - 4, y: y + 4, 'text-anchor': 'end' }, axis).textContent = fmt(this.log ? 10 ** v : v);
    }
    el('text', { x: pad.l, y: height - 6 }, axis).textContent = fmt(x0);
    el('text', { x: width - pad.r, y: height - 6, 'text-anchor': 'end' }, axis).textContent = `step ${fmt(x1)}`;
    this.legend.replaceChildren();
    for (const [name, s] of this.series) {
      // Long runs have tens of thousands of steps: draw at most ~2 points per pixel column.
      const stride = Math.max(1, Math.floor(s.points.length / (2 * width)));
      const shown = stride === 1 ? s.points : s.points.filter((_, i) => i % stride === 0 || i === s.points.length - 1);
      const pts = shown.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      const line = el('polyline', { points: pts, fill: 'none', stroke: s.color, 'stroke-width': 1.6, class: 'series', 'data-series': name }, this.svg);
      el('title', {}, line).textContent = name;
      if (s.points.length === 1) el('circle', { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 3, fill: s.color }, this.svg);
      const item = document.createElement('span');
      item.className = 'legend-item';
      item.innerHTML = `<i style="background:${s.color}"></i>`;
      item.append(document.createTextNode(`${name} ${fmt(s.points[s.points.length - 1][1])}`));
      this.legend.append(item);
    }
  }
}
