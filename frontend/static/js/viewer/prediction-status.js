// Status of a queued or running prediction: polls the REST API and reloads the page when the
// prediction has finished (succeeded or failed), which then shows the viewer or the error.
import { getJSON } from '../http.js';

/** The worker's progress line in a researcher's words (as webapp/predictions/selectors.py
 * plain_progress: the engine's older "sliding window over (66, 78, 63) with ..." wording). */
export function plainProgress(text) {
  const line = (text || '').trim();
  const windows = line.match(/^sliding window over \(([\d, ]+)\) with \(([\d, ]+)\) windows$/);
  if (windows) return `segmenting the volume (${windows[1].split(',').map((s) => s.trim()).join(' × ')} voxels after resampling), patch by patch`;
  if (line.startsWith('preprocessing ')) return 'preparing the volume (resampling and normalising it as the training data was)';
  if (line.startsWith('writing ')) return 'writing the label map';
  if (line === 'attention maps of the transformer ops') return 'computing the attention maps of the transformer layers';
  return line;
}

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
    if (progress) progress.textContent = plainProgress(prediction.progress);
    const pending = document.getElementById('prediction-pending-text');
    if (pending) pending.textContent = prediction.status === 'queued' ? 'Waiting for a worker to take the volume.' : 'The volume is being segmented.';
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
