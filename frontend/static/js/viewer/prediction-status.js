// Status of a queued or running prediction: polls the REST API and reloads the page when the
// prediction has finished (succeeded or failed), which then shows the viewer or the error.
import { getJSON } from '../http.js';

const badge = document.getElementById('prediction-status');
const progress = document.getElementById('prediction-progress');
const FINAL = new Set(['succeeded', 'failed']);
let done = false;

async function poll() {
  try {
    const prediction = await getJSON(badge.dataset.apiUrl);
    badge.dataset.status = prediction.status;
    badge.className = `status status-${prediction.status}`;
    badge.textContent = prediction.status.charAt(0).toUpperCase() + prediction.status.slice(1);
    if (progress) progress.textContent = prediction.progress || '';
    if (FINAL.has(prediction.status)) {
      done = true;
      window.location.reload();
      return;
    }
  } catch (err) {
    // keep polling: a transient error should not stop the refresh
  }
  if (!done) setTimeout(poll, 1000);
}

if (badge && badge.dataset.final !== 'true') setTimeout(poll, 500);
