/** The console's screens. Each `show*` loads what it needs from the API and renders it. */
import { api, list } from './api.js';
import { lineChart } from './chart.js';
import { $, el, fill, formatCount, formatDuration, formatTime, kvRows, rows } from './dom.js';

/** Shows a message above the current screen: an error (default) or, with `info`, a confirmation. */
export function notify(message, info = false) {
  const box = $('#notice');
  box.textContent = message;
  box.classList.toggle('info', info);
  box.hidden = message === '';
}

/** Runs an action, reporting a refusal as "<what> refused: <server message>". */
export async function attempt(what, fn) {
  try {
    const out = await fn();
    return out;
  } catch (err) {
    const refused = err && (err.status === 403 || err.status === 400 || err.status === 404);
    const message = err && err.message ? err.message : String(err);
    notify(`${what} ${refused ? 'refused' : 'failed'}: ${message}`);
    // Sealed meanwhile (by another operator, or another node's root-key rotation): back to the unseal screen.
    if (err && err.status === 503 && message.startsWith('ERR_SEALED')) sealedListener?.();
    return undefined;
  }
}

let sealedListener;

/** Called when a request finds the node sealed. */
export function onSealed(listener) {
  sealedListener = listener;
}

// ---- seal ----

export function renderSealTable(status) {
  kvRows($('#seal-table'), [
    ['State', status.sealed ? 'sealed' : 'unsealed'],
    ['Seal type', status.type],
    ['Threshold', `${status.t} of ${status.n} shares`],
    ['Unseal progress', `${status.progress} of ${status.t}`],
    ['Version', status.version],
  ]);
}

export function renderUnsealProgress(status) {
  const bar = $('#unseal-progress');
  bar.max = Math.max(1, status.t);
  bar.value = status.progress;
  $('#unseal-progress-text').textContent = `${status.progress} of ${status.t} shares`;
}

// ---- keys ----

let selectedKey = '';
const MAX_KEYS_SHOWN = 200;

function usageCell(key) {
  const bound = key.max_encryptions_per_version ?? 0;
  const used = (key.encryptions_reserved ?? {})[String(key.latest_version)] ?? 0;
  if (key.supports_encryption !== true)
    return el('td', {}, el('span', { class: 'muted' }, 'not an encryption key'));
  if (bound === 0) return el('td', {}, `${formatCount(used)} `, el('span', { class: 'muted' }, '(no bound)'));
  const pct = (used / bound) * 100;
  return el(
    'td',
    { class: 'num' },
    el('meter', { min: 0, max: bound, low: bound * 0.5, high: bound * 0.8, optimum: 0, value: used }),
    `${formatCount(used)} of ${formatCount(bound)} (${pct < 0.01 && used > 0 ? '<0.01' : pct.toFixed(2)}%)`,
  );
}

export async function showKeys() {
  const names = await attempt('Listing keys', () => list('/v1/transit/keys'));
  if (names === undefined) return;
  // One read per key (each audited like any other), eight at a time, for the first 200 keys.
  const shown = names.slice(0, MAX_KEYS_SHOWN);
  const keys = [];
  for (let i = 0; i < shown.length; i += 8) {
    const batch = await Promise.all(
      shown
        .slice(i, i + 8)
        .map((name) =>
          attempt(`Reading key ${name}`, () => api('GET', `/v1/transit/keys/${encodeURIComponent(name)}`)),
        ),
    );
    for (const r of batch) if (r) keys.push(r.data);
  }
  if (names.length > shown.length)
    notify(`Showing the first ${shown.length} of ${names.length} keys; the CLI lists them all.`, true);
  rows($('#keys-table tbody'), keys, 6, (k) =>
    el(
      'tr',
      { 'data-key': k.name, class: k.name === selectedKey ? 'selected' : undefined },
      el('td', {}, el('strong', {}, k.name)),
      el('td', {}, k.type),
      el(
        'td',
        { class: 'num', 'data-field': 'versions' },
        `v${k.latest_version}`,
        el('span', { class: 'muted' }, ` (${Object.keys(k.keys).length} kept)`),
      ),
      el('td', {}, k.next_rotation ? formatTime(k.next_rotation) : el('span', { class: 'muted' }, 'off')),
      usageCell(k),
      el(
        'td',
        { class: 'row-actions' },
        el(
          'button',
          {
            type: 'button',
            class: 'secondary small',
            'data-action': 'details',
            onclick: () => selectKey(k.name),
          },
          'Details',
        ),
        el(
          'button',
          { type: 'button', class: 'small', 'data-action': 'rotate', onclick: () => rotateKey(k.name) },
          'Rotate',
        ),
      ),
    ),
  );
  if (selectedKey !== '' && !names.includes(selectedKey)) selectedKey = '';
  if (selectedKey !== '') await selectKey(selectedKey, false);
}

async function rotateKey(name) {
  const r = await attempt(`Rotate of ${name}`, () =>
    api('POST', `/v1/transit/keys/${encodeURIComponent(name)}/rotate`, {}),
  );
  if (!r) return;
  notify(`Key ${name} rotated to version ${r.data.latest_version}.`, true);
  selectedKey = name;
  await showKeys();
}

