// What a genotype document says about drawing, independent of any layout: its kind, whether an
// edge is on, off or pruned, the op an edge or node shows, resolution levels and depth order,
// and the hover text. Follows docs/PLUGIN-SURFACE.md §2; no DOM.

export const KINDS = ['lattice', 'cells', 'ushape', 'graph'];

/**
 * The drawing kind: the document's `kind` hint when it is one we draw, else inferred from the
 * fields it uses (cell instances -> cells; typed skip edges or node ops at positions -> ushape;
 * every feature node on the lattice -> lattice; anything else -> a generic layered graph).
 * @param {object} doc  genotype (v1 or v2)
 * @returns {'lattice'|'cells'|'ushape'|'graph'}
 */
export function genotypeKind(doc) {
  if (KINDS.includes(doc.kind)) return doc.kind;
  const nodes = doc.nodes || [];
  const edges = doc.edges || [];
  if ((doc.cells || []).length && nodes.some((n) => n.cell)) return 'cells';
  if (edges.some((e) => e.role === 'skip') || nodes.some((n) => n.op && typeof n.position === 'number')) return 'ushape';
  const features = nodes.filter((n) => n.kind === 'feature');
  if (features.length && features.every((n) => Number.isInteger(n.layer) && Number.isInteger(n.level))) return 'lattice';
  return 'graph';
}

/** The op an edge shows: its strongest op weight in a snapshot, else its op. */
export function edgeOp(edge) {
  if (edge.op_weights && Object.keys(edge.op_weights).length) {
    return Object.entries(edge.op_weights).sort((a, b) => b[1] - a[1])[0][0];
  }
  return edge.op;
}

/** The op a node applies (C2FNAS colours nodes), or null. */
export function nodeOp(node) {
  if (!node.op) return null;
  return typeof node.op === 'string' ? node.op : node.op.name || null;
}

/**
 * Whether each edge of one graph (the macro graph or a cell type) is drawn off or pruned.
 *
 * off: the edge's `selected` is false; when no edge says `selected` either way, a candidate
 * edge (one with a `weight`) of a continuous snapshot with weight < 0.5 is off; an older
 * engine wrote only `selected: true`, so where some edges say it, a candidate edge lacking it is
 * off; an edge touching an inactive node is off. pruned: a UXNet gate below `gates.threshold`.
 * @param {object} doc  the genotype (for `continuous` and `gates`)
 * @param {object[]} nodes  nodes of the graph
 * @param {object[]} edges  edges of the graph
 * @returns {Array<{off: boolean, pruned: boolean, weight: number|null}>}  one per edge, in order
 */
export function edgeStates(doc, nodes, edges) {
  const inactive = new Set(nodes.filter((n) => n.active === false).map((n) => n.id));
  const saysSelected = edges.some((e) => typeof e.selected === 'boolean');
  const threshold = doc.gates && typeof doc.gates.threshold === 'number' ? doc.gates.threshold : null;
  return edges.map((e) => {
    const weight = typeof e.weight === 'number' ? e.weight : null;
    let off;
    if (typeof e.selected === 'boolean') off = !e.selected;
    else if (weight === null) off = false;
    else if (saysSelected) off = true;
    else off = Boolean(doc.continuous) && weight < 0.5;
    if (inactive.has(e.source) || inactive.has(e.target)) off = true;
    const pruned = threshold !== null && typeof e.gate === 'number' && e.gate < threshold;
    return { off, pruned, weight };
  });
}

/**
 * Nodes a gate pruning leaves dead (docs/PLUGIN-SURFACE.md §2): with the pruned edges gone, a
 * node other than an input that has no live input, or other than an output that has no live
 * output, is dead, and so are its edges; repeated until nothing changes.
 * @param {object[]} nodes @param {object[]} edges
 * @param {Array<{pruned: boolean}>} states  from edgeStates, one per edge
 * @returns {Set<string>}  ids of the dead nodes
 */
export function deadNodes(nodes, edges, states) {
  const dead = new Set();
  if (!states.some((s) => s.pruned)) return dead;
  let changed = true;
  while (changed) {
    changed = false;
    const live = edges.filter((e, i) => !states[i].pruned && !dead.has(e.source) && !dead.has(e.target));
    for (const n of nodes) {
      if (dead.has(n.id)) continue;
      const noInput = n.kind !== 'input' && !live.some((e) => e.target === n.id);
      const noOutput = n.kind !== 'output' && !live.some((e) => e.source === n.id);
      if (noInput || noOutput) { dead.add(n.id); changed = true; }
    }
  }
  return dead;
}

