// Draws a genotype (a live snapshot or a final architecture) as an SVG graph, picking the view
// from its kind (docs/PLUGIN-SURFACE.md §2; `kind` as the hint, else inferred):
//   lattice  nodes at layer x level (DiNTS, DAST)
//   cells    the macro network, plus a small DAG per cell type (SCNAS)
//   ushape   a level-over-depth path with its skip arcs (C2FNAS)
//   graph    a layered DAG laid out by dagre (UXNet; pruned gates dashed)
// Edges are coloured by their strongest op, with width and opacity by weight; "off" edges
// (not in the current decode) and pruned ones are dashed; nodes that are off are hollow. A
// redraw of the same architecture updates the drawn elements in place (scene.js).
import { deadNodes, describeEdge, describeNode, edgeOp, edgeStates, genotypeKind, nodeOp } from './graph-model.js';
import { dagLayout } from './layout-dag.js';
import { latticeLayout } from './layout-lattice.js';
import { ushapeLayout } from './layout-ushape.js';
import { renderScene } from './scene.js';

export const OP_COLORS = {
  skip: '#8a96a3', conv_3x3x3: '#e6553c', p3d_3x3x1: '#3caae6', p3d_3x1x3: '#2e9d6f', p3d_1x3x3: '#c86edc',
  dast_transformer: '#f0963c', stem: '#1d2733', head_up: '#5f6b7a', head_out: '#1d2733', down: '#7a5c3e', up: '#7a5c3e',
};
const EXTRA = ['#b3261e', '#8bb83c', '#f0c03c', '#3c5ce6', '#e63ca0', '#2b8a8a', '#8a2b6d', '#6d8a2b'];

/** A stable colour per op name (new op names get the next spare colour). */
export function opColor(op) {
  if (!(op in OP_COLORS)) OP_COLORS[op] = EXTRA[Object.keys(OP_COLORS).length % EXTRA.length];
  return OP_COLORS[op];
}

const NODE_R = { input: 8, output: 8, feature: 6 };

/** SVG path data through ``points``: a horizontal S-curve between two ends, a quadratic arc through three, else the route. */
function pathD(points, curve, arc) {
  const p = points.map(([x, y]) => [Number(x.toFixed(1)), Number(y.toFixed(1))]);
  if (arc && p.length === 3) return `M${p[0]} Q${p[1]} ${p[2]}`;
  if (curve === 'horizontal' && p.length === 2) {
    const mx = ((p[0][0] + p[1][0]) / 2).toFixed(1);
    return `M${p[0]} C${mx},${p[0][1]} ${mx},${p[1][1]} ${p[1]}`;
  }
  if (p.length <= 2) return `M${p[0]} ${p.slice(1).map((q) => `L${q}`).join(' ')}`;
  // a route: through the midpoints, bending at each routing point (a smooth polyline)
  const mid = (a, b) => [((a[0] + b[0]) / 2).toFixed(1), ((a[1] + b[1]) / 2).toFixed(1)];
  const bends = p.slice(1, -1).map((q, i) => `Q${q} ${i === p.length - 3 ? p[p.length - 1] : mid(q, p[i + 2])}`);
  return `M${p[0]} L${mid(p[0], p[1])} ${bends.join(' ')}`;
}

/**
 * Scene items of one graph (the macro graph or a cell type), placed by ``layout`` and moved by
 * ``place`` ([x, y] -> [x, y]).
 * @returns {{edges: object[], nodes: object[], labels: object[], ops: Set<string>, styles: Set<string>, counts: object}}
 */
