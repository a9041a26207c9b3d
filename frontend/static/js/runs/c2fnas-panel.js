// C2FNAS cards of the run page (templates/runs/_method_panels.html, present only for a C2FNAS
// search). Built from the run's events as dashboard.js hands them over (`vs:run-event`, detail =
// the event, in seq order; `vs:run-rebuild` = start again, the events follow):
//   c2fnas.candidate_submitted  a row appears, "training"
//   c2fnas.candidate_finished   the row gets Dice, seconds, worker; a point of the shares chart
//                               from `cluster_counts` / `evaluated` (the paper's Fig. 4)
//   c2fnas.fine_candidate       one sampled colouring of the fine stage, ranked by Dice
// No DOM strings are parsed as HTML: every value goes in through textContent or attributes.

const SVG = 'http://www.w3.org/2000/svg';
// Okabe-Ito: distinguishable with the common colour-vision deficiencies (one per cluster, cycled)
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
const OP_SHORT = { c2fnas_3d: '3D', c2fnas_p3d: 'P3D', c2fnas_2d: '2D' };
const REASONS = { init: 'initial sample', initial: 'initial sample', explore: 'exploration (random cluster)', best: 'best cluster', fallback: 'random open cluster (best one exhausted)' };
const FINE_SHOWN = 15;

const $ = (id) => document.getElementById(id);
const card = $('c2fnas-card');

function el(tag, attrs = {}, text = null) {
  const node = tag === 'svg' || ['polyline', 'circle', 'line', 'text', 'path', 'g', 'rect', 'title'].includes(tag)
    ? document.createElementNS(SVG, tag) : document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, String(v)));
  if (text !== null) node.textContent = text;
  return node;
}

