// Forms built from the API's own request schemas (the served OpenAPI document): one input per
// scalar field, fieldsets for nested objects, JSON for the rest. Errors the API returns carry
// JSON pointers (`/spec/port`); each is shown beside the input it points into.

import { h } from './dom.js';
import { deref } from './api.js';

const MAX_DEPTH = 3;

/** "serviceName" -> "Service name". */
export function labelOf(key) {
  const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([a-z])([0-9])/g, '$1 $2').replace(/[-_]/g, ' ').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** What kind of input a schema gets, with the schema behind `$ref`s and `oneOf: [X, null]`. */
function inputKind(shape, schema) {
  let s = schema || {};
  if (Array.isArray(s.oneOf) && s.oneOf.length === 2 && s.oneOf.some((x) => x.type === 'null')) {
    const other = s.oneOf.find((x) => x.type !== 'null');
    s = { ...other, description: s.description || other.description };
  }
  const target = deref(shape, s);
  const merged = {
    ...target,
    description: s.description || target.description,
    default: s.default ?? target.default,
    readOnly: s.readOnly || target.readOnly,
    writeOnly: s.writeOnly || target.writeOnly,
  };
  const type = Array.isArray(target.type) ? target.type.find((t) => t !== 'null') : target.type;
  if (Array.isArray(target.enum)) return { kind: 'enum', options: target.enum, schema: merged };
  if (type === 'string') {
    return { kind: target.format === 'password' ? 'secret' : 'text', schema: merged };
  }
  if (type === 'integer' || type === 'number') return { kind: 'number', schema: merged };
  if (type === 'boolean') return { kind: 'boolean', schema: merged };
  if (type === 'array') {
    const item = inputKind(shape, target.items);
    if (['text', 'number', 'enum'].includes(item.kind)) {
      return { kind: 'list', item: item.kind, schema: merged };
    }
    return { kind: 'json', schema: merged };
  }
  if (type === 'object' && target.properties && !target.additionalProperties) {
    return { kind: 'object', schema: merged };
  }
  return { kind: 'json', schema: merged };
}

const idOf = (pointer) => `field${pointer.replace(/[^A-Za-z0-9]/g, '-')}`;

function valueAt(value, pointer) {
  let v = value;
  for (const key of pointer.split('/').slice(1)) {
    if (v === undefined || v === null) return undefined;
    v = v[key];
  }
  return v;
}

function setAt(target, pointer, value) {
  const keys = pointer.split('/').slice(1);
  let t = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof t[key] !== 'object' || t[key] === null) t[key] = {};
    t = t[key];
  }
  t[keys[keys.length - 1]] = value;
}

function scalarInput(id, pointer, info, current, { required, locked }) {
  const describedBy = `${id}-hint ${id}-error`;
  const dataset = info.item ? { pointer, kind: info.kind, item: info.item } : { pointer, kind: info.kind };
  const common = { id, name: pointer, dataset, 'aria-describedby': describedBy };
  if (info.kind === 'enum' || info.kind === 'boolean') {
    const options = info.kind === 'enum' ? info.options : [true, false];
    // Always an empty choice: a required field inside an optional group must not fill the group.
    let unset = required ? '(choose)' : '(not set)';
    if (info.schema.default !== undefined) unset = `(default: ${info.schema.default})`;
    return h('select', { ...common, disabled: locked },
      h('option', { value: '' }, unset),
      options.map((o) => h('option', { value: String(o), selected: current !== undefined && String(current) === String(o) }, String(o))));
  }
  if (info.kind === 'secret') {
    return h('textarea', { ...common, rows: 4, autocomplete: 'off', spellcheck: 'false', placeholder: 'write-only: leave empty to keep the stored value' });
  }
  if (info.kind === 'json') {
    const text = current === undefined ? '' : JSON.stringify(current, null, 2);
    return h('textarea', { ...common, rows: Math.min(12, Math.max(3, text.split('\n').length)), spellcheck: 'false', class: 'json' }, text);
  }
  let text = '';
  if (info.kind === 'list') text = Array.isArray(current) ? current.join(', ') : '';
  else if (current !== undefined && current !== null) text = String(current);
  return h('input', {
    ...common,
    type: 'text',
    inputmode: info.kind === 'number' ? 'numeric' : undefined,
    value: text,
    readonly: locked,
    required,
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: info.schema.example !== undefined ? `e.g. ${info.schema.example}` : undefined,
  });
}

function hintOf(info) {
  const parts = [];
  if (info.schema.description) parts.push(info.schema.description.split('\n')[0]);
  if (info.kind === 'list') parts.push('comma-separated');
  if (info.kind === 'json') parts.push('JSON');
  if (info.schema.default !== undefined && info.kind !== 'boolean' && info.kind !== 'enum') {
    parts.push(`default: ${JSON.stringify(info.schema.default)}`);
  }
  return parts.join(' · ');
}

