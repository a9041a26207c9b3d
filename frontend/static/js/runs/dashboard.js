// Live run page. The WebSocket replays stored events after the last sequence number this page
// has (sent as {"after": N} on every connect), then streams live ones; the page reconnects with
// backoff. Charts and the architecture graph are rebuilt from the events it holds.
import { getJSON } from '../http.js';
import { LineChart } from './chart.js';
import { drawGenotype, drawLegend } from './graph.js';

const data = JSON.parse(document.getElementById('dashboard-data').textContent);
const $ = (id) => document.getElementById(id);
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const GB = 1e9;

const charts = {
  losses: new LineChart($('chart-losses'), { log: true, height: 220 }),
  dice: new LineChart($('chart-dice'), { yMin: 0, yMax: 1 }),
  lrs: new LineChart($('chart-lrs'), {}),
};
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

function progress(step, total, time) {
  if (!total) return;
  $('run-progress').max = total;
  $('run-progress').value = step;
  $('run-progress-text').textContent = `step ${step} / ${total}`;
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
      for (const [name, value] of Object.entries(event.losses || {})) charts.losses.add(name, event.step, value);
      for (const [name, value] of Object.entries(event.lrs || {})) charts.lrs.add(name, event.step, value);
      if (event.memory_bytes) {
        const m = event.memory_bytes;
        $('memory-used').textContent = `${m >= GB ? `${(m / GB).toFixed(2)} GB` : `${Math.round(m / 1e6)} MB`} (${event.memory_kind || 'peak'})`;
      }
      progress(event.step, totalSteps, event.time);
      break;
    case 'validation':
      for (const [name, value] of Object.entries(event.dice || {})) charts.dice.add(name, event.step, value);
      charts.dice.add('mean', event.step, event.mean_dice);
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
}

function rebuild() {
  // A resumed run dropped the events after its checkpoint: redraw from what is left.
  Object.values(charts).forEach((c) => c.clear());
  latestArchitecture = null;
  stepTimes = [];
  const kept = events;
  events = [];
  lastSeq = 0;
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

window.addEventListener('resize', () => { drawGraphSoon(); Object.values(charts).forEach((c) => c.schedule()); });
const fill = $('memory-estimate-fill');
if (fill && data.budget_bytes) {
  fill.style.width = `${Math.min(100, (100 * data.estimate_bytes) / data.budget_bytes)}%`;
  fill.classList.toggle('over', data.estimate_bytes > data.budget_bytes);
}
connect();
setTimeout(poll, 5000);
