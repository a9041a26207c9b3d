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
  const { width, height } = g.graph();
  return { width: width || nodeSize, height: height || nodeSize, pos, points, curve: 'route' };
}
