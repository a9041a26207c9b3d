// Launch form: method + preset + budget + seed and the method's own settings, rendered from the
// engine's JSON Schema. The memory estimate is fetched as values change and shown against the
// budget; a configuration that cannot fit is refused (here and by the server).
import { csrfToken, errorText, getJSON } from '../http.js';
import { renderSchemaForm } from './schema-form.js';

const GB = 1e9;
const fmt = (n) => (n >= 0.95 * GB ? `${(n / GB).toFixed(1)} GB` : `${Number(Math.max(n / 1e6, 0.01).toPrecision(3))} MB`);
const data = JSON.parse(document.getElementById('launch-data').textContent);
const form = document.getElementById('launch-form');
const methodSelect = document.getElementById('launch-method');
const presetSelect = document.getElementById('launch-preset');
const budgetInput = document.getElementById('launch-budget');
const seedInput = document.getElementById('launch-seed');
const nameInput = document.getElementById('launch-name');
const schemaBox = document.getElementById('schema-form');
const estimateText = document.getElementById('estimate-text');
const estimateFill = document.getElementById('estimate-fill');
const errorsList = document.getElementById('launch-errors');
const submit = document.getElementById('launch-submit');

let catalogue = null;
let schemaForm = null;
let fits = false;
let estimateTimer = null;
let estimateSerial = 0;

const initial = data.initial || {};
if (initial.gpu_budget_bytes) budgetInput.value = (initial.gpu_budget_bytes / GB).toFixed(3).replace(/\.?0+$/, '');
if (initial.seed !== undefined) seedInput.value = initial.seed;
if (initial.name) nameInput.value = initial.name;

function currentMethod() {
  return data.kind === 'search' ? catalogue.methods.find((m) => m.name === methodSelect.value) : null;
}

function currentSchema() {
  return data.kind === 'search' ? currentMethod().schema : catalogue.retrain;
}

// With no CUDA worker connected the form starts from the method's CPU-sized preset (`cpu`,
// else `tiny`); with one, from the method's own default (the server says which: launch.workers).
function suitedPreset(names, methodDefault) {
  for (const name of data.preferred_presets || []) if (names.includes(name)) return name;
  return methodDefault;
}

function fillPresets(names, preferred) {
  presetSelect.innerHTML = '';
  for (const name of names) {
    const o = document.createElement('option');
    o.value = name;
    o.textContent = name;
    presetSelect.append(o);
  }
  presetSelect.value = names.includes(preferred) ? preferred : (names.includes('tiny') ? 'tiny' : names[0]);
}

// The settings shown are those of the latest method + preset asked for: picking the same one again
// keeps what the user typed, and a late answer for an earlier choice never overwrites a newer one.
let defaultsKey = null;

async function loadDefaults(useInitial) {
  const params = new URLSearchParams({ kind: data.kind, preset: presetSelect.value });
  if (data.kind === 'search') params.set('method', methodSelect.value);
  if (data.source_run) params.set('run', data.source_run);
  const key = params.toString();
  if (key === defaultsKey && !useInitial) return;
  defaultsKey = key;
  let values = {};
  try {
    values = (await getJSON(`${data.defaults_url}?${params}`)).config;
  } catch (err) {
    showErrors({ detail: `Could not load the defaults (${err.message}).` });
  }
  if (key !== defaultsKey) return; // another method or preset was picked meanwhile
  if (useInitial && initial.config) values = { ...values, ...initial.config };
  schemaForm = renderSchemaForm(schemaBox, currentSchema(), values, { skip: ['seed'] });
  scheduleEstimate();
}

function body() {
  const { values, bad } = schemaForm.read();
  const out = {
    preset: presetSelect.value,
    config: values,
    seed: seedInput.value === '' ? null : Number(seedInput.value),
    gpu_budget_bytes: Math.round(Number(budgetInput.value) * GB),
    name: nameInput.value,
  };
  if (data.kind === 'search') out.method = methodSelect.value;
  const controls = document.getElementById('launch-controls');
  if (controls) out.controls = controls.checked;
  return { out, bad };
}

function fieldErrors(errors) {
  const byField = {};
  for (const [key, value] of Object.entries(errors || {})) {
    if (key.startsWith('config.')) byField[key.slice(7)] = Array.isArray(value) ? value.join(' ') : String(value);
  }
  return byField;
}

function showErrors(errors) {
  errorsList.innerHTML = '';
  const perField = Object.keys(errors || {}).some((k) => k.startsWith('config.'));
  // Field errors are shown at their inputs; "config" repeats them in one line for API users.
  const rest = Object.fromEntries(Object.entries(errors || {}).filter(([k]) => !k.startsWith('config.') && !(perField && k === 'config')));
  if (Object.keys(rest).length) {
    const li = document.createElement('li');
    li.textContent = errorText(rest);
    errorsList.append(li);
  }
  if (schemaForm) schemaForm.setErrors(fieldErrors(errors));
}

function scheduleEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(estimate, 250);
}