function fieldsOf(shape, schema, prefix, value, depth, locks) {
  const target = deref(shape, schema);
  const required = new Set(target.required || []);
  const out = [];
  for (const [key, propSchema] of Object.entries(target.properties || {})) {
    const pointer = `${prefix}/${key}`;
    const info = inputKind(shape, propSchema);
    if (info.schema.readOnly) continue;
    const current = valueAt(value, pointer);
    const label = labelOf(key) + (required.has(key) ? ' *' : '');
    if (info.kind === 'object' && depth < MAX_DEPTH) {
      const nested = fieldsOf(shape, info.schema, pointer, value, depth + 1, locks);
      out.push(h('details', { class: 'group', open: required.has(key) || current !== undefined || depth === 0 },
        h('summary', {}, labelOf(key)),
        info.schema.description ? h('p', { class: 'hint' }, info.schema.description.split('\n')[0]) : null,
        h('div', { class: 'group-fields', dataset: { pointer } }, nested)));
      continue;
    }
    const kind = info.kind === 'object' ? { ...info, kind: 'json' } : info;
    const id = idOf(pointer);
    out.push(h('div', { class: 'field' },
      h('label', { for: id }, label),
      scalarInput(id, pointer, kind, current, { required: required.has(key), locked: locks.has(pointer) }),
      h('small', { class: 'hint', id: `${id}-hint` }, hintOf(kind)),
      h('div', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' })));
  }
  return out;
}

/**
 * A form for a resource body (`{metadata, spec}`) of the given schema. `existing` fills it for an
 * edit; `metadata.name` (and `spec.version` of a composite app) cannot change in an edit.
 */
export function resourceForm(shape, bodySchema, existing, { submitLabel, onSubmit }) {
  const locks = new Set(existing ? ['/metadata/name', '/spec/version'] : []);
  const body = deref(shape, bodySchema);
  const sections = [];
  for (const [key, schema] of Object.entries(body.properties || {})) {
    const info = inputKind(shape, schema);
    if (info.kind !== 'object') continue;
    const fields = fieldsOf(shape, info.schema, `/${key}`, existing, 1, locks);
    if (fields.length) sections.push(h('fieldset', {}, h('legend', {}, labelOf(key)), fields));
  }
  const summary = h('div', { class: 'form-summary', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'btn primary' }, submitLabel);
  const form = h('form', { class: 'resource-form', novalidate: true }, summary, sections,
    h('div', { class: 'actions' }, submit));

  const clearErrors = () => {
    summary.replaceChildren();
    for (const el of form.querySelectorAll('.field-error')) el.replaceChildren();
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  };

  /** Puts each `{field, message}` beside the input its pointer is in; the rest on top. */
  const showErrors = (detail, errors) => {
    clearErrors();
    const inputs = [...form.querySelectorAll('[data-pointer]')].filter((el) => el.dataset.kind);
    const unplaced = [];
    let first = null;
    for (const error of errors) {
      const field = error.field || '';
      const owner = inputs
        .filter((el) => field === el.dataset.pointer || field.startsWith(`${el.dataset.pointer}/`))
        .sort((a, b) => b.dataset.pointer.length - a.dataset.pointer.length)[0];
      if (!owner) { unplaced.push(error); continue; }
      owner.setAttribute('aria-invalid', 'true');
      document.getElementById(`${owner.id}-error`).append(h('span', {}, error.message));
      first = first || owner;
    }
    summary.append(h('div', { class: 'alert alert-error', role: 'alert' },
      h('strong', {}, detail || 'The request was refused.'),
      unplaced.length ? h('ul', {}, unplaced.map((e) => h('li', {}, `${e.field || ''} ${e.message}`.trim()))) : null));
    (first || summary).focus?.();
  };

  /** The body the inputs describe, or local errors (unparseable JSON). */
  const collect = () => {
    const result = existing ? { metadata: { name: existing.metadata.name } } : {};
    const errors = [];
    for (const el of form.querySelectorAll('[data-pointer][data-kind]')) {
      const { pointer, kind } = el.dataset;
      const raw = el.value.trim();
      if (raw === '') continue;
      let value = raw;
      if (kind === 'number') {
        value = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : raw;
      } else if (kind === 'boolean') {
        value = raw === 'true';
      } else if (kind === 'list') {
        value = raw.split(',').map((s) => s.trim()).filter(Boolean)
          .map((s) => (/^-?\d+$/.test(s) && el.dataset.item === 'number' ? Number(s) : s));
      } else if (kind === 'json') {
        try { value = JSON.parse(raw); } catch (e) {
          errors.push({ field: pointer, message: `is not valid JSON (${e.message})` });
          continue;
        }
      } else if (kind === 'secret') {
        value = el.value;
      }
      setAt(result, pointer, value);
    }
    return { body: result, errors };
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const { body: value, errors } = collect();
    if (errors.length) { showErrors('Some fields could not be read.', errors); return; }
    submit.disabled = true;
    try {
      clearErrors();
      await onSubmit(value);
    } catch (e) {
      showErrors(e.message, e.fieldErrors || []);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
