// Live run page. The WebSocket replays stored events after the last sequence number this page
// has (sent as {"after": N} on every connect), then streams live ones; the page reconnects with
// backoff. Charts (one per series group, every numeric leaf of a step event) and the
// architecture graph are rebuilt from the events it holds.
//
// The connection line says "live" only while the server answers: the page pings every
// heartbeat period and a socket silent for 2.5 periods is marked stale, dropped and reopened
// (a cut network never shows "live"). Best Dice follows the validation events as they come.
import { csrfToken, errorText, getJSON } from '../http.js';
import { ChartBoard } from './charts.js';
import { drawGenotype, drawLegend } from './graph.js';
import { StepAxis, stepSeries, validationSeries } from './series.js';
import { SnapshotDecoder } from './snapshots.js';

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
// the server's heartbeat period (window.VS_HEARTBEAT_MS lets a test shorten it)
const HEARTBEAT_MS = Number(window.VS_HEARTBEAT_MS) || data.heartbeat_ms || 5000;
const STALE_MS = 2.5 * HEARTBEAT_MS;
let forbidden = false;
let bestDice = null;
const snapshots = new SnapshotDecoder();
let refetching = false;

function setConnection(state, text) {
  const el = $('run-connection');
  el.dataset.state = state;
  el.textContent = text;
}

function showBestDice(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return;
  if (bestDice !== null && value <= bestDice) return;
  bestDice = value;
  $('run-best-dice').textContent = value.toFixed(3);
}

function setStatus(run) {
  status = run.status;
  const badge = $('run-status');
  badge.dataset.status = status;
  badge.className = `status status-${status}`;
  badge.textContent = status.charAt(0).toUpperCase() + status.slice(1);
  const cancel = $('cancel-form');
  if (cancel) cancel.hidden = FINAL.has(status) || run.cancel_requested;
  const resume = $('resume-form');
  if (resume) resume.hidden = status !== 'cancelled';
  if (FINAL.has(status)) { $('run-eta').textContent = '—'; stepTimes = []; } // a stopped run has no ETA
  const retrain = $('retrain-run');
  if (retrain) retrain.hidden = status !== 'succeeded';
  if (status === 'succeeded' && data.kind === 'search') $('architecture-link').hidden = false;
  const error = $('run-error');
  error.hidden = !run.error;
  error.textContent = run.error || '';
  showBestDice(run.best_mean_dice);
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
      showBestDice(event.mean_dice);
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
      $('run-eta').textContent = '—';
      break;
    case 'failed':
      $('run-progress-text').textContent = 'failed';
      $('run-eta').textContent = '—';
      $('run-error').hidden = false;
      $('run-error').textContent = event.reason;
      break;
    default:
      break;
  }
}

// A snapshot sent as changes against one this page does not hold (cannot happen on an ordered
// stream; defensive): read the events from there again from the REST API, which sends its
// first snapshot whole.
async function refetchFrom(seq) {
  if (refetching) return;
  refetching = true;
  try {
    const page = await getJSON(`${data.events_url}?after=${seq - 1}`);
    snapshots.reset();
    page.events.forEach((e) => receive(e, true));
  } catch (err) {
    // the next poll tries again
  } finally {
    refetching = false;
  }
}

function receive(raw, fromRest = false) {
  if (raw.seq <= lastSeq) {
    // already have it; keep the decoder's base in step with the stream
    if (raw.type === 'architecture' && raw.genotype) snapshots.decode(raw);
    return;
  }
  const event = snapshots.decode(raw);
  if (event === null) { if (!fromRest) refetchFrom(raw.seq); return; }
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
  snapshots.reset();
  document.dispatchEvent(new CustomEvent('vs:run-rebuild'));
  kept.forEach((e) => receive(e));
}

let reconnectTimer = null;
let replayed = false; // this socket has answered our {"after": N} with its replay
let openedAt = 0;

function scheduleReconnect(delay, state, text) {
  clearTimeout(reconnectTimer);
  setConnection(state, text);
  reconnectTimer = setTimeout(connect, delay);
}

