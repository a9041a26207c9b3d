// Builds form inputs from a JSON Schema (a method's config schema or the retrain schema), so a
// new search method needs no web code. It renders exactly the constructs listed in
// docs/PLUGIN-SURFACE.md "What the launch form renders" (tests/contract/schema_constructs.py
// refuses a schema that uses anything else):
//   integer / number (minimum, maximum, multipleOf), boolean, string, enum (select);
//   arrays of integer / number / string (a comma-separated list), enum arrays (checkboxes),
//   fixed-length arrays (prefixItems, or minItems = maxItems: one input per item);
//   objects (a nested fieldset, recursive; additionalProperties: rows of name and value);
//   nullable X (anyOf [X, {type: null}]): a "none / automatic" toggle;
//   title, description (help under the field), default, x-advanced (folded into "Advanced").
// Values read back into the JSON the API takes; fields are addressed by dotted paths
// (`loss.weights`), the form the API's `config.<path>` errors use.

const idOf = (path) => `cfg-${path.join('__')}`;
const keyOf = (path) => path.join('.');

/** Split ``prop`` into the schema of its value and whether null is allowed. */
function variants(prop) {
  if (Array.isArray(prop.anyOf)) {
    const nonNull = prop.anyOf.filter((v) => v.type !== 'null');
    const { anyOf, ...rest } = prop;
    return { schema: { ...rest, ...(nonNull[0] || {}) }, nullable: nonNull.length < prop.anyOf.length };
  }
  if (Array.isArray(prop.type)) {
    const types = prop.type.filter((t) => t !== 'null');
    return { schema: { ...prop, type: types[0] }, nullable: types.length < prop.type.length };
  }
  return { schema: prop, nullable: false };
}

function parseNumber(text, type) {
  if (text === '' || text === null || text === undefined) return null;
  const n = Number(text);
  if (!Number.isFinite(n)) return NaN;
  return type === 'integer' ? Math.trunc(n) : n;
}

function element(tag, props = {}) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v !== undefined && v !== null) el[k] = v;
  }
  return el;
}

/**
 * One scalar input (number, text, checkbox or enum select) for ``schema``.
 * @returns {{input: HTMLElement, read(bad: object, key: string) -> any, set(value)}}
 */
function scalarInput(schema, value, id) {
  if (Array.isArray(schema.enum)) {
    const select = element('select', { id });
    for (const option of schema.enum) {
      const o = element('option', { value: JSON.stringify(option), textContent: String(option) });
      select.append(o);
    }
    const set = (v) => { if (schema.enum.some((o) => JSON.stringify(o) === JSON.stringify(v))) select.value = JSON.stringify(v); };
    set(value);
    return { input: select, read: () => JSON.parse(select.value), set };
  }
  if (schema.type === 'boolean') {
    const input = element('input', { type: 'checkbox', id, checked: Boolean(value) });
    return { input, read: () => input.checked, set: (v) => { input.checked = Boolean(v); } };
  }
  if (schema.type === 'integer' || schema.type === 'number') {
    const input = element('input', { type: 'number', id });
    if (schema.minimum !== undefined) input.min = schema.minimum;
    if (schema.maximum !== undefined) input.max = schema.maximum;
    input.step = schema.multipleOf || (schema.type === 'integer' ? 1 : 'any');
    const set = (v) => { input.value = v === null || v === undefined ? '' : String(v); };
    set(value);
    return {
      input, set,
      read(bad, key) {
        const v = parseNumber(input.value, schema.type);
        if (v === null || Number.isNaN(v)) { bad[key] = 'Enter a number.'; return undefined; }
        return v;
      },
    };
  }
  const input = element('input', { type: 'text', id });
  const set = (v) => { input.value = v ?? ''; };
  set(value);
  return { input, read: () => input.value, set };
}

function itemsCountProblem(schema, n) {
  if (schema.minItems !== undefined && n < schema.minItems) return `Give at least ${schema.minItems} value${schema.minItems === 1 ? '' : 's'}.`;
  if (schema.maxItems !== undefined && n > schema.maxItems) return `Give at most ${schema.maxItems} value${schema.maxItems === 1 ? '' : 's'}.`;
  return null;
}

