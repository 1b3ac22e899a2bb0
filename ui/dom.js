/** Small DOM helpers: elements built with textContent only, never from HTML strings. */
export const $ = (selector) => document.querySelector(selector);

/** `el('td', { class: 'num' }, 'text', child)`: an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces a container's children. */
export function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null));
}

/** A key/value table body. */
export function kvRows(table, pairs) {
  fill(
    table,
    pairs.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v))),
  );
}

/** A table body with a placeholder row when there is nothing to show. */
export function rows(tbody, items, columns, render) {
  if (items.length === 0) {
    fill(tbody, el('tr', {}, el('td', { class: 'empty', colspan: columns }, 'Nothing to show')));
    return;
  }
  fill(tbody, items.map(render));
}

export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? String(iso)
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC');
}

export function formatCount(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** Seconds as Vault writes durations: "90d", "12h", "30m", "45s"; "0" when off. */
export function formatDuration(seconds) {
  if (!seconds) return '0';
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ]) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
