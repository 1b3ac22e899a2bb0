/**
 * The console's entry point: seal state first (unseal needs no token), then sign-in, then the screens.
 * Shares and tokens are read from their inputs, which are cleared at once; neither is ever stored.
 */
import { api, setToken, signedIn } from './api.js';
import { $ } from './dom.js';
import {
  attempt,
  bindAudit,
  bindKeys,
  bindPolicies,
  bindTokens,
  notify,
  onSealed,
  renderSealTable,
  renderUnsealProgress,
  showAudit,
  showKeys,
  showPolicies,
  showTokens,
  showUsage,
} from './views.js';

const SCREENS = ['uninitialised', 'unseal', 'signin', 'seal', 'keys', 'usage', 'audit', 'tokens', 'policies'];
const LOADERS = {
  seal: async () => renderSealTable(await api('GET', '/v1/sys/seal-status')),
  keys: showKeys,
  usage: showUsage,
  audit: showAudit,
  tokens: showTokens,
  policies: showPolicies,
};
let current = '';
let usageTimer;

function screen(name) {
  current = name;
  for (const s of SCREENS) $(`#view-${s}`).hidden = s !== name;
  for (const b of document.querySelectorAll('#nav button'))
    b.classList.toggle('active', b.dataset.view === name);
  clearInterval(usageTimer);
  if (name === 'usage') usageTimer = setInterval(() => void showUsage(), 5000);
}

async function open(name) {
  notify('');
  screen(name);
  await LOADERS[name]?.();
}

function badge(status) {
  const b = $('#seal-badge');
  b.textContent = !status.initialized ? 'not initialised' : status.sealed ? 'sealed' : 'unsealed';
  b.className = `badge ${status.sealed ? 'sealed' : 'unsealed'}`;
}

/** Decides the first screen from the seal status and whether a token is held. */
async function start() {
  const status = await attempt('Reading the seal status', () => api('GET', '/v1/sys/seal-status'));
  if (!status) return;
  badge(status);
  $('#nav').hidden = true;
  $('#sign-out').hidden = !signedIn();
  if (!status.initialized) return screen('uninitialised');
  if (status.sealed) {
    renderUnsealProgress(status);
    screen('unseal');
    $('#unseal-share').focus();
    return;
  }
  if (!signedIn()) {
    screen('signin');
    $('#signin-token').focus();
    return;
  }
  $('#nav').hidden = false;
  await open(current === '' || !(current in LOADERS) ? 'keys' : current);
}

$('#unseal-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('#unseal-share');
  const share = input.value.trim();
  input.value = '';
  if (share === '') return;
  const status = await attempt('Unseal', () => api('PUT', '/v1/sys/unseal', { key: share }));
  if (!status) {
    // A wrong share resets the progress on the server; show where it stands now.
    const now = await api('GET', '/v1/sys/seal-status').catch(() => undefined);
    if (now) renderUnsealProgress(now);
    return;
  }
  badge(status);
  renderUnsealProgress(status);
  if (!status.sealed) {
    notify('Unsealed.', true);
    await start();
    notify('Unsealed.', true);
  } else notify(`Share accepted: ${status.progress} of ${status.t}.`, true);
});

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('#signin-token');
  const token = input.value.trim();
  input.value = '';
  setToken(token);
  const self = await attempt('Sign-in', () => api('GET', '/v1/auth/token/lookup-self'));
  if (!self) {
    setToken('');
    return;
  }
  $('#whoami').textContent = `${self.data.display_name} · ${self.data.policies.join(', ')}`;
  current = 'keys';
  await start();
});

$('#sign-out').addEventListener('click', () => {
  setToken('');
  $('#whoami').textContent = '';
  $('#token-created-value').textContent = '';
  $('#token-created').hidden = true;
  current = '';
  void start();
});

$('#seal-now').addEventListener('click', async () => {
  const ok = await attempt('Seal', () => api('PUT', '/v1/sys/seal', {}).then(() => true));
  if (ok) await start();
});

$('#usage-refresh').addEventListener('click', () => void showUsage());

for (const b of document.querySelectorAll('#nav button'))
  b.addEventListener('click', () => void open(b.dataset.view));

onSealed(() => void start());
bindKeys();
bindAudit();
bindTokens();
bindPolicies();
void start();
