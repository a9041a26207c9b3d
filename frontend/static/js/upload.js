// Dataset upload. Files go up resumably with the tus protocol (Uppy's core and tus plugin, from
// static/vendor/uppy): in chunks, each fsync'ed by the server, so a dropped connection resumes
// where it stopped (automatic retries, then a Resume button; Uppy also remembers the upload in
// localStorage, so choosing the same file again after a reload resumes it too). When every file
// is up, the page asks the server to make the dataset of them.
// If the Uppy bundle cannot be loaded the form is sent in one multipart request with
// XMLHttpRequest (progress bar, no resume). Without JavaScript the form posts to the page view.
import { csrfToken, errorText, formatBytes } from './http.js';

const form = document.getElementById('upload-form');
const fileInput = document.getElementById('id_files');
const box = document.getElementById('upload-progress');
const bar = document.getElementById('upload-progress-bar');
const text = document.getElementById('upload-progress-text');
const errorBox = document.getElementById('upload-error');
const submit = document.getElementById('upload-submit');
const resume = document.getElementById('upload-resume');

// Chunk size: what one request carries. The server spools a chunk to disk before appending it,
// so a smaller chunk costs less disk twice over and less to resend after a drop; a larger one
// costs fewer round trips. 16 MB keeps a 4 GB upload at 256 requests.
const CHUNK_BYTES = 16 * 1024 * 1024;

// The uploads of the last submit that all reached the server: when only the dataset step failed
// (a label list to correct, say), submitting again reuses them instead of sending the bytes again.
let uploaded = null;
const signature = (files) => files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('|');

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

function fields() {
  const data = new FormData(form);
  return {
    name: data.get('name') || '', labels: data.get('labels') || '',
    modality: data.get('modality') || '', description: data.get('description') || '',
  };
}

async function loadUppy() {
  try {
    return await import(form.dataset.uppyUrl);
  } catch (error) {
    console.warn('Uppy could not be loaded; uploading in one request instead', error);
    return null;
  }
}

// --- resumable (tus) ----------------------------------------------------------------------------
async function createDataset(uploadUrls) {
  text.textContent = 'Uploaded; creating the dataset…';
  const response = await fetch(form.dataset.finishUrl, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken(form) },
    body: JSON.stringify({ uploads: uploadUrls, ...fields() }),
  });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (response.status === 201 && body?.url) {
    form.dataset.done = 'true';
    window.location.assign(body.url);
    return;
  }
  box.hidden = true;
  showError(errorText(body) || `The dataset could not be created (${response.status}).`);
}

function uploadResumably(files, total, { Uppy, Tus }) {
  const uppy = new Uppy({ autoProceed: false, allowMultipleUploadBatches: false });
  uppy.use(Tus, {
    endpoint: form.dataset.tusUrl,
    chunkSize: Number(form.dataset.chunkBytes) || CHUNK_BYTES,
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
    headers: { 'X-CSRFToken': csrfToken(form) },
    // Kept after success: choosing the same file again finds its finished upload on the server.
    removeFingerprintOnSuccess: false,
  });
  for (const file of files) uppy.addFile({ name: file.name, type: file.type || 'application/octet-stream', data: file, source: 'form' });

  uppy.on('progress', () => {
    const sent = uppy.getFiles().reduce((sum, f) => sum + (f.progress?.bytesUploaded || 0), 0);
    setProgress(sent, total);
  });

  const finish = (result) => {
    if (result && result.failed && result.failed.length) {
      const names = result.failed.map((f) => f.name).join(', ');
      showError(`The upload stopped (${names}): the connection dropped or the server refused it. `
        + `${result.failed[0].error || ''} Press Resume to go on from where it stopped.`.trim());
      submit.disabled = true;
      resume.hidden = false;
      return;
    }
    resume.hidden = true;
    const urls = uppy.getFiles().map((f) => f.tus?.uploadUrl || f.uploadURL).filter(Boolean);
    uploaded = { signature: signature(files), urls };
    createDataset(urls);
  };

  resume.onclick = () => {
    errorBox.hidden = true;
    resume.hidden = true;
    uppy.retryAll().then(finish, (error) => showError(String(error)));
  };
  uppy.upload().then(finish, (error) => { box.hidden = true; showError(String(error)); });
}

// --- one multipart request (fallback) -------------------------------------------------------------
function uploadInOneRequest(total) {
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
  setProgress(0, total);
  xhr.send(data);
}

form?.addEventListener('submit', async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const files = Array.from(fileInput.files || []);
  if (!files.length) { showError('Choose NIfTI files or one archive to upload.'); return; }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const max = Number(form.dataset.maxBytes || 0);
  if (max && total > max) { showError(`The files add up to ${formatBytes(total)}, more than the limit of ${formatBytes(max)}.`); return; }
  box.hidden = false;
  setProgress(0, total);
  submit.disabled = true;
  fileInput.disabled = true;
  if (uploaded && uploaded.signature === signature(files)) {
    setProgress(total, total);
    createDataset(uploaded.urls);
    return;
  }
  const uppy = form.dataset.tusUrl ? await loadUppy() : null;
  if (uppy) {
    form.dataset.mode = 'resumable';
    uploadResumably(files, total, uppy);
  } else {
    form.dataset.mode = 'single-request';
    uploadInOneRequest(total);
  }
});