async function estimate() {
  const { out, bad } = body();
  if (Object.keys(bad).length) {
    schemaForm.setErrors(bad);
    fits = false;
    submit.disabled = true;
    estimateText.dataset.fits = 'false';
    return;
  }
  const serial = ++estimateSerial;
  const payload = { kind: data.kind, method: out.method || '', preset: out.preset, config: out.config, seed: out.seed };
  if (out.gpu_budget_bytes > 0) payload.gpu_budget_bytes = out.gpu_budget_bytes;
  if (data.source_run) payload.run = data.source_run;
  else if (data.kind === 'retrain' && data.clone) payload.run = null;
  estimateText.textContent = 'Estimating…';
  estimateText.dataset.fits = 'pending';
  const response = await fetch(data.estimate_url, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken(form), Accept: 'application/json' },
    body: JSON.stringify(payload),
  });
  if (serial !== estimateSerial) return;
  const result = await response.json().catch(() => ({}));
  if (!response.ok) {
    fits = false;
    submit.disabled = true;
    estimateText.textContent = 'The settings are not valid yet.';
    estimateText.className = 'error';
    estimateText.dataset.fits = 'false';
    showErrors(result);
    return;
  }
  showErrors({});
  const needed = result.needed_bytes;
  const budget = result.budget_bytes || 0;
  fits = budget > 0 && result.fits;
  estimateFill.style.width = `${Math.min(100, budget ? (100 * needed) / budget : 100)}%`;
  estimateFill.classList.toggle('over', !fits);
  const what = result.what === 'retrain' ? 'to retrain' : 'to search';
  estimateText.className = fits ? 'ok' : 'error';
  estimateText.textContent = budget
    ? `Needs ${fmt(needed)} ${what}, budget ${fmt(budget)}${fits ? ': fits.' : ': does not fit. Lower the patch size, batch size, layers or filters, or raise the budget.'}`
    : `Needs ${fmt(needed)} ${what}. Give a budget.`;
  const workers = result.workers || {};
  if (workers.fits === false) {
    fits = false;
    estimateText.className = 'error';
    estimateText.textContent += ` No connected worker has that much free: the most is ${fmt(workers.bound_bytes)}.`;
  }
  estimateText.dataset.fits = String(fits);
  estimateText.dataset.neededBytes = String(needed);
  showBreakdown(result);
  showDuration(result.duration, workers);
  submit.disabled = !fits;
}

function showDuration(duration, workers) {
  const el = document.getElementById('estimate-duration');
  if (!el) return;
  const connected = (workers.connected || []).map((w) => `${w.hostname} (${w.device}, ${fmt(w.free_bytes)} free)`);
  el.dataset.seconds = duration && duration.seconds !== null ? String(duration.seconds) : '';
  el.textContent = `Duration: ${duration ? duration.message : 'no measurement yet'}. `
    + (connected.length ? `Connected workers: ${connected.join(', ')}.` : 'No worker is connected now: the run waits in the queue until one is.');
}

// What the figure counts, in the engine's own terms (MemoryEstimate.details); shown under it.
const DETAIL_TEXT = {
  search_activation_bytes: 'activations autograd saves in one forward of the supernet (one batch at the search patch, fp32)',
  retrain_activation_bytes: 'activations of the retrained network (one batch at its patch)',
  memory_bytes: 'activations per sample at the patch',
  parameters: 'parameters',
};

function showBreakdown(result) {
  const list = document.getElementById('estimate-details');
  if (!list) return;
  list.replaceChildren();
  for (const [key, text] of Object.entries(DETAIL_TEXT)) {
    const v = (result.details || {})[key];
    if (typeof v !== 'number') continue;
    const li = document.createElement('li');
    li.dataset.detail = key;
    li.textContent = `${key === 'parameters' ? Number(v).toLocaleString('en') : fmt(v)}: ${text}`;
    list.append(li);
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const { out, bad } = body();
  if (Object.keys(bad).length) { schemaForm.setErrors(bad); return; }
  const payload = data.clone ? out : { ...out, dataset: data.dataset };
  submit.disabled = true;
  const response = await fetch(data.create_url, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken(form), Accept: 'application/json' },
    body: JSON.stringify(payload),
  });
  const result = await response.json().catch(() => ({}));
  if (response.ok) {
    window.location.assign(result.url);
    return;
  }
  showErrors(result);
  submit.disabled = false;
});

async function start() {
  catalogue = await getJSON(data.catalogue_url);
  if (data.kind === 'search') {
    for (const m of catalogue.methods) {
      const o = document.createElement('option');
      o.value = m.name;
      o.textContent = m.name;
      methodSelect.append(o);
    }
    methodSelect.value = initial.method || data.default_method || methodSelect.value;
    let first = true;
    const describe = () => {
      const m = currentMethod();
      document.getElementById('method-paper').textContent = m ? `${m.paper}${m.description ? ` · ${m.description}` : ''}` : '';
      fillPresets(m.presets, (first && initial.preset) || suitedPreset(m.presets, m.default_preset));
      first = false;
    };
    describe();
    methodSelect.addEventListener('change', () => { describe(); loadDefaults(false); });
  } else {
    const names = Object.keys(catalogue.retrain['x-presets'] || { paper: {} });
    fillPresets(names, initial.preset || suitedPreset(names, ['default', 'paper'].find((n) => names.includes(n)) || names[0]));
  }
  presetSelect.addEventListener('change', () => loadDefaults(false));
  [budgetInput, seedInput].forEach((el) => el.addEventListener('input', scheduleEstimate));
  // one listener for every input the schema form has or adds later (rows of a map field)
  schemaBox.addEventListener('input', scheduleEstimate);
  schemaBox.addEventListener('change', scheduleEstimate);
  await loadDefaults(true);
}

start().catch((err) => showErrors({ detail: `The form could not be built: ${err.message}` }));