function graphItems(doc, graphKey, nodes, edges, layout, place, { nodeLabel = null } = {}) {
  const states = edgeStates(doc, nodes, edges);
  const dead = deadNodes(nodes, edges, states);
  // an edge into or out of a dead node goes with it
  edges.forEach((e, i) => { if (dead.has(e.source) || dead.has(e.target)) states[i] = { ...states[i], pruned: true }; });
  const ops = new Set();
  const styles = new Set();
  const out = { edges: [], nodes: [], labels: [], ops, styles, counts: { edges: 0, nodes: 0, off: 0, pruned: 0, skips: 0, dead: dead.size } };
  const seen = new Map();
  edges.forEach((e, i) => {
    const route = layout.points.get(i);
    if (!route) return;
    const state = states[i];
    const op = edgeOp(e);
    ops.add(op);
    const pairKey = `${e.source}>${e.target}`;
    const nth = seen.get(pairKey) || 0;
    seen.set(pairKey, nth + 1);
    const w = state.weight === null ? 1 : Math.max(0, Math.min(1, state.weight));
    const arc = layout.arcs ? layout.arcs.has(i) : false;
    const skip = e.role === 'skip' || arc;
    const classes = ['edge'];
    if (state.off) { classes.push('edge-off'); styles.add('off'); out.counts.off += 1; }
    if (state.pruned) { classes.push('edge-pruned'); styles.add('pruned'); out.counts.pruned += 1; }
    if (skip) { classes.push('edge-skip'); styles.add('skip'); out.counts.skips += 1; }
    const faded = state.off || state.pruned;
    out.edges.push({
      key: `${graphKey}/${pairKey}#${nth}`,
      attrs: {
        d: pathD(route.map(place), layout.curve, arc), fill: 'none', stroke: opColor(op),
        'stroke-width': (0.8 + 3.4 * w).toFixed(2),
        'stroke-opacity': (faded ? 0.12 + 0.4 * w : 0.3 + 0.7 * w).toFixed(2),
        'stroke-dasharray': state.pruned ? '2 3' : (state.off ? '5 3' : null),
        class: classes.join(' '), 'data-op': op, 'data-weight': w.toFixed(3), 'data-graph': graphKey,
        'data-source': e.source, 'data-target': e.target, 'data-role': e.role || null,
      },
      title: describeEdge(e, state),
    });
    out.counts.edges += 1;
  });
  for (const n of nodes) {
    const at = layout.pos.get(n.id);
    if (!at) continue;
    const [x, y] = place(at);
    const op = nodeOp(n);
    if (op) ops.add(op);
    const off = n.active === false || dead.has(n.id);
    if (dead.has(n.id)) styles.add('dead');
    out.nodes.push({
      key: `${graphKey}/${n.id}`,
      attrs: {
        cx: x.toFixed(1), cy: y.toFixed(1), r: NODE_R[n.kind] || 6,
        class: `node node-${n.kind}${off ? ' node-off' : ''}${dead.has(n.id) ? ' node-dead' : ''}${op ? ' node-op' : ''}`,
        style: op && !off ? `fill:${opColor(op)}` : null,
        'data-node': n.id, 'data-graph': graphKey, 'data-op': op, 'data-cell': n.cell || null,
      },
      title: describeNode(n, dead.has(n.id)),
    });
    out.counts.nodes += 1;
    const text = nodeLabel ? nodeLabel(n) : null;
    if (text) {
      out.labels.push({ key: `${graphKey}/${n.id}/label`, text, attrs: { x: x.toFixed(1), y: (y + 18).toFixed(1), 'text-anchor': 'middle', class: 'node-label' } });
    }
  }
  return out;
}

function emptyScene(title, width, height) {
  return { title, width, height, boxes: [], edges: [], nodes: [], labels: [] };
}

function merge(scene, items) {
  scene.edges.push(...items.edges);
  scene.nodes.push(...items.nodes);
  scene.labels.push(...items.labels);
}

function rowLabels(scene, layout) {
  for (const { y, text } of layout.rowLabels) scene.labels.push({ key: `row/${text}`, text, attrs: { x: 4, y: (y + 4).toFixed(1), class: 'level-label' } });
}

/** Lattice or U-shape: one graph placed in width x height. */
function gridScene(doc, kind, width, height) {
  const nodes = doc.nodes || [];
  const edges = doc.edges || [];
  const layout = (kind === 'ushape' ? ushapeLayout : latticeLayout)(nodes, edges, { width, height });
  const scene = emptyScene(`${doc.method || ''} architecture (${kind}): ${nodes.length} nodes, ${edges.length} edges`, width, height);
  rowLabels(scene, layout);
  const items = graphItems(doc, 'macro', nodes, edges, layout, (p) => p, {
    nodeLabel: kind === 'ushape' ? (n) => nodeOp(n) : null,
  });
  merge(scene, items);
  return { scene, items: [items] };
}

/** Scale a layout of natural size (w, h) into a box of at most (maxW, maxH), never above ``grow``. */
function fit(layout, maxW, maxH, grow = 1.4) {
  return Math.min(grow, maxW / layout.width, maxH / layout.height);
}

/** Generic DAG: one dagre layout scaled to the width. */
function dagScene(doc, width, height) {
  const nodes = doc.nodes || [];
  const edges = doc.edges || [];
  const layout = dagLayout(nodes, edges);
  const s = fit(layout, width, Math.max(height, 160) * 1.5);
  const h = Math.max(120, layout.height * s);
  const scene = emptyScene(`${doc.method || ''} architecture (graph): ${nodes.length} nodes, ${edges.length} edges`, width, h);
  const ox = (width - layout.width * s) / 2;
  const items = graphItems(doc, 'macro', nodes, edges, layout, ([x, y]) => [ox + x * s, y * s], { nodeLabel: (n) => nodeOp(n) });
  merge(scene, items);
  return { scene, items: [items] };
}

function panel(scene, key, x, y, w, h, text) {
  scene.boxes.push({ key, attrs: { x: x.toFixed(1), y: y.toFixed(1), width: w.toFixed(1), height: h.toFixed(1), rx: 6, class: 'graph-panel', 'data-panel': key } });
  scene.labels.push({ key: `${key}/title`, text, attrs: { x: (x + 8).toFixed(1), y: (y + 14).toFixed(1), class: 'panel-label' } });
}

