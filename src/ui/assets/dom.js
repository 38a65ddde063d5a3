// Building DOM nodes. Text always goes in as text nodes, never as markup, so names and
// messages from the API cannot inject HTML.

/** h('a', {href: '#/x', class: 'btn'}, 'text', child, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces everything inside `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A status badge; fixed width in CSS so updating it never moves the layout. */
export function badge(state) {
  const text = String(state ?? 'unknown');
  return h('span', { class: `badge badge-${text.toLowerCase()}` }, text);
}

/** Shows an error in the page's alert region (announced by screen readers). */
export function alertBox(message, kind = 'error') {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
}

export function formatTime(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** Highlights YAML into spans (keys, strings, numbers, comments), line by line, as text. */
export function highlightYaml(text) {
  const pre = h('pre', { class: 'code yaml', tabindex: '0' });
  for (const line of text.split('\n')) {
    const row = h('span', { class: 'line' });
    const comment = line.match(/^(\s*)(#.*)$/);
    const key = line.match(/^(\s*(?:- )?)([^\s:#'"][^:#]*?|"[^"]*"|'[^']*')(:)(\s.*|)$/);
    if (comment) {
      row.append(comment[1], h('span', { class: 'tok-comment' }, comment[2]));
    } else if (line === '---') {
      row.append(h('span', { class: 'tok-comment' }, line));
    } else if (key) {
      row.append(key[1], h('span', { class: 'tok-key' }, key[2]), key[3], scalar(key[4]));
    } else {
      const item = line.match(/^(\s*- )(.*)$/);
      if (item) row.append(item[1], scalar(item[2]));
      else row.append(scalar(line));
    }
    pre.append(row, '\n');
  }
  return pre;
}

function scalar(text) {
  const value = text.trim();
  if (value === '') return text;
  let cls = 'tok-string';
  if (/^-?\d+(\.\d+)?$/.test(value)) cls = 'tok-number';
  else if (/^(true|false|null)$/.test(value)) cls = 'tok-literal';
  const lead = text.slice(0, text.indexOf(value));
  return h('span', {}, lead, h('span', { class: cls }, value));
}
