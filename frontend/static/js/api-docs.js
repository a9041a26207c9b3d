// Self-hosted API documentation: renders the OpenAPI schema served by drf-spectacular.
import { getJSON } from './http.js';

const root = document.getElementById('api-docs');

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function refName(ref) { return ref.split('/').pop(); }

function schemaText(schema, components, depth = 0) {
  if (!schema) return '';
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return depth > 1 ? name : `${name} ${schemaText(components[name], components, depth + 1)}`;
  }
  if (schema.type === 'array') return `[${schemaText(schema.items, components, depth + 1)}]`;
  if (schema.type === 'object' || schema.properties) {
    const props = Object.entries(schema.properties || {}).map(([k, v]) => {
      const req = (schema.required || []).includes(k) ? '' : '?';
      return `${k}${req}: ${v.readOnly ? 'readonly ' : ''}${schemaText(v, components, depth + 1)}`;
    });
    return `{ ${props.join(', ')} }`;
  }
  return schema.enum ? schema.enum.map((e) => JSON.stringify(e)).join(' | ') : (schema.format ? `${schema.type} (${schema.format})` : schema.type || 'any');
}

async function render() {
  const schema = await getJSON(root.dataset.schemaUrl);
  const components = (schema.components || {}).schemas || {};
  root.replaceChildren();
  const byTag = new Map();
  for (const [path, ops] of Object.entries(schema.paths || {})) {
    for (const [method, op] of Object.entries(ops)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const tag = (op.tags || ['other'])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method, op });
    }
  }
  for (const [tag, items] of byTag) {
    const section = el('section', { class: 'card api-tag' }, el('h2', {}, tag));
    for (const { path, method, op } of items) {
      const item = el('details', { class: 'api-op' });
      item.append(el('summary', {}, el('span', { class: `method method-${method}` }, method.toUpperCase()), ' ', el('code', {}, path)));
      if (op.description) item.append(el('p', {}, op.description));
      const params = (op.parameters || []).map((p) => `${p.name} (${p.in}${p.required ? ', required' : ''})`);
      if (params.length) item.append(el('p', {}, el('strong', {}, 'Parameters: '), params.join(', ')));
      const body = op.requestBody && op.requestBody.content;
      if (body) {
        for (const [type, media] of Object.entries(body)) item.append(el('p', {}, el('strong', {}, `Body (${type}): `), el('code', {}, schemaText(media.schema, components))));
      }
      for (const [code, response] of Object.entries(op.responses || {})) {
        const content = response.content ? Object.values(response.content)[0] : null;
        item.append(el('p', {}, el('strong', {}, `${code}: `), content ? el('code', {}, schemaText(content.schema, components)) : (response.description || '')));
      }
      section.append(item);
    }
    root.append(section);
  }
}

render().catch((err) => { root.replaceChildren(el('p', { class: 'error' }, `The schema could not be loaded (${err.message}).`)); });
