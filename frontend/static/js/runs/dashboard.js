// Live run page. The WebSocket replays stored events after the last sequence number this page
// has (sent as {"after": N} on every connect), then streams live ones; the page reconnects with
// backoff. Charts (one per series group, every numeric leaf of a step event) and the
// architecture graph are rebuilt from the events it holds.
import { getJSON } from '../http.js';
import { ChartBoard } from './charts.js';
import { drawGenotype, drawLegend } from './graph.js';
import { StepAxis, stepSeries, validationSeries } from './series.js';

const data = JSON.parse(document.getElementById('dashboard-data').textContent);
const $ = (id) => document.getElementById(id);
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const GB = 1e9;
// what the worker's memory figure counts (nasengine.training.common.memory_usage)
const MEMORY_KINDS = { cuda_max_allocated: 'peak CUDA memory allocated this run', rss: 'resident memory of the worker process', max_rss: 'peak resident memory of the worker process' };

const charts = new ChartBoard($('chart-board'), { filenamePrefix: `run-${data.run}` });
let axis = new StepAxis();
const graphBox = $('arch-graph');
let events = [];
let lastSeq = 0;
let status = data.status;
let totalSteps = null;
let stepTimes = [];
let latestArchitecture = null;
let graphPending = false;
let socket = null;
let retry = 0;
let lastMessageAt = 0; // when the socket last said anything (ms)
const SILENT_MS = 15000; // an open socket this quiet is not trusted: the REST API fills in
let forbidden = false;

function setStatus(run) {
  status = run.status;
  const badge = $('run-status');
  badge.dataset.status = status;
  badge.className = `status status-${status}`;
  badge.textContent = status.charAt(0).toUpperCase() + status.slice(1);
  const cancel = $('cancel-form');
  if (cancel) cancel.hidden = FINAL.has(status) || run.cancel_requested;
  const retrain = $('retrain-run');
  if (retrain) retrain.hidden = status !== 'succeeded';
  if (status === 'succeeded' && data.kind === 'search') $('architecture-link').hidden = false;
  const error = $('run-error');
  error.hidden = !run.error;
  error.textContent = run.error || '';
  if (run.best_mean_dice !== null && run.best_mean_dice !== undefined) $('run-best-dice').textContent = run.best_mean_dice.toFixed(3);
  if (run.model_id) {
    const link = $('model-link');
    link.href = `/models/${run.model_id}/`;
    link.hidden = false;
  }
}

