/**
 * The console's only way to the server: the same HTTP API, ACLs and audit as the CLI. The token lives in
 * this module's memory and nowhere else (no storage, no cookie); reloading the page forgets it.
 */
let token = '';

/** An API refusal or failure, with the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function setToken(value) {
  token = value;
}

export function signedIn() {
  return token !== '';
}

/** Calls the API; resolves with the parsed JSON body (or null for 204), rejects with an ApiError. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (token !== '') headers['x-vault-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    cache: 'no-store',
    credentials: 'omit',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const errors = parsed && Array.isArray(parsed.errors) ? parsed.errors : [];
    throw new ApiError(response.status, errors.length > 0 ? errors.join('; ') : `HTTP ${response.status}`);
  }
  return parsed;
}

/** A LIST call; an empty list when the server answers 404 (Vault's way of saying "none"). */
export async function list(path) {
  try {
    const r = await api('GET', `${path}?list=true`);
    return r.data.keys;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}
