// Draws a genotype (continuous snapshot or final architecture) as an SVG graph. Nodes sit on the
// lattice: x = layer, y = resolution level (full resolution at the top). Edges are drawn with
// opacity and width by their weight (probability) and coloured by their strongest operation;
// nodes that are off are drawn hollow and dashed.
const SVG = 'http://www.w3.org/2000/svg';
export const OP_COLORS = {
  skip: '#8a96a3', conv_3x3x3: '#e6553c', p3d_3x3x1: '#3caae6', p3d_3x1x3: '#2e9d6f', p3d_1x3x3: '#c86edc',
  transformer: '#f0963c', stem: '#1d2733', head_up: '#5f6b7a', head_out: '#1d2733', down: '#7a5c3e', up: '#7a5c3e',
};
const EXTRA = ['#b3261e', '#8bb83c', '#f0c03c', '#3c5ce6', '#e63ca0'];

export function opColor(op) {
  if (!(op in OP_COLORS)) OP_COLORS[op] = EXTRA[Object.keys(OP_COLORS).length % EXTRA.length];
  return OP_COLORS[op];
}

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

function strongestOp(edge) {
  if (edge.op_weights && Object.keys(edge.op_weights).length) {
    return Object.entries(edge.op_weights).sort((a, b) => b[1] - a[1])[0][0];
  }
  return edge.op;
}

/** Render ``doc`` into ``container`` (replacing what was there). Returns the ops drawn. */
export function drawGenotype(container, doc, { height = 320 } = {}) {
  const nodes = doc.nodes || [];
  const edges = doc.edges || [];
  const layers = [...new Set(nodes.map((n) => n.layer ?? 0))].sort((a, b) => a - b);
  const levels = [...new Set(nodes.map((n) => n.level ?? 0))].sort((a, b) => a - b);
  const width = Math.max(container.clientWidth || 640, 320);
  const padX = 30; const padY = 24;
  const xOf = (layer) => padX + (layers.length > 1 ? (layers.indexOf(layer) / (layers.length - 1)) * (width - 2 * padX) : width / 2);
  const yOf = (level) => padY + (levels.length > 1 ? (levels.indexOf(level) / (levels.length - 1)) * (height - 2 * padY) : height / 2);
  const pos = new Map();
  const taken = new Map();
  for (const n of nodes) {
    const key = `${n.layer ?? 0}/${n.level ?? 0}`;
    const k = taken.get(key) || 0;
    taken.set(key, k + 1);
    pos.set(n.id, [xOf(n.layer ?? 0) + k * 10, yOf(n.level ?? 0) + k * 10]);
  }
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'arch-svg', role: 'img' });
  el('title', {}, svg).textContent = `${doc.method || ''} architecture: ${nodes.length} nodes, ${edges.length} edges`;
  for (const level of levels) {
    const t = el('text', { x: 4, y: yOf(level) + 4, class: 'level-label' }, svg);
    t.textContent = level === 0 ? '1×' : `1/${2 ** level}`;
  }
  const used = new Set();
  const gEdges = el('g', { class: 'edges' }, svg);
  for (const e of edges) {
    const a = pos.get(e.source); const b = pos.get(e.target);
    if (!a || !b) continue;
    const op = strongestOp(e);
    used.add(op);
    const w = typeof e.weight === 'number' ? Math.max(0, Math.min(1, e.weight)) : 1;
    const off = e.selected === false;
    const mx = (a[0] + b[0]) / 2;
    const path = el('path', {
      d: `M${a[0]},${a[1]} C${mx},${a[1]} ${mx},${b[1]} ${b[0]},${b[1]}`,
      fill: 'none', stroke: opColor(op), 'stroke-width': (0.8 + 4.2 * w).toFixed(2),
      'stroke-opacity': (off ? 0.12 + 0.5 * w : 0.25 + 0.75 * w).toFixed(2),
      class: `edge${off ? ' edge-off' : ''}`, 'data-op': op, 'data-weight': w.toFixed(3),
    }, gEdges);
    if (off) path.setAttribute('stroke-dasharray', '4 3');
    const weights = e.op_weights ? Object.entries(e.op_weights).map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(', ') : '';
    el('title', {}, path).textContent = `${e.source} → ${e.target}: ${op}${e.resample && e.resample !== 'none' ? ` (${e.resample})` : ''}, p=${w.toFixed(3)}${weights ? `; ${weights}` : ''}`;
  }
  const gNodes = el('g', { class: 'nodes' }, svg);
  for (const n of nodes) {
    const [x, y] = pos.get(n.id);
    const off = n.active === false;
    const r = n.kind === 'feature' ? 6 : 8;
    const c = el('circle', { cx: x, cy: y, r, class: `node node-${n.kind}${off ? ' node-off' : ''}`, 'data-node': n.id }, gNodes);
    el('title', {}, c).textContent = `${n.id}: layer ${n.layer}, level ${n.level}, ${n.channels} channels${off ? ' (off)' : ''}`;
  }
  container.replaceChildren(svg);
  container.dataset.edges = String(edges.length);
  container.dataset.activeNodes = String(nodes.filter((n) => n.active !== false).length);
  return used;
}

export function drawLegend(container, ops) {
  if (!container) return;
  container.replaceChildren();
  for (const op of [...ops].sort()) {
    const item = document.createElement('span');
    item.className = 'legend-item';
    item.innerHTML = `<i style="background:${opColor(op)}"></i>`;
    item.append(document.createTextNode(op));
    container.append(item);
  }
  const off = document.createElement('span');
  off.className = 'legend-item';
  off.innerHTML = '<i class="off"></i>';
  off.append(document.createTextNode('off (node or edge not selected)'));
  container.append(off);
}
