// Small helpers shared by the page modules.

/** The CSRF token Django put in the page (form field) or in its cookie. */
export function csrfToken(root = document) {
  const field = root.querySelector('input[name="csrfmiddlewaretoken"]');
  if (field) return field.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : '';
}

/** GET a JSON document with the session cookie. */
export async function getJSON(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return response.json();
}

/** Turn a DRF error body into one readable line. */
export function errorText(body) {
  if (!body || typeof body !== 'object') return String(body ?? 'The request failed.');
  const parts = [];
  for (const [key, value] of Object.entries(body)) {
    const text = Array.isArray(value) ? value.join(' ') : typeof value === 'object' ? errorText(value) : String(value);
    parts.push(key === 'detail' || key === 'non_field_errors' ? text : `${key}: ${text}`);
  }
  return parts.join(' ') || 'The request failed.';
}

export function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
