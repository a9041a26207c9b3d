// Architecture snapshots sent as changes (webapp/runs/events.py SnapshotEncoder): an
// `architecture` event may carry `genotype_patch` against the genotype of the event
// `genotype_base` instead of a whole `genotype`. Pure functions and one small class; no DOM.

/** Snapshot weights are on a 1e-4 grid (the engine rounds them); moves count steps of it. */
const NUMBER_UNIT = 10000;

/**
 * ``doc`` with each of its numbers moved by the next of ``moves`` (in 1e-4 steps; 0 keeps the
 * number as it is), numbers taken depth first with object keys sorted (as events.py _numbers).
 * @param {any} doc @param {Iterator<number>} moves @returns {any}
 */
function moveNumbers(doc, moves) {
  if (typeof doc === 'number') {
    const step = moves.next().value;
    return step === 0 ? doc : (Math.round(doc * NUMBER_UNIT) + step) / NUMBER_UNIT;
  }
  if (Array.isArray(doc)) return doc.map((item) => moveNumbers(item, moves));
  if (doc && typeof doc === 'object') {
    const moved = {};
    for (const key of Object.keys(doc).sort()) moved[key] = moveNumbers(doc[key], moves);
    const out = {};
    for (const key of Object.keys(doc)) out[key] = moved[key];
    return out;
  }
  return doc;
}

/**
 * The document ``node`` makes of ``base``. Nodes: {"=": value} replaces, {"+": n} moves a
 * number by n steps of 1e-4, {"#": [n, ...]} moves every number of ``base`` (its shape is
 * unchanged), {"-": 1} deletes the key, {"{}": {key: node}} changes keys of an object,
 * {"[]": {index: node}} items of a list.
 * ``base`` is not modified; unchanged parts are shared with it.
 * @param {any} base @param {object} node @returns {any}
 */
export function applyPatch(base, node) {
  if ('=' in node) return structuredClone(node['=']);
  if ('+' in node) return (Math.round(base * NUMBER_UNIT) + node['+']) / NUMBER_UNIT;
  if ('#' in node) return moveNumbers(base, node['#'][Symbol.iterator]());
  if ('{}' in node) {
    const out = { ...base };
    for (const [key, child] of Object.entries(node['{}'])) {
      if ('-' in child) delete out[key];
      else out[key] = applyPatch(base ? base[key] : undefined, child);
    }
    return out;
  }
  const out = base.slice();
  for (const [index, child] of Object.entries(node['[]'])) out[Number(index)] = applyPatch(base[Number(index)], child);
  return out;
}

/** Rebuilds whole `architecture` events of one run from a stream in seq order. */
export class SnapshotDecoder {
  constructor() {
    this.last = null; // {seq, genotype} of the last architecture event
  }

  reset() { this.last = null; }

  /**
   * @param {object} event  an event as the server sent it
   * @returns {object|null} the event with a whole `genotype`, or null when its base is not the
   *   last snapshot this decoder saw (the caller fetches it again from the events API, whose
   *   first snapshot is always whole)
   */
  decode(event) {
    if (event.type !== 'architecture') return event;
    if (event.genotype_patch) {
      if (!this.last || this.last.seq !== event.genotype_base) return null;
      const { genotype_patch: patch, genotype_base: base, ...rest } = event;
      event = { ...rest, genotype: applyPatch(this.last.genotype, patch) };
    }
    if (event.genotype && typeof event.genotype === 'object') this.last = { seq: event.seq, genotype: event.genotype };
    return event;
  }
}
