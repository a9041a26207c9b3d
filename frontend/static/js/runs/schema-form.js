// Builds form inputs from a JSON Schema (the engine's config schema), so a new search method needs
// no web code: integers/numbers with min/max, enums as selects, booleans as checkboxes, arrays of
// fixed length as one input per item, other arrays as comma-separated lists, nullable values.

function variants(prop) {
  if (Array.isArray(prop.anyOf)) {
    const nonNull = prop.anyOf.filter((v) => v.type !== 'null');
    return { schema: { ...prop, ...(nonNull[0] || {}), anyOf: undefined }, nullable: nonNull.length < prop.anyOf.length };
  }
  if (Array.isArray(prop.type)) {
    const types = prop.type.filter((t) => t !== 'null');
    return { schema: { ...prop, type: types[0] }, nullable: types.length < prop.type.length };
  }
  return { schema: prop, nullable: false };
}

function numberInput(name, schema, value) {
  const input = document.createElement('input');
  input.type = 'number';
  input.name = name;
  if (schema.minimum !== undefined) input.min = schema.minimum;
  if (schema.maximum !== undefined) input.max = schema.maximum;
  input.step = schema.type === 'integer' ? (schema.multipleOf || 1) : 'any';
  if (value !== null && value !== undefined) input.value = value;
  return input;
}

function parseNumber(text, type) {
  if (text === '' || text === null) return null;
  const n = Number(text);
  if (!Number.isFinite(n)) return NaN;
  return type === 'integer' ? Math.trunc(n) : n;
}

/** One field: returns {element, read() -> value, setError(text)}. */
function field(name, prop, value) {
  const { schema, nullable } = variants(prop);
  const wrap = document.createElement('div');
  wrap.className = 'schema-field';
  wrap.dataset.field = name;
  const label = document.createElement('label');
  label.textContent = prop.title || name;
  label.htmlFor = `cfg-${name}`;
  wrap.append(label);
  let read;
  const enumValues = schema.enum || (schema.items && schema.items.enum && null);
  if (enumValues) {
    const select = document.createElement('select');
    select.id = `cfg-${name}`;
    select.name = name;
    for (const option of enumValues) {
      const o = document.createElement('option');
      o.value = JSON.stringify(option);
      o.textContent = String(option);
      if (JSON.stringify(option) === JSON.stringify(value)) o.selected = true;
      select.append(o);
    }
    wrap.append(select);
    read = () => JSON.parse(select.value);
  } else if (schema.type === 'boolean') {
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.id = `cfg-${name}`;
    input.name = name;
    input.checked = Boolean(value);
    label.prepend(input);
    label.classList.add('checkbox');
    read = () => input.checked;
  } else if (schema.type === 'integer' || schema.type === 'number') {
    const input = numberInput(name, schema, value);
    input.id = `cfg-${name}`;
    wrap.append(input);
    read = () => {
      const v = parseNumber(input.value, schema.type);
      return v === null && !nullable ? NaN : v;
    };
  } else if (schema.type === 'array') {
    const items = schema.items || {};
    const fixed = schema.minItems !== undefined && schema.minItems === schema.maxItems ? schema.minItems
      : (Array.isArray(value) && name.endsWith('_size') ? value.length : null);
    if (fixed) {
      const row = document.createElement('div');
      row.className = 'array-row';
      const inputs = [];
      for (let i = 0; i < fixed; i += 1) {
        const input = numberInput(`${name}.${i}`, items, Array.isArray(value) ? value[i] : null);
        if (i === 0) input.id = `cfg-${name}`;
        input.setAttribute('aria-label', `${prop.title || name} ${i + 1}`);
        inputs.push(input);
        row.append(input);
      }
      wrap.append(row);
      read = () => {
        const values = inputs.map((inp) => parseNumber(inp.value, items.type));
        if (values.every((v) => v === null)) return nullable ? null : NaN;
        return values;
      };
    } else {
      const input = document.createElement('input');
      input.type = 'text';
      input.id = `cfg-${name}`;
      input.name = name;
      input.value = Array.isArray(value) ? value.join(', ') : '';
      input.placeholder = 'numbers separated by commas';
      wrap.append(input);
      read = () => {
        const text = input.value.trim();
        if (!text) return nullable ? null : [];
        return text.split(/[\s,]+/).filter(Boolean).map((t) => parseNumber(t, items.type || 'number'));
      };
    }
  } else {
    const input = document.createElement('input');
    input.type = 'text';
    input.id = `cfg-${name}`;
    input.name = name;
    input.value = value ?? '';
    wrap.append(input);
    read = () => input.value;
  }
  if (prop.description) {
    const help = document.createElement('p');
    help.className = 'help';
    help.textContent = prop.description;
    wrap.append(help);
  }
  const error = document.createElement('p');
  error.className = 'error field-error';
  error.hidden = true;
  wrap.append(error);
  return {
    element: wrap,
    read,
    setError(text) { error.textContent = text || ''; error.hidden = !text; wrap.classList.toggle('invalid', Boolean(text)); },
  };
}

/**
 * Render ``schema`` into ``container`` with ``values``; returns {read() -> {name: value},
 * setErrors({name: text}), fields}. ``skip`` names properties not to show (e.g. seed).
 */
export function renderSchemaForm(container, schema, values = {}, { skip = [] } = {}) {
  container.querySelectorAll('.schema-field, .muted').forEach((el) => el.remove());
  const fields = {};
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    if (skip.includes(name)) continue;
    const value = name in values ? values[name] : prop.default;
    fields[name] = field(name, prop, value);
    container.append(fields[name].element);
  }
  return {
    fields,
    read() {
      const out = {};
      const bad = {};
      for (const [name, f] of Object.entries(fields)) {
        const v = f.read();
        if (Number.isNaN(v) || (Array.isArray(v) && v.some((x) => Number.isNaN(x)))) bad[name] = 'Enter a number.';
        else out[name] = v;
      }
      return { values: out, bad };
    },
    setErrors(errors = {}) {
      for (const [name, f] of Object.entries(fields)) f.setError(errors[name] || '');
    },
  };
}
