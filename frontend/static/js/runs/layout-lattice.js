// Lattice layout (DiNTS, DAST): x = layer, y = resolution level, full resolution at the top.
// Nodes sharing a lattice place (the stem input and head nodes) are nudged apart.

/**
 * @param {object[]} nodes  with optional integer `layer`, `level`
 * @param {object[]} edges
 * @param {{width: number, height: number}} size
 * @returns {{pos: Map<string, [number, number]>, points: Map<number, Array<[number, number]>>, curve: string,
 *   rowLabels: Array<{y: number, text: string}>}}  ``points``: edge index -> its two ends
 */
export function latticeLayout(nodes, edges, { width, height }) {
  const layers = [...new Set(nodes.map((n) => n.layer ?? 0))].sort((a, b) => a - b);
  const levels = [...new Set(nodes.map((n) => n.level ?? 0))].sort((a, b) => a - b);
  const padX = 34; const padY = 24;
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
  const points = new Map();
  edges.forEach((e, i) => { if (pos.has(e.source) && pos.has(e.target)) points.set(i, [pos.get(e.source), pos.get(e.target)]); });
  const rowLabels = levels.map((level) => ({ y: yOf(level), text: level === 0 ? '1×' : `1/${2 ** level}` }));
  return { pos, points, curve: 'horizontal', rowLabels };
}
