// U-shaped path layout (C2FNAS): x = depth along the path (the node's `position` when it has
// one), y = resolution level (derived from the resampling edges when the node has none), so
// the encoder goes down, the decoder comes back up, and each skip is an arc over the valley.
import { depths, levels } from './graph-model.js';

/**
 * @param {object[]} nodes @param {object[]} edges
 * @param {{width: number, height: number}} size
 * @returns {{pos: Map<string, [number, number]>, points: Map<number, Array<[number, number]>>, curve: string,
 *   arcs: Set<number>, rowLabels: Array<{y: number, text: string}>}}  ``arcs``: edge indices drawn as skip arcs
 */
export function ushapeLayout(nodes, edges, { width, height }) {
  const depth = depths(nodes, edges);
  const level = levels(nodes, edges);
  const column = new Map(nodes.map((n) => [n.id, typeof n.position === 'number' ? n.position : depth.get(n.id)]));
  const columns = [...new Set(column.values())].sort((a, b) => a - b);
  const rows = [...new Set(level.values())].sort((a, b) => a - b);
  const padX = 34; const padTop = 46; const padBottom = 22; // room above for the skip arcs
  const xOf = (c) => padX + (columns.length > 1 ? (columns.indexOf(c) / (columns.length - 1)) * (width - 2 * padX) : width / 2);
  const yOf = (r) => padTop + (rows.length > 1 ? (rows.indexOf(r) / (rows.length - 1)) * (height - padTop - padBottom) : (height - padTop) / 2);
  const pos = new Map(nodes.map((n) => [n.id, [xOf(column.get(n.id)), yOf(level.get(n.id))]]));
  const points = new Map();
  const arcs = new Set();
  edges.forEach((e, i) => {
    const a = pos.get(e.source); const b = pos.get(e.target);
    if (!a || !b) return;
    const skip = e.role === 'skip' || Math.abs(column.get(e.target) - column.get(e.source)) > 1;
    if (skip) {
      // a quadratic arc whose top rises with the span it jumps
      const lift = 18 + 0.18 * Math.abs(b[0] - a[0]);
      points.set(i, [a, [(a[0] + b[0]) / 2, Math.min(a[1], b[1]) - lift], b]);
      arcs.add(i);
    } else {
      points.set(i, [a, b]);
    }
  });
  const rowLabels = rows.map((r) => ({ y: yOf(r), text: r === 0 ? '1×' : `1/${2 ** r}` }));
  return { pos, points, curve: 'horizontal', arcs, rowLabels };
}