function fmtSeconds(s) {
  if (!Number.isFinite(s)) return '—';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// A multi-stage method's step events count steps per stage and may carry `progress`, the
// overall fraction: the bar shows that when given, the text the stage's own count.
function progress(step, total, time, stage = null, overall = null) {
  if (!total) return;
  const bar = $('run-progress');
  if (typeof overall === 'number') { bar.max = 1; bar.value = Math.max(0, Math.min(1, overall)); } else { bar.max = total; bar.value = step; }
  $('run-progress-text').textContent = `${stage ? `${stage}: ` : ''}step ${step} / ${total}${typeof overall === 'number' ? ` (${Math.round(100 * overall)}% overall)` : ''}`;
  if (stepTimes.length && stepTimes[stepTimes.length - 1][0] > step) stepTimes = []; // a new stage counts from 1
  stepTimes.push([step, time]);
  if (stepTimes.length > 30) stepTimes.shift();
  if (stepTimes.length >= 2 && !FINAL.has(status)) {
    const [s0, t0] = stepTimes[0];
    const [s1, t1] = stepTimes[stepTimes.length - 1];
    const perStep = (t1 - t0) / Math.max(1, s1 - s0);
    $('run-eta').textContent = `${fmtSeconds(perStep * (total - step))} (${perStep.toFixed(2)} s/step)`;
  }
}

function drawGraphSoon() {
  if (!graphBox || graphPending || !latestArchitecture) return;
  graphPending = true;
  requestAnimationFrame(() => {
    graphPending = false;
    const { genotype, step } = latestArchitecture;
    drawLegend($('graph-legend'), drawGenotype(graphBox, genotype));
    graphBox.dataset.step = String(step);
    $('graph-step').textContent = `snapshot at step ${step}`;
  });
}

function apply(event) {
  switch (event.type) {
    case 'run_started':
      totalSteps = event.total_steps;
      $('run-device').textContent = event.device || '—';
      $('run-phase').textContent = event.resumed_from_step ? `${event.phase} (resumed at step ${event.resumed_from_step})` : event.phase;
      stepTimes = [];
      break;
    case 'step':
      totalSteps = event.total_steps || totalSteps;
      $('run-phase').textContent = event.phase;
      charts.addAll(stepSeries(event), axis.x(event));
      if (event.memory_bytes) {
        const m = event.memory_bytes;
        $('memory-used').textContent = `${m >= GB ? `${(m / GB).toFixed(2)} GB` : `${Math.round(m / 1e6)} MB`} (${MEMORY_KINDS[event.memory_kind] || event.memory_kind || 'peak'})`;
      }
      progress(event.step, totalSteps, event.time, event.stage || null, typeof event.progress === 'number' ? event.progress : null);
      break;
    case 'validation':
      charts.addAll(validationSeries(event), axis.x(event));
      break;
    case 'architecture':
      latestArchitecture = { genotype: event.genotype, step: event.step };
      drawGraphSoon();
      break;
    case 'finished':
      $('run-progress-text').textContent = 'finished';
      $('run-eta').textContent = '—';
      if (event.genotype) { latestArchitecture = { genotype: event.genotype, step: 'final' }; drawGraphSoon(); }
      break;
    case 'cancelled':
      $('run-progress-text').textContent = `cancelled at step ${event.step}`;
      break;
    case 'failed':
      $('run-progress-text').textContent = 'failed';
      $('run-error').hidden = false;
      $('run-error').textContent = event.reason;
      break;
    default:
      break;
  }
}

function receive(event) {
  if (event.seq <= lastSeq) return; // replayed or sent twice: already have it
  events.push(event);
  lastSeq = event.seq;
  $('run-events-count').textContent = String(events.length);
  document.body.dataset.lastSeq = String(lastSeq);
  apply(event);
  // Method panels (runs/_method_panels.html) listen for every event; the core dashboard
  // does not need to know their event types.
  document.dispatchEvent(new CustomEvent('vs:run-event', { detail: event }));
}

function rebuild() {
  // A resumed run dropped the events after its checkpoint: redraw from what is left.
  charts.clear();
  axis = new StepAxis();
  latestArchitecture = null;
  stepTimes = [];
  const kept = events;
  events = [];
  lastSeq = 0;
  document.dispatchEvent(new CustomEvent('vs:run-rebuild'));
  kept.forEach(receive);
}

function connect() {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  socket = new WebSocket(`${scheme}://${window.location.host}${data.ws_path}`);
  $('run-connection').textContent = 'connecting…';
  socket.addEventListener('open', () => {
    lastMessageAt = Date.now();
    socket.send(JSON.stringify({ after: lastSeq }));
  });
  socket.addEventListener('message', (message) => {
    lastMessageAt = Date.now();
    const msg = JSON.parse(message.data);
    // The backoff resets only once the server has answered with its replay: a server that
    // accepts and then closes at once is not hammered every second.
    if (msg.kind === 'replayed') retry = 0;
    if (msg.kind === 'event') receive(msg.event);
    else if (msg.kind === 'status') setStatus(msg.run);
    else if (msg.kind === 'replayed') $('run-connection').textContent = 'live';
    else if (msg.kind === 'rewind' && lastSeq > msg.seq) {
      events = events.filter((e) => e.seq <= msg.seq);
      rebuild();
    }
  });
  socket.addEventListener('close', (event) => {
    if (event.code === 4403) {
      forbidden = true;
      $('run-connection').textContent = 'no access';
      return;
    }
    retry += 1;
    const delay = Math.min(15000, 500 * 2 ** Math.min(retry, 5));
    $('run-connection').textContent = `reconnecting in ${Math.round(delay / 1000)} s…`;
    setTimeout(connect, delay);
  });
}

// Fallback while the socket is down or silent: the REST API gives the same events
// (receive() drops any it already has).
async function poll() {
  const socketDown = !socket || socket.readyState !== WebSocket.OPEN;
  const socketSilent = Date.now() - lastMessageAt > SILENT_MS;
  if (!forbidden && (socketDown || socketSilent)) {
    try {
      const page = await getJSON(`${data.events_url}?after=${lastSeq}`);
      page.events.forEach(receive);
      const run = await getJSON(data.api_url);
      setStatus({ ...run, model_id: run.model });
    } catch (err) {
      // keep trying
    }
  }
  setTimeout(poll, 5000);
}

window.addEventListener('resize', () => { drawGraphSoon(); charts.resize(); });
const fill = $('memory-estimate-fill');
if (fill && data.budget_bytes) {
  fill.style.width = `${Math.min(100, (100 * data.estimate_bytes) / data.budget_bytes)}%`;
  fill.classList.toggle('over', data.estimate_bytes > data.budget_bytes);
}
connect();
setTimeout(poll, 5000);
