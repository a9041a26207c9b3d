// Which numbers of a run's events are chart series, with no knowledge of any method: every
// finite numeric leaf of a `step` event (nested objects flattened with dots), and the Dice of a
// `validation` event. Pure functions and one small class; no DOM.

/** Fields of a step event that place it (x axis, bookkeeping) rather than measure something. */
const PLACEMENT = new Set(['seq', 'step', 'total_steps', 'time', 'progress', 'resumed_from_step']);

/**
 * Every numeric leaf of ``value`` as [path, number] pairs, depth first.
 * @param {any} value  an event payload or a part of it
 * @param {string} prefix  dotted path of ``value`` in the event ('' at the top)
 * @returns {Array<[string, number]>}
 */
export function numericLeaves(value, prefix = '') {
  if (typeof value === 'number') return Number.isFinite(value) ? [[prefix, value]] : [];
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  const out = [];
  for (const [key, child] of Object.entries(value)) out.push(...numericLeaves(child, prefix ? `${prefix}.${key}` : key));
  return out;
}

/**
 * The series points of one step event, grouped for charting: a nested leaf `losses.seg` is
 * series `seg` of group `losses`; a top-level number `memory_bytes` is its own group.
 * @param {object} event  a `step` event
 * @returns {Array<{group: string, name: string, value: number}>}
 */
export function stepSeries(event) {
  const points = [];
  for (const [path, value] of numericLeaves(event)) {
    const [head, ...rest] = path.split('.');
    if (!rest.length && PLACEMENT.has(head)) continue;
    points.push({ group: head, name: rest.length ? rest.join('.') : head, value });
  }
  return points;
}

/**
 * The Dice series of a `validation` event: one per class (null classes skipped) and `mean`.
 * @param {object} event  a `validation` event: {dice: {class: number|null}, mean_dice}
 * @returns {Array<{group: string, name: string, value: number}>}
 */
export function validationSeries(event) {
  const points = [];
  for (const [name, value] of Object.entries(event.dice || {})) {
    if (typeof value === 'number' && Number.isFinite(value)) points.push({ group: 'dice', name, value });
  }
  if (typeof event.mean_dice === 'number' && Number.isFinite(event.mean_dice)) points.push({ group: 'dice', name: 'mean', value: event.mean_dice });
  return points;
}

/**
 * One x axis over a run whose stages (and candidates within a stage) each count their steps
 * from 1 (C2FNAS trains candidates one after another): a stage/candidate first seen starts
 * where the run so far ended, so x only grows. A run with neither keeps x = step.
 */
export class StepAxis {
  constructor() {
    this.offsets = new Map();
    this.end = 0;
  }

  /** @param {{step?: number, stage?: string, candidate?: string}} event  @returns {number|null} x of the event */
  x(event) {
    if (typeof event.step !== 'number') return null;
    const stage = event.stage || event.candidate ? `${event.stage || ''}/${event.candidate || ''}` : '';
    if (!this.offsets.has(stage)) this.offsets.set(stage, stage === '' ? 0 : this.end);
    const x = this.offsets.get(stage) + event.step;
    this.end = Math.max(this.end, x);
    return x;
  }
}
