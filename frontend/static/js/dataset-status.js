// Live status of a dataset that is importing: a WebSocket pushes changes, and the REST API is
// polled as a fallback. When the import ends (ready or invalid) the page reloads to show it.
import { getJSON } from './http.js';

const badge = document.getElementById('dataset-status');
const FINAL = new Set(['ready', 'invalid']);
let reloading = false;

function update(status) {
  if (!status || reloading) return;
  badge.dataset.status = status;
  badge.className = `status status-${status}`;
  badge.textContent = status.charAt(0).toUpperCase() + status.slice(1);
  if (FINAL.has(status)) {
    reloading = true;
    window.location.reload();
  }
}

function connect() {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/datasets/${badge.dataset.datasetId}/`);
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'status') update(message.dataset.status);
  });
  socket.addEventListener('close', (event) => {
    if (!reloading && event.code !== 4403) setTimeout(connect, 3000);
  });
}

async function poll() {
  try {
    const dataset = await getJSON(badge.dataset.apiUrl);
    update(dataset.status);
  } catch (err) {
    // keep polling: a transient error should not stop the refresh
  }
  if (!reloading) setTimeout(poll, 2000);
}

if (badge && badge.dataset.final !== 'true') {
  try { connect(); } catch (err) { /* polling covers it */ }
  setTimeout(poll, 1500);
}