/** Cell method: the macro network on top, one panel per cell type below. */
function cellsScene(doc, width) {
  const cells = doc.cells || [];
  const nodes = doc.nodes || [];
  const edges = doc.edges || [];
  const gap = 10; const titleH = 20;
  const macro = dagLayout(nodes, edges, { labelWidth: (n) => 7 * String(n.cell || '').length });
  const ms = fit(macro, width - 2 * gap, 260);
  const macroH = macro.height * ms + titleH;
  const perRow = Math.max(1, Math.min(cells.length, Math.floor(width / 260) || 1));
  const panelW = (width - gap * (perRow + 1)) / perRow;
  const cellLayouts = cells.map((c) => dagLayout(c.nodes || [], c.edges || [], { rankSep: 36, nodeSep: 14 }));
  const cellH = Math.max(80, ...cellLayouts.map((l) => l.height * fit(l, panelW - 2 * gap, 200))) + titleH;
  const rowsOfCells = Math.ceil(cells.length / perRow);
  const height = gap + macroH + gap + rowsOfCells * (cellH + gap);
  const scene = emptyScene(`${doc.method || ''} architecture (cells): ${nodes.length} cell instances, ${cells.length} cell types`, width, height);
  const all = [];
  panel(scene, 'macro', gap / 2, gap / 2, width - gap, macroH + gap / 2, `network: ${nodes.length} nodes`);
  const mox = (width - macro.width * ms) / 2;
  const macroItems = graphItems(doc, 'macro', nodes, edges, macro, ([x, y]) => [mox + x * ms, gap + titleH + y * ms],
    { nodeLabel: (n) => n.cell || (n.kind !== 'feature' ? n.id : null) });
  merge(scene, macroItems);
  all.push(macroItems);
  cells.forEach((cell, k) => {
    const layout = cellLayouts[k];
    const s = fit(layout, panelW - 2 * gap, 200);
    const px = gap + (k % perRow) * (panelW + gap);
    const py = gap + macroH + gap + Math.floor(k / perRow) * (cellH + gap);
    const key = `cell:${cell.name}`;
    panel(scene, key, px, py, panelW, cellH, `cell ${cell.name}: ${(cell.nodes || []).length} nodes, ${(cell.edges || []).length} edges`);
    const ox = px + (panelW - layout.width * s) / 2;
    const items = graphItems(doc, key, cell.nodes || [], cell.edges || [], layout, ([x, y]) => [ox + x * s, py + titleH + y * s],
      { nodeLabel: (n) => n.id });
    merge(scene, items);
    all.push(items);
  });
  return { scene, items: all };
}

/**
 * Render ``doc`` into ``container`` (updating in place what an earlier call drew there).
 * Sets data-kind, data-edges, data-nodes, data-active-nodes, data-off-edges, data-pruned-edges
 * and data-skip-edges on the container.
 * @param {HTMLElement} container
 * @param {object} doc  genotype document (v1 or v2)
 * @param {{height?: number}} options  height of the lattice / U-shape views (the others size to fit)
 * @returns {{ops: Set<string>, styles: Set<string>}}  op names and edge styles drawn (for the legend)
 */
export function drawGenotype(container, doc, { height = 320 } = {}) {
  const width = Math.max(container.clientWidth || 640, 320);
  const kind = genotypeKind(doc);
  let built;
  if (kind === 'cells') built = cellsScene(doc, width);
  else if (kind === 'graph') built = dagScene(doc, width, height);
  else built = gridScene(doc, kind, width, height);
  renderScene(container, built.scene);
  const total = (k) => built.items.reduce((sum, it) => sum + it.counts[k], 0);
  container.dataset.kind = kind;
  container.dataset.edges = String(total('edges'));
  container.dataset.nodes = String(total('nodes'));
  container.dataset.offEdges = String(total('off'));
  container.dataset.prunedEdges = String(total('pruned'));
  container.dataset.skipEdges = String(total('skips'));
  container.dataset.deadNodes = String(total('dead'));
  container.dataset.activeNodes = String((doc.nodes || []).filter((n) => n.active !== false).length);
  const ops = new Set(); const styles = new Set();
  for (const it of built.items) { it.ops.forEach((o) => ops.add(o)); it.styles.forEach((s) => styles.add(s)); }
  return { ops, styles };
}

const STYLE_TEXT = {
  off: ['off', 'off (not in the current decode)'],
  pruned: ['pruned', 'pruned (gate below the threshold, or into a dead node)'],
  skip: ['skip', 'skip connection'],
};

/** The colour key of the ops and the edge styles drawn. @param {{ops: Iterable<string>, styles: Iterable<string>}} drawn */
export function drawLegend(container, { ops = [], styles = [] } = {}) {
  if (!container) return;
  container.replaceChildren();
  for (const op of [...new Set(ops)].sort()) {
    const item = document.createElement('span');
    item.className = 'legend-item';
    item.dataset.op = op;
    item.innerHTML = `<i style="background:${opColor(op)}"></i>`;
    item.append(document.createTextNode(op));
    container.append(item);
  }
  const shown = new Set(styles);
  shown.add('off'); // always say what the dashed style means
  for (const style of ['off', 'pruned', 'skip']) {
    if (!shown.has(style)) continue;
    const item = document.createElement('span');
    item.className = 'legend-item';
    item.dataset.style = style;
    item.innerHTML = `<i class="${STYLE_TEXT[style][0]}"></i>`;
    item.append(document.createTextNode(STYLE_TEXT[style][1]));
    container.append(item);
  }
}