function colour(cluster) {
  return PALETTE[((Number(cluster) % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

function fmtDice(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(3) : '—';
}

function fmtSeconds(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '—';
  if (s < 90) return `${s.toFixed(1)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/**
 * The topology code as a small level path: the stem at level 0, then each cell at its level
 * (down = lower on the drawing, as in the paper's figures of the U-shape).
 * @param {number[]} code  level of each cell
 * @param {string} stroke  line colour
 */
export function topologyPath(code, stroke = '#0072B2') {
  const levels = [0, ...(code || []).map(Number)];
  const depth = Math.max(1, ...levels);
  const step = 12;
  const width = step * (levels.length - 1) + 8;
  const rowH = 9;
  const height = rowH * depth + 8;
  const svg = el('svg', { class: 'topology-path', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `topology ${code.join(',')}` });
  svg.append(el('title', {}, `levels per cell: ${code.join(', ')}`));
  const pts = levels.map((lv, i) => [4 + i * step, 4 + lv * rowH]);
  svg.append(el('polyline', { points: pts.map((p) => p.join(',')).join(' '), fill: 'none', stroke, 'stroke-width': 1.6 }));
  pts.forEach(([x, y], i) => svg.append(el('circle', { cx: x, cy: y, r: i === 0 ? 2.2 : 2.6, fill: i === 0 ? '#fff' : stroke, stroke })));
  return svg;
}

const state = { rows: new Map(), order: 0, shares: [], clusters: 0, fine: [], fineTotal: null };

function reset() {
  state.rows.clear();
  state.order = 0;
  state.shares = [];
  state.clusters = 0;
  state.fine = [];
  state.fineTotal = null;
  card.querySelector('tbody').replaceChildren();
  $('c2fnas-shares').replaceChildren();
  $('c2fnas-shares').dataset.points = '0';
  $('c2fnas-shares-legend').replaceChildren();
  $('c2fnas-fine').replaceChildren();
  $('c2fnas-summary').textContent = 'waiting for the first candidate…';
  $('c2fnas-fine-note').textContent = 'after the coarse stage';
}

function row(event) {
  let tr = state.rows.get(event.candidate);
  if (tr) return tr;
  state.order += 1;
  tr = el('tr', { 'data-candidate': event.candidate, 'data-state': 'training' });
  const order = typeof event.order === 'number' ? event.order + 1 : state.order;
  const cells = ['order', 'topology', 'cluster', 'reason', 'dice', 'seconds', 'worker'].map((name) => el('td', { 'data-col': name }));
  cells[0].textContent = String(order);
  tr.append(...cells);
  card.querySelector('tbody').append(tr);
  state.rows.set(event.candidate, tr);
  return tr;
}

function fillRow(tr, event, finished) {
  const cell = (name) => tr.querySelector(`[data-col="${name}"]`);
  if (Array.isArray(event.topology_code) && !cell('topology').firstChild) {
    cell('topology').append(topologyPath(event.topology_code, colour(event.cluster)));
    cell('topology').append(el('span', { class: 'muted code' }, ` ${event.topology_code.join('')}`));
  }
  if (event.cluster !== undefined && event.cluster !== null) {
    cell('cluster').replaceChildren(el('span', { class: 'swatch', style: `background:${colour(event.cluster)}` }), document.createTextNode(` ${event.cluster}`));
  }
  if (event.reason) cell('reason').textContent = REASONS[event.reason] || event.reason;
  if (!finished) {
    if (!cell('dice').textContent) cell('dice').textContent = 'training…';
    return;
  }
  tr.dataset.state = event.ok === false ? 'failed' : 'finished';
  cell('dice').textContent = event.ok === false ? 'failed' : fmtDice(event.mean_dice);
  if (event.ok === false && event.error) cell('dice').title = event.error;
  cell('seconds').textContent = fmtSeconds(event.seconds);
  cell('worker').textContent = event.worker || '—';
}

function summary() {
  const rows = [...state.rows.values()];
  const done = rows.filter((r) => r.dataset.state !== 'training').length;
  const training = rows.length - done;
  const best = Math.max(-1, ...rows.map((r) => Number(r.querySelector('[data-col="dice"]').textContent)).filter(Number.isFinite));
  $('c2fnas-summary').textContent = `${done} evaluated, ${training} training${best >= 0 ? `; best mean Dice ${best.toFixed(3)}` : ''}`;
}

function drawShares() {
  const box = $('c2fnas-shares');
  const points = state.shares;
  box.dataset.points = String(points.length);
  if (!points.length) return;
  const k = state.clusters;
  const width = Math.max(280, box.clientWidth || 360);
  const height = 180;
  const pad = { l: 34, r: 8, t: 8, b: 24 };
  const maxX = Math.max(1, ...points.map((p) => p.evaluated));
  const x = (v) => pad.l + ((width - pad.l - pad.r) * (v - 1)) / Math.max(1, maxX - 1);
  const y = (v) => pad.t + (height - pad.t - pad.b) * (1 - v);
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'share of evaluations per cluster' });
  [0, 0.5, 1].forEach((v) => {
    svg.append(el('line', { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), stroke: '#e1e6eb' }));
    svg.append(el('text', { x: pad.l - 4, y: y(v) + 3, 'text-anchor': 'end', 'font-size': 10, fill: '#5b6672' }, `${Math.round(v * 100)}%`));
  });
  svg.append(el('text', { x: (pad.l + width - pad.r) / 2, y: height - 6, 'text-anchor': 'middle', 'font-size': 10, fill: '#5b6672' }, 'candidates evaluated'));
  svg.append(el('text', { x: pad.l, y: height - 6, 'font-size': 10, fill: '#5b6672' }, '1'));
  svg.append(el('text', { x: width - pad.r, y: height - 6, 'text-anchor': 'end', 'font-size': 10, fill: '#5b6672' }, String(maxX)));
  for (let c = 0; c < k; c += 1) {
    const pts = points.map((p) => [x(p.evaluated), y((p.counts[c] || 0) / Math.max(1, p.evaluated))]);
    const line = el('polyline', { class: 'share-line', 'data-cluster': c, points: pts.map((q) => q.join(',')).join(' '), fill: 'none', stroke: colour(c), 'stroke-width': 2 });
    svg.append(line);
    pts.forEach(([cx, cy]) => svg.append(el('circle', { cx, cy, r: 2.4, fill: colour(c) })));
  }
  box.replaceChildren(svg);
  const last = points[points.length - 1];
  $('c2fnas-shares-legend').replaceChildren(...Array.from({ length: k }, (_, c) => {
    const item = el('span', { class: 'legend-item' });
    item.append(el('i', { style: `background:${colour(c)}` }), document.createTextNode(`cluster ${c}: ${last.counts[c] || 0}`));
    return item;
  }));
  $('c2fnas-shares-note').textContent = `${last.evaluated} evaluated`;
}

function drawFine() {
  const ranked = [...state.fine].sort((a, b) => (b.dice ?? -1) - (a.dice ?? -1) || a.step - b.step);
  const list = $('c2fnas-fine');
  list.replaceChildren(...ranked.slice(0, FINE_SHOWN).map((f, i) => {
    const li = el('li', { 'data-rank': i + 1, 'data-step': f.step });
    li.append(el('strong', {}, fmtDice(f.dice)), document.createTextNode(' '));
    f.ops.forEach((op, cellIndex) => li.append(el('span', { class: `op-chip op-${OP_SHORT[op] || 'other'}`, title: `cell ${cellIndex}: ${op}` }, OP_SHORT[op] || op)));
    return li;
  }));
  const more = ranked.length > FINE_SHOWN ? ` (best ${FINE_SHOWN} shown)` : '';
  $('c2fnas-fine-note').textContent = `${state.fine.length}${state.fineTotal ? ` of ${state.fineTotal}` : ''} scored${more}`;
}

let sharesPending = false;
function drawSharesSoon() {
  if (sharesPending) return;
  sharesPending = true;
  requestAnimationFrame(() => { sharesPending = false; drawShares(); });
}

function onEvent(event) {
  switch (event.type) {
    case 'c2fnas.clusters':
      state.clusters = (event.sizes || []).length;
      break;
    case 'c2fnas.candidate_submitted':
      fillRow(row(event), event, false);
      summary();
      break;
    case 'c2fnas.candidate_finished': {
      fillRow(row(event), event, true);
      summary();
      if (Array.isArray(event.cluster_counts) && typeof event.evaluated === 'number') {
        state.clusters = Math.max(state.clusters, event.cluster_counts.length);
        state.shares.push({ evaluated: event.evaluated, counts: event.cluster_counts.map(Number) });
        drawSharesSoon();
      }
      break;
    }
    case 'c2fnas.fine_candidate':
      state.fine.push({ ops: event.ops || [], dice: typeof event.mean_dice === 'number' ? event.mean_dice : null, step: event.step });
      state.fineTotal = event.total_steps || state.fineTotal;
      drawFine();
      break;
    default:
      break;
  }
}

if (card) {
  document.addEventListener('vs:run-event', (e) => onEvent(e.detail));
  document.addEventListener('vs:run-rebuild', reset);
  window.addEventListener('resize', drawSharesSoon);
}