/** log2 of a resampling edge's factor (default 2), signed: down +, up -, none 0. */
function levelStep(edge) {
  const factor = Number((edge.params && edge.params.factor) || 2);
  const steps = Math.max(1, Math.round(Math.log2(factor)));
  if (edge.resample === 'down') return steps;
  if (edge.resample === 'up') return -steps;
  return 0;
}

/**
 * Depth order of the nodes (Kahn's algorithm; nodes in a cycle keep their list order at the end).
 * @returns {Map<string, number>}  node id -> depth (longest path from a source)
 */
export function depths(nodes, edges) {
  const ids = nodes.map((n) => n.id);
  const incoming = new Map(ids.map((id) => [id, 0]));
  const out = new Map(ids.map((id) => [id, []]));
  for (const e of edges) {
    if (!incoming.has(e.source) || !incoming.has(e.target) || e.source === e.target) continue;
    incoming.set(e.target, incoming.get(e.target) + 1);
    out.get(e.source).push(e.target);
  }
  const depth = new Map(ids.map((id) => [id, 0]));
  const queue = ids.filter((id) => incoming.get(id) === 0);
  const seen = new Set();
  while (queue.length) {
    const id = queue.shift();
    seen.add(id);
    for (const next of out.get(id)) {
      depth.set(next, Math.max(depth.get(next), depth.get(id) + 1));
      incoming.set(next, incoming.get(next) - 1);
      if (incoming.get(next) === 0) queue.push(next);
    }
  }
  let extra = Math.max(0, ...depth.values()) + 1;
  for (const id of ids) if (!seen.has(id)) depth.set(id, extra++);
  return depth;
}

/**
 * Each node's resolution level: its own `level`, else propagated from its inputs along the
 * non-skip edges in depth order (down +log2 factor, up -log2 factor); sources start at 0.
 * @returns {Map<string, number>}
 */
export function levels(nodes, edges) {
  const depth = depths(nodes, edges);
  const level = new Map();
  const ordered = [...nodes].sort((a, b) => depth.get(a.id) - depth.get(b.id));
  for (const n of ordered) {
    if (Number.isInteger(n.level)) { level.set(n.id, n.level); continue; }
    const from = edges.find((e) => e.target === n.id && e.role !== 'skip' && level.has(e.source))
      || edges.find((e) => e.target === n.id && level.has(e.source));
    level.set(n.id, from ? level.get(from.source) + levelStep(from) : 0);
  }
  return level;
}

const fixed = (v, digits = 3) => Number(v).toFixed(digits);

/** Hover text of an edge: ends, op, resampling, weight, op weights, role, gate. */
export function describeEdge(edge, state) {
  const parts = [`${edge.source} → ${edge.target}: ${edgeOp(edge)}`];
  if (edge.resample && edge.resample !== 'none') parts[0] += ` (${edge.resample})`;
  if (edge.role) parts.push(`role ${edge.role}`);
  if (state.weight !== null) parts.push(`p=${fixed(state.weight)}`);
  if (edge.op_weights) parts.push(Object.entries(edge.op_weights).map(([k, v]) => `${k} ${fixed(v, 2)}`).join(', '));
  if (typeof edge.gate === 'number') parts.push(`gate ${fixed(edge.gate)}${state.pruned ? ' (pruned)' : ''}`);
  if (state.off) parts.push('off');
  return parts.join('; ');
}

/** Hover text of a node: id, kind, channels, lattice place, op, combine rule, cell. */
export function describeNode(node, dead = false) {
  const parts = [`${node.id}: ${node.kind}, ${node.channels} channels`];
  if (node.layer !== undefined || node.level !== undefined) parts.push(`layer ${node.layer ?? '—'}, level ${node.level ?? '—'}`);
  const op = nodeOp(node);
  if (op) parts.push(`op ${op}`);
  if (node.combine && node.combine !== 'sum') parts.push(`combine ${node.combine}`);
  if (node.cell) parts.push(`cell ${node.cell}`);
  if (node.active === false) parts.push('off');
  if (dead) parts.push('dead (pruned gates leave it no input or no output)');
  return parts.join('; ');
}