/** An array: checkboxes (enum items), one input per item (fixed length) or a comma-separated list. */
function arrayInput(schema, value, id, label) {
  const items = schema.items || {};
  const values = Array.isArray(value) ? value : [];
  if (Array.isArray(items.enum)) {
    const box = element('div', { className: 'enum-checks', id, role: 'group' });
    const checks = items.enum.map((option, i) => {
      const check = element('input', { type: 'checkbox', id: `${id}__${i}`, value: JSON.stringify(option) });
      check.checked = values.some((v) => JSON.stringify(v) === JSON.stringify(option));
      const l = element('label', { className: 'checkbox', htmlFor: check.id });
      l.append(check, document.createTextNode(` ${option}`));
      box.append(l);
      return check;
    });
    return {
      input: box,
      read(bad, key) {
        const picked = checks.filter((c) => c.checked).map((c) => JSON.parse(c.value));
        const problem = itemsCountProblem(schema, picked.length);
        if (problem) bad[key] = problem;
        return picked;
      },
    };
  }
  const fixed = Array.isArray(schema.prefixItems) ? schema.prefixItems.length
    : (schema.minItems !== undefined && schema.minItems === schema.maxItems ? schema.minItems : null);
  if (fixed) {
    const row = element('div', { className: 'array-row' });
    const parts = [];
    for (let i = 0; i < fixed; i += 1) {
      const itemSchema = Array.isArray(schema.prefixItems) ? schema.prefixItems[i] : items;
      const part = scalarInput(itemSchema, values[i] ?? null, i === 0 ? id : `${id}__${i}`);
      part.input.setAttribute('aria-label', `${label} ${i + 1}`);
      parts.push(part);
      row.append(part.input);
    }
    return {
      input: row,
      read(bad, key) {
        const inner = {};
        const out = parts.map((p, i) => p.read(inner, `${key}.${i}`));
        if (Object.keys(inner).length) bad[key] = 'Enter a value in every box.';
        return out;
      },
    };
  }
  const numeric = items.type === 'integer' || items.type === 'number';
  const input = element('input', {
    type: 'text', id, value: values.join(', '),
    placeholder: numeric ? 'numbers separated by commas' : 'values separated by commas',
  });
  return {
    input,
    read(bad, key) {
      const text = input.value.trim();
      const parts = text ? (numeric ? text.split(/[\s,]+/) : text.split(',').map((t) => t.trim())).filter((t) => t !== '') : [];
      const out = numeric ? parts.map((t) => parseNumber(t, items.type)) : parts;
      if (out.some((v) => Number.isNaN(v))) bad[key] = 'Enter numbers separated by commas.';
      const problem = itemsCountProblem(schema, out.length);
      if (problem) bad[key] = problem;
      return out;
    },
  };
}

/** Rows of (name, value) for an object's additionalProperties schema, with add / remove. */
function mapInput(valueSchema, value, path, registry) {
  const box = element('div', { className: 'map-rows', id: `${idOf(path)}__rows` });
  const rows = [];
  const addRow = (name, v) => {
    const row = element('div', { className: 'map-row' });
    const nameInput = element('input', { type: 'text', className: 'map-key', value: name, placeholder: 'name' });
    nameInput.setAttribute('aria-label', `${keyOf(path)} name`);
    const valuePart = field([...path, `item${rows.length}`], { ...valueSchema, title: 'value' }, v, registry, { bare: true });
    const remove = element('button', { type: 'button', className: 'small map-remove', textContent: '×' });
    remove.setAttribute('aria-label', 'remove');
    const entry = { nameInput, valuePart, row };
    remove.addEventListener('click', () => { rows.splice(rows.indexOf(entry), 1); row.remove(); box.dispatchEvent(new Event('change', { bubbles: true })); });
    row.append(nameInput, valuePart.element, remove);
    rows.push(entry);
    box.insertBefore(row, add);
  };
  const add = element('button', { type: 'button', className: 'small map-add', textContent: 'Add' });
  add.addEventListener('click', () => addRow('', valueSchema.default ?? null));
  box.append(add);
  for (const [name, v] of Object.entries(value && typeof value === 'object' ? value : {})) addRow(name, v);
  return {
    element: box,
    read(bad) {
      const out = {};
      for (const { nameInput, valuePart } of rows) {
        const name = nameInput.value.trim();
        if (!name) continue;
        out[name] = valuePart.read(bad, `${keyOf(path)}.${name}`);
      }
      return out;
    },
  };
}

/**
 * A nested object: its properties (x-advanced ones folded into "Advanced") and any
 * additionalProperties rows. Registers each field under its dotted path in ``registry``.
 */
function objectFields(container, schema, values, path, registry, skip = []) {
  const children = [];
  let advanced = null;
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    if (!path.length && skip.includes(name)) continue;
    const value = values && name in values ? values[name] : prop.default;
    const child = field([...path, name], prop, value, registry);
    children.push([name, child]);
    if (prop['x-advanced']) {
      if (!advanced) {
        advanced = element('details', { className: 'schema-advanced' });
        advanced.append(element('summary', { textContent: 'Advanced' }));
      }
      advanced.append(child.element);
    } else {
      container.append(child.element);
    }
  }
  if (advanced) container.append(advanced);
  let extra = null;
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    const known = new Set(Object.keys(schema.properties || {}));
    const rest = Object.fromEntries(Object.entries(values || {}).filter(([k]) => !known.has(k)));
    extra = mapInput(schema.additionalProperties, rest, path, registry);
    container.append(extra.element);
  }
  return (bad) => {
    const out = {};
    for (const [name, child] of children) {
      const v = child.read(bad, keyOf([...path, name]));
      if (v !== undefined) out[name] = v;
    }
    if (extra) Object.assign(out, extra.read(bad));
    return out;
  };
}

