// The model page's test-split section while its evaluation is queued or running: asks the
// REST API every few seconds and shows the worker's progress line; once the evaluation is
// final the page reloads to show the results (or why there are none).
const section = document.getElementById("model-evaluation");
const modelId = section?.dataset.modelId;
const progress = document.getElementById("evaluation-progress");
const PENDING = new Set(["queued", "running"]);

async function poll() {
  try {
    const response = await fetch(`/api/models/${modelId}/evaluation/`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.ok) {
      const body = await response.json();
      if (!PENDING.has(body.status)) {
        window.location.reload();
        return;
      }
      if (progress && body.progress) progress.textContent = `: ${body.progress}`;
    }
  } catch (error) {
    // a dropped request: try again at the next tick
  }
  window.setTimeout(poll, 4000);
}

if (modelId && PENDING.has(section.dataset.evaluationStatus)) window.setTimeout(poll, 4000);
