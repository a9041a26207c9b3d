// Dataset upload with a progress bar: the form is sent to the REST API with XMLHttpRequest
// (fetch cannot report upload progress). Without JavaScript the form posts to the page view.
import { csrfToken, errorText, formatBytes } from './http.js';

const form = document.getElementById('upload-form');
const fileInput = document.getElementById('id_files');
const box = document.getElementById('upload-progress');
const bar = document.getElementById('upload-progress-bar');
const text = document.getElementById('upload-progress-text');
const errorBox = document.getElementById('upload-error');
const submit = document.getElementById('upload-submit');

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  submit.disabled = false;
  fileInput.disabled = false;
}

function setProgress(loaded, total) {
  const pct = total ? Math.floor((loaded / total) * 100) : 0;
  bar.value = pct;
  text.textContent = `${pct}% · ${formatBytes(loaded)} of ${formatBytes(total)}`;
}

form?.addEventListener('submit', (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const files = Array.from(fileInput.files || []);
  if (!files.length) { showError('Choose NIfTI files or one archive to upload.'); return; }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const max = Number(form.dataset.maxBytes || 0);
  if (max && total > max) { showError(`The files add up to ${formatBytes(total)}, more than the limit of ${formatBytes(max)}.`); return; }

  const data = new FormData(form);  // includes files, name, labels, modality, description
  const xhr = new XMLHttpRequest();
  xhr.open('POST', form.dataset.apiUrl);
  xhr.setRequestHeader('X-CSRFToken', csrfToken(form));
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.responseType = 'json';
  xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) setProgress(e.loaded, e.total); });
  xhr.upload.addEventListener('load', () => { bar.value = 100; text.textContent = 'Uploaded; starting the import…'; });
  xhr.addEventListener('load', () => {
    if (xhr.status === 202 || xhr.status === 201) {
      form.dataset.done = 'true';
      window.location.assign(xhr.response.url);
    } else {
      box.hidden = true;
      showError(errorText(xhr.response) || `Upload failed (${xhr.status}).`);
    }
  });
  xhr.addEventListener('error', () => { box.hidden = true; showError('The upload was interrupted. Check the connection and try again.'); });
  box.hidden = false;
  setProgress(0, total);
  submit.disabled = true;
  fileInput.disabled = true;
  xhr.send(data);
});