async function selectKey(name, reload = true) {
  selectedKey = name;
  for (const tr of document.querySelectorAll('#keys-table tbody tr'))
    tr.classList.toggle('selected', tr.dataset.key === name);
  const r = await attempt(`Reading key ${name}`, () =>
    api('GET', `/v1/transit/keys/${encodeURIComponent(name)}`),
  );
  if (!r) return;
  const k = r.data;
  $('#key-detail').hidden = false;
  $('#key-detail-title').textContent = `${k.name} · ${k.type}`;
  const versions = Object.keys(k.keys)
    .map(Number)
    .sort((a, b) => b - a);
  rows($('#key-versions tbody'), versions, 3, (v) => {
    const entry = k.keys[String(v)];
    const created = typeof entry === 'number' ? new Date(entry * 1000).toISOString() : entry.creation_time;
    return el(
      'tr',
      {},
      el(
        'td',
        { class: 'num' },
        `v${v}`,
        v === k.latest_version ? el('span', { class: 'tag' }, 'latest') : null,
      ),
      el('td', {}, formatTime(created)),
      el('td', { class: 'num' }, formatCount((k.encryptions_reserved ?? {})[String(v)] ?? 0)),
    );
  });
  const form = $('#key-config');
  form.elements.min_decryption_version.value = k.min_decryption_version;
  form.elements.min_encryption_version.value = k.min_encryption_version;
  form.elements.auto_rotate_period.value = formatDuration(k.auto_rotate_period);
  form.elements.deletion_allowed.checked = k.deletion_allowed === true;
  if (reload) $('#key-detail').scrollIntoView({ block: 'nearest' });
}

export function bindKeys() {
  $('#key-create').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = form.elements.name.value.trim();
    const body = { type: form.elements.type.value };
    const period = form.elements.period.value.trim();
    if (period !== '') body.auto_rotate_period = period;
    const r = await attempt(`Creating key ${name}`, () =>
      api('POST', `/v1/transit/keys/${encodeURIComponent(name)}`, body),
    );
    if (!r) return;
    form.reset();
    notify(`Key ${name} created.`, true);
    selectedKey = name;
    await showKeys();
  });
  $('#key-config').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (selectedKey === '') return;
    const f = event.currentTarget.elements;
    const body = { deletion_allowed: f.deletion_allowed.checked };
    if (f.min_decryption_version.value !== '')
      body.min_decryption_version = Number(f.min_decryption_version.value);
    if (f.min_encryption_version.value !== '')
      body.min_encryption_version = Number(f.min_encryption_version.value);
    if (f.auto_rotate_period.value.trim() !== '') body.auto_rotate_period = f.auto_rotate_period.value.trim();
    const name = selectedKey;
    const r = await attempt(`Configuration of ${name}`, () =>
      api('POST', `/v1/transit/keys/${encodeURIComponent(name)}/config`, body),
    );
    if (!r) return;
    notify(`Configuration of ${name} saved.`, true);
    await showKeys();
  });
}

// ---- usage ----

// Requests that named no key, and refused ones (counted without the name they asked for).
const labelOf = (name) => (name === '' ? '(no key or refused)' : name);
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function seriesOf(windows, buckets, field) {
  const names = new Set(windows.flatMap((w) => Object.keys(w[field])));
  const at = new Map(windows.map((w) => [Date.parse(w.start), w[field]]));
  return [...names].map((name) => ({
    name: labelOf(name),
    values: buckets.map((b) => (at.get(b) ?? {})[name] ?? 0),
  }));
}

export async function showUsage() {
  const r = await attempt('Reading usage', () => api('GET', '/v1/sys/usage'));
  if (!r) return;
  const { window_ms: step, windows, warnings, warning_counts: counts } = r.data;
  const buckets = [];
  if (windows.length > 0) {
    const last = Math.max(Date.parse(windows.at(-1).start), Date.now() - (Date.now() % step));
    // At least 15 windows, so a quiet past shows as zeros before the latest traffic; at most 60.
    const first = Math.max(Math.min(Date.parse(windows[0].start), last - 14 * step), last - 59 * step);
    for (let t = first; t <= last; t += step) buckets.push(t);
  }
  $('#usage-caption').textContent =
    `Requests counted by this node, per ${Math.round(step / 1000)}-second window (the last ${buckets.length}); refreshed every 5 seconds while shown.`;
  lineChart($('#chart-keys'), buckets, seriesOf(windows, buckets, 'by_key'), { label: 'requests by key' });
  lineChart($('#chart-callers'), buckets, seriesOf(windows, buckets, 'by_caller'), {
    label: 'requests by caller',
  });
  $('#warning-counts').textContent =
    `Raised since start: ${plural(counts.rate_spike ?? 0, 'rate spike', 'rate spikes')}, ${plural(counts.denied_burst ?? 0, 'burst', 'bursts')} of denied requests.`;
  rows($('#warnings-table tbody'), [...warnings].reverse(), 4, (w) =>
    el(
      'tr',
      {},
      el('td', {}, formatTime(w.window_start)),
      el(
        'td',
        {},
        el(
          'span',
          { class: w.kind === 'denied_burst' ? 'tag bad' : 'tag warn' },
          w.kind === 'denied_burst' ? 'denied burst' : 'rate spike',
        ),
      ),
      el('td', {}, w.caller),
      el('td', {}, w.message),
    ),
  );
}

