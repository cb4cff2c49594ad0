// The HTTP API client of the web app: the same routes every other client uses.
//
// Tokens: the access token lives only in this module's memory. The refresh token is an
// HttpOnly cookie the page cannot read, sent only to /v1/auth/session…; those routes demand the
// X-Requested-With header (CSRF). Refreshes are serialised across tabs with the Web Locks API,
// because each refresh rotates the cookie and a spent one would revoke the login.

const CSRF = { 'X-Requested-With': 'tonestream' };
const EARLY_REFRESH_MS = 60_000;

let current = null; // { token, expiresAt, user }
const sessionListeners = new Set();

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function onSessionChange(listener) {
  sessionListeners.add(listener);
}

export function user() {
  return current?.user ?? null;
}

// Whether this browser may hold a session cookie, which is HttpOnly and so out of the page's
// reach: a page load without this flag shows the sign-in form at once instead of first asking
// the gateway (a cross-tab lock and a round trip). The flag is no secret, and never a token.
const SESSION_FLAG = 'tonestream.signed-in';

function mayHaveSession() {
  try {
    return localStorage.getItem(SESSION_FLAG) === '1';
  } catch {
    return true; // storage unavailable: ask the gateway, as without the flag
  }
}

function noteSession(signedIn) {
  try {
    if (signedIn) localStorage.setItem(SESSION_FLAG, '1');
    else localStorage.removeItem(SESSION_FLAG);
  } catch {
    // storage unavailable: every page load asks the gateway
  }
}

function setSession(session) {
  if (session) noteSession(true);
  current = session && {
    token: session.access_token,
    expiresAt: Date.now() + session.expires_in * 1000,
    user: session.user,
  };
  for (const listener of sessionListeners) listener(current?.user ?? null);
}

async function problem(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.detail ?? `HTTP ${response.status}`);
  } catch {
    return new ApiError(response.status, `HTTP ${response.status} ${response.statusText}`);
  }
}

async function sessionCall(method, path, body) {
  const headers = { ...CSRF };
  if (body) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (!response.ok) throw await problem(response);
  return response.status === 204 ? null : response.json();
}

export async function signIn(username, password) {
  setSession(await sessionCall('POST', '/v1/auth/session', { username, password }));
}

export async function signOut() {
  try {
    await sessionCall('DELETE', '/v1/auth/session');
  } finally {
    noteSession(false);
    setSession(null);
  }
}

let refreshing = null;

function refresh() {
  const run = async () => {
    setSession(await sessionCall('POST', '/v1/auth/session/refresh'));
  };
  refreshing ??= (navigator.locks ? navigator.locks.request('tonestream-session', run) : run()).finally(
    () => {
      refreshing = null;
    },
  );
  return refreshing;
}

// On page load: turn the session cookie (if any) into an access token.
export async function restore() {
  if (!mayHaveSession()) return false;
  try {
    await refresh();
    return true;
  } catch (error) {
    if (error.status === 401) noteSession(false); // no session any more (not a passing failure)
    setSession(null);
    return false;
  }
}

async function token() {
  if (!current) throw new ApiError(401, 'not signed in');
  if (current.expiresAt - Date.now() < EARLY_REFRESH_MS) {
    try {
      await refresh();
    } catch (error) {
      setSession(null);
      throw error;
    }
  }
  return current.token;
}

export async function authHeaders() {
  return { Authorization: `Bearer ${await token()}` };
}

// One API call; a 401 refreshes the session once and retries.
export async function call(method, path, { json, signal, raw = false } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = await authHeaders();
    if (json !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: json !== undefined ? JSON.stringify(json) : undefined,
      signal,
      cache: 'no-store',
    });
    if (response.status === 401 && attempt === 0) {
      await refresh().catch(() => setSession(null));
      continue;
    }
    if (!response.ok) throw await problem(response);
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }
}

export const get = (path, options) => call('GET', path, options);
export const post = (path, json, options) => call('POST', path, { ...options, json });
export const del = (path, options) => call('DELETE', path, options);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// Upload one file as the raw request body. XMLHttpRequest, because fetch cannot report upload
// progress. Resolves with { status, body } (202 new, 200 duplicate); rejects with ApiError.
export async function upload(file, onProgress) {
  const headers = await authHeaders();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/v1/tracks${query({ filename: file.name })}`);
    xhr.setRequestHeader('Authorization', headers.Authorization);
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status === 200 || xhr.status === 202) resolve({ status: xhr.status, body: xhr.response });
      else reject(new ApiError(xhr.status, xhr.response?.detail ?? `HTTP ${xhr.status}`));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network error during upload')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'upload cancelled')));
    xhr.send(file);
  });
}

// Server-sent events over fetch(), so the request carries the Authorization header (EventSource
// cannot). Calls onOpen() once the server answered, onEvent({ event, data, id }) per event;
// resolves when the stream ends.
export async function stream(path, onEvent, { signal, onOpen } = {}) {
  const response = await call('GET', path, { signal, raw: true });
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { event: 'message', data: [], id: null };
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'data') message.data.push(text);
        else if (name === 'event') message.event = text;
        else if (name === 'id') message.id = text;
      }
      if (message.data.length) onEvent({ ...message, data: message.data.join('\n') });
    }
  }
}

// Links an <audio> element or a download can load without headers (a track-scoped token).
export function mediaLinks(trackId) {
  return get(`/v1/tracks/${trackId}/media-links`);
}

// A File or Blob as base64, for search examples.
export function base64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener('load', () => resolve(String(reader.result).split(',', 2)[1] ?? ''));
    reader.addEventListener('error', () => reject(reader.error));
    reader.readAsDataURL(blob);
  });
}