/**
 * One field at ``path`` (a list of property names): label, input(s), help, error line, and the
 * "none" toggle of a nullable field.
 * @returns {{element: HTMLElement, read(bad: object, key: string) -> any}}  ``read`` returns the
 *   JSON value (undefined when invalid, with a message in ``bad[key]``)
 */
function field(path, prop, value, registry, { bare = false } = {}) {
  const { schema, nullable } = variants(prop);
  const key = keyOf(path);
  const id = idOf(path);
  const title = prop.title || path[path.length - 1];
  const isObject = schema.type === 'object';
  const wrap = element(isObject ? 'fieldset' : 'div', { className: isObject ? 'schema-field schema-object' : 'schema-field', dataset: { field: key } });
  if (bare) wrap.classList.add('bare');
  const label = element(isObject ? 'legend' : 'label', { textContent: title });
  if (!isObject) label.htmlFor = id;
  if (!bare) wrap.append(label);
  let part;
  if (isObject) {
    const inner = element('div', { className: 'schema-object-fields' });
    part = { input: inner, read: objectFields(inner, schema, value, path, registry) };
  } else if (schema.type === 'array') {
    part = arrayInput(schema, value, id, title);
  } else {
    part = scalarInput(schema, value, id);
    if (schema.type === 'boolean' && !Array.isArray(schema.enum)) {
      label.prepend(part.input);
      label.classList.add('checkbox');
    }
  }
  if (!(schema.type === 'boolean' && !Array.isArray(schema.enum)) || bare) wrap.append(part.input);
  let none = null;
  if (nullable) {
    none = element('input', { type: 'checkbox', id: `${id}__none`, className: 'null-toggle', checked: value === null || value === undefined });
    const noneLabel = element('label', { className: 'checkbox null-label', htmlFor: none.id });
    noneLabel.append(none, document.createTextNode(` ${prop['x-null-label'] || 'none (automatic)'}`));
    wrap.append(noneLabel);
    const sync = () => {
      wrap.classList.toggle('is-null', none.checked);
      part.input.querySelectorAll('input, select, button').forEach((el) => { el.disabled = none.checked; });
      if (part.input.matches('input, select')) part.input.disabled = none.checked;
    };
    none.addEventListener('change', sync);
    sync();
  }
  if (prop.description) wrap.append(element('p', { className: 'help', textContent: prop.description }));
  const error = element('p', { className: 'error field-error', hidden: true });
  wrap.append(error);
  const entry = {
    element: wrap,
    read(bad, at = key) {
      if (none && none.checked) return null;
      const value = part.read(bad, at);
      return at in bad ? undefined : value; // a field with a problem is not sent
    },
    setError(text) { error.textContent = text || ''; error.hidden = !text; wrap.classList.toggle('invalid', Boolean(text)); },
  };
  if (!bare) registry[key] = entry;
  return entry;
}

/**
 * Render ``schema`` into ``container`` with ``values``.
 * @param {HTMLElement} container  keeps its <legend>; everything else is replaced
 * @param {object} schema  JSON Schema of type object
 * @param {object} values  current values (missing ones take the property's default)
 * @param {{skip?: string[]}} options  top-level properties not to show (e.g. seed)
 * @returns {{fields: object, read() -> {values: object, bad: object}, setErrors(errors: object)}}
 *   ``bad`` and ``errors`` map dotted field paths to messages; an error for a path with no
 *   field of its own is shown at the nearest enclosing field
 */
export function renderSchemaForm(container, schema, values = {}, { skip = [] } = {}) {
  [...container.children].forEach((child) => { if (child.localName !== 'legend') child.remove(); });
  const fields = {};
  const read = objectFields(container, schema, values, [], fields, skip);
  return {
    fields,
    read() {
      const bad = {};
      const out = read(bad);
      return { values: out, bad };
    },
    setErrors(errors = {}) {
      const shown = {};
      for (const [path, text] of Object.entries(errors)) {
        let at = path;
        while (at && !(at in fields)) at = at.includes('.') ? at.slice(0, at.lastIndexOf('.')) : '';
        if (at) shown[at] = shown[at] ? `${shown[at]} ${text}` : text;
      }
      for (const [path, f] of Object.entries(fields)) f.setError(shown[path] || '');
    },
  };
}