// ---- audit ----

export async function showAudit() {
  const r = await attempt('Reading the audit log', () => api('GET', '/v1/sys/audit/query?limit=25'));
  if (!r) return;
  rows($('#audit-table tbody'), [...r.data.entries].reverse(), 6, (e) =>
    el(
      'tr',
      {},
      el('td', { class: 'num' }, e.seq),
      el('td', {}, formatTime(e.time)),
      el('td', {}, e.op),
      el('td', {}, e.key ?? ''),
      el('td', {}, e.caller),
      el('td', {}, el('span', { class: e.outcome === 'ok' ? 'tag' : 'tag bad' }, e.outcome)),
    ),
  );
}

export function bindAudit() {
  $('#audit-verify').addEventListener('click', async () => {
    const box = $('#audit-result');
    const r = await attempt('Audit verification', () => api('GET', '/v1/sys/audit/verify'));
    if (!r) return;
    const v = r.data;
    box.hidden = false;
    box.className = `result ${v.ok ? 'ok' : 'bad'}`;
    fill(
      box,
      el(
        'strong',
        {},
        v.ok
          ? `The audit chain verifies: ${v.entries} entries, no problems.`
          : `The audit chain has ${v.problems.length} problem(s) in ${v.entries} entries.`,
      ),
      v.problems.length > 0
        ? el(
            'ul',
            {},
            v.problems.map((p) => el('li', {}, `${p.kind} at seq ${p.seq}: ${p.message}`)),
          )
        : null,
      el('div', { class: 'muted' }, `Checked ${formatTime(new Date().toISOString())}.`),
    );
    await showAudit();
  });
}

// ---- tokens ----

export async function showTokens() {
  const self = await attempt('Looking up this token', () => api('GET', '/v1/auth/token/lookup-self'));
  if (self) {
    const d = self.data;
    kvRows($('#self-table'), [
      ['Display name', d.display_name],
      ['Accessor', d.accessor],
      ['Policies', d.policies.join(', ')],
      ['Expires', d.expire_time ? formatTime(d.expire_time) : 'never'],
    ]);
  }
  let info;
  let keys;
  try {
    const r = await api('GET', '/v1/auth/token/accessors?list=true');
    keys = r.data.keys;
    info = r.data.key_info;
  } catch (err) {
    fill(
      $('#tokens-table tbody'),
      el('tr', {}, el('td', { class: 'empty', colspan: 4 }, `Listing tokens refused: ${err.message}`)),
    );
    return;
  }
  rows($('#tokens-table tbody'), keys, 4, (a) =>
    el(
      'tr',
      {},
      el('td', {}, el('code', {}, a)),
      el('td', {}, info[a].display_name),
      el(
        'td',
        {},
        info[a].policies.map((p) => el('span', { class: 'tag' }, p)),
      ),
      el('td', {}, info[a].expire_time ? formatTime(info[a].expire_time) : 'never'),
    ),
  );
}

export function bindTokens() {
  $('#token-create').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = form.elements;
    const body = {
      display_name: f.display_name.value.trim(),
      policies: f.policies.value
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== ''),
    };
    if (f.ttl.value.trim() !== '') body.ttl = f.ttl.value.trim();
    const r = await attempt('Creating a token', () => api('POST', '/v1/auth/token/create', body));
    if (!r) return;
    form.reset();
    $('#token-created').hidden = false;
    $('#token-created-value').textContent = r.auth.client_token;
    notify(`Token created (accessor ${r.auth.accessor}).`, true);
    await showTokens();
  });
}

// ---- policies ----

export async function showPolicies() {
  const names = await attempt('Listing policies', () => list('/v1/sys/policies/acl'));
  if (names === undefined) return;
  rows($('#policies-table tbody'), names, 1, (n) =>
    el(
      'tr',
      { 'data-policy': n },
      el(
        'td',
        {},
        el('button', { type: 'button', class: 'secondary small', onclick: () => openPolicy(n) }, n),
      ),
    ),
  );
}

async function openPolicy(name) {
  const r = await attempt(`Reading policy ${name}`, () =>
    api('GET', `/v1/sys/policies/acl/${encodeURIComponent(name)}`),
  );
  if (!r) return;
  const f = $('#policy-form').elements;
  f.name.value = r.data.name;
  f.policy.value = r.data.policy;
}

export function bindPolicies() {
  $('#policy-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const f = event.currentTarget.elements;
    const name = f.name.value.trim();
    const ok = await attempt(`Saving policy ${name}`, () =>
      api('PUT', `/v1/sys/policies/acl/${encodeURIComponent(name)}`, { policy: f.policy.value }).then(
        () => true,
      ),
    );
    if (!ok) return;
    notify(`Policy ${name} saved.`, true);
    await showPolicies();
  });
}