function connect() {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${window.location.host}${data.ws_path}`);
  socket = ws;
  lastMessageAt = Date.now(); // the stale timer counts from the attempt
  setConnection('connecting', retry ? 'reconnecting…' : 'connecting…');
  replayed = false;
  openedAt = 0;
  ws.addEventListener('open', () => {
    lastMessageAt = Date.now();
    openedAt = lastMessageAt;
    ws.send(JSON.stringify({ after: lastSeq }));
  });
  ws.addEventListener('message', (message) => {
    if (ws !== socket) return; // a socket given up as stale
    lastMessageAt = Date.now();
    const msg = JSON.parse(message.data);
    if (msg.kind === 'status' && !replayed) snapshots.reset(); // a new stream: its first snapshot is whole
    // The backoff resets only once the server has answered with its replay: a server that
    // accepts and then closes at once is not hammered every second.
    if (msg.kind === 'replayed') { retry = 0; replayed = true; }
    if (msg.kind === 'event') receive(msg.event);
    else if (msg.kind === 'status') setStatus(msg.run);
    else if (msg.kind === 'replayed') setConnection('live', 'live');
    else if (msg.kind === 'pong' && $('run-connection').dataset.state === 'stale') setConnection('live', 'live');
    else if (msg.kind === 'rewind' && lastSeq > msg.seq) {
      events = events.filter((e) => e.seq <= msg.seq);
      rebuild();
    }
  });
  ws.addEventListener('close', (event) => {
    if (ws !== socket) return; // replaced already (stale)
    if (event.code === 4403) {
      forbidden = true;
      setConnection('forbidden', 'no access');
      return;
    }
    retry += 1;
    const delay = Math.min(15000, 500 * 2 ** Math.min(retry, 5));
    scheduleReconnect(delay, 'reconnecting', `reconnecting in ${Math.round(delay / 1000)} s…`);
  });
}

// The heartbeat: ping while open; a socket that said nothing for STALE_MS (no pong, no event)
// is stale whatever its readyState claims (a cut network closes nothing): drop it, reconnect.
function heartbeat() {
  if (!forbidden && socket) {
    if (socket.readyState === WebSocket.OPEN) {
      try { socket.send(JSON.stringify({ ping: Date.now() })); } catch (err) { /* closing */ }
    }
    // silent, or open for a stale period without replaying (our request was lost): not live
    const silent = Date.now() - lastMessageAt > STALE_MS || (!replayed && openedAt && Date.now() - openedAt > STALE_MS);
    if (silent && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) {
      const dead = socket;
      socket = null;
      try { dead.close(); } catch (err) { /* already closing */ }
      retry += 1;
      scheduleReconnect(Math.min(5000, HEARTBEAT_MS), 'stale', `stale: no answer for ${(STALE_MS / 1000).toFixed(1)} s, reconnecting…`);
    }
  }
  setTimeout(heartbeat, HEARTBEAT_MS);
}

// Stopping and deleting ask first (in the module, not inline handlers: the CSP allows no inline script).
const confirmations = {
  'cancel-form': 'Cancel this run? It stops after its current step and keeps a checkpoint, so it can be resumed.',
  'delete-form': 'Delete this run, its events and files?',
};
for (const [id, question] of Object.entries(confirmations)) {
  const f = $(id);
  if (f) f.addEventListener('submit', (event) => { if (!window.confirm(question)) event.preventDefault(); });
}

// Rename in place (PATCH the run; blank gives the default name back).
const nameForm = $('run-name-form');
if (nameForm) {
  const edit = $('run-name-edit');
  const input = $('run-name-input');
  edit.addEventListener('click', () => { nameForm.hidden = false; edit.hidden = true; input.focus(); input.select(); });
  $('run-name-cancel').addEventListener('click', () => { nameForm.hidden = true; edit.hidden = false; });
  nameForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    $('run-name-error').textContent = '';
    const response = await fetch(data.api_url, {
      method: 'PATCH', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken(document), Accept: 'application/json' },
      body: JSON.stringify({ name: input.value }),
    });
    const result = await response.json().catch(() => ({}));
    if (!response.ok) { $('run-name-error').textContent = errorText(result); return; }
    $('run-name').textContent = result.name;
    input.value = result.name;
    document.title = document.title.replace(/^[^|·]*/, `${result.name} `);
    nameForm.hidden = true;
    edit.hidden = false;
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
      page.events.forEach((e) => receive(e, true));
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
setTimeout(heartbeat, HEARTBEAT_MS);
