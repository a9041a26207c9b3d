// Layered layout of an arbitrary DAG by dagre (Sugiyama: ranks, crossing reduction, edge
// routing), left to right. Used for cell types, the macro network of cell methods and any
// genotype that is neither a lattice nor a U-shaped path.
import dagre from '../../vendor/dagre/dagre.js';

/**
 * @param {object[]} nodes @param {object[]} edges
 * @param {{nodeSize?: number, rankSep?: number, nodeSep?: number, labelWidth?: (node) => number}} options
 * @returns {{width: number, height: number, pos: Map<string, [number, number]>,
 *   points: Map<number, Array<[number, number]>>, curve: string}}  in the layout's own units
 *   (0..width, 0..height); ``points``: edge index -> its route
 */
export function dagLayout(nodes, edges, { nodeSize = 18, rankSep = 46, nodeSep = 22, labelWidth = () => 0 } = {}) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', ranksep: rankSep, nodesep: nodeSep, edgesep: 8, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Set();
  for (const n of nodes) {
    g.setNode(n.id, { width: Math.max(nodeSize, labelWidth(n)), height: nodeSize + 12 });
    known.add(n.id);
  }
  edges.forEach((e, i) => { if (known.has(e.source) && known.has(e.target)) g.setEdge(e.source, e.target, {}, String(i)); });
  dagre.layout(g);
  const pos = new Map(nodes.map((n) => { const p = g.node(n.id); return [n.id, [p.x, p.y]]; }));
  const points = new Map();
  edges.forEach((e, i) => {
    if (!known.has(e.source) || !known.has(e.target)) return;
    const route = g.edge({ v: e.source, w: e.target, name: String(i) });
    const inner = (route && route.points ? route.points : []).slice(1, -1).map((p) => [p.x, p.y]);
    points.set(i, [pos.get(e.source), ...inner, pos.get(e.target)]);
  });
  // dagre's graph size leaves out the routes of long edges (they can pass below the nodes):
  // measure everything drawn and shift it to start at the margin
  const margin = 12 + nodeSize / 2;
  const all = [...pos.values(), ...[...points.values()].flat()];
  if (!all.length) return { width: 2 * margin, height: 2 * margin, pos, points, curve: 'route' };
  const minX = Math.min(...all.map((p) => p[0])); const maxX = Math.max(...all.map((p) => p[0]));
  const minY = Math.min(...all.map((p) => p[1])); const maxY = Math.max(...all.map((p) => p[1]));
  const shift = ([x, y]) => [x - minX + margin, y - minY + margin];
  for (const [id, p] of pos) pos.set(id, shift(p));
  for (const [i, route] of points) points.set(i, route.map(shift));
  return { width: maxX - minX + 2 * margin, height: maxY - minY + 2 * margin, pos, points, curve: 'route' };
}
