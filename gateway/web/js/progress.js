// One live progress stream for the whole page: GET /v1/events (all of the user's tracks from
// now on), read with fetch so it carries the Authorization header. Views subscribe per track.
// Events for a track nobody listens to yet are kept briefly: an upload's first events can
// arrive before its HTTP response names the track. A later subscriber (the library, after the
// upload row) gets the track's latest event, which it may have missed while its page loaded.
// After a reconnect, listeners are told to re-read what they show, since events may have been
// missed in between.

import { get, stream } from './api.js';

const listeners = new Map(); // track id → Set of functions
const resyncListeners = new Set();
const early = new Map(); // track id → recent events nobody was listening to
const latest = new Map(); // track id → [event, final] last heard
const EARLY_LIMIT = 500;
let controller = null;
let connected = null; // a promise that settles once the stream is open (or failed to open)

export function subscribe(trackId, listener) {
  let set = listeners.get(trackId);
  if (!set) listeners.set(trackId, (set = new Set()));
  set.add(listener);
  const missed = early.get(trackId) ?? (latest.has(trackId) ? [latest.get(trackId)] : []);
  early.delete(trackId);
  for (const [event, final] of missed) listener(event, final);
  return () => {
    set.delete(listener);
    if (!set.size && listeners.get(trackId) === set) listeners.delete(trackId);
  };
}

// The track as the catalog sees it once it reflects `event`. The catalog's status is a
// projection written by another consumer of the same events, so it can lag the stream a moment.
export async function trackAfter(event, attempts = 20) {
  for (let attempt = 1; ; attempt += 1) {
    const track = await get(`/v1/tracks/${event.track_id}`);
    const stage = track.stages?.[event.stage];
    if ((stage && stage.state === event.state && stage.at >= event.at) || attempt >= attempts) return track;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export function onResync(listener) {
  resyncListeners.add(listener);
  return () => resyncListeners.delete(listener);
}

function remember(map, trackId, value) {
  if (!map.has(trackId) && map.size >= EARLY_LIMIT) map.delete(map.keys().next().value);
  map.set(trackId, value);
}

function dispatch(message) {
  const event = message.event;
  remember(latest, event.track_id, [event, message.final]);
  const set = listeners.get(event.track_id);
  if (set) {
    for (const listener of set) listener(event, message.final);
    return;
  }
  remember(early, event.track_id, [...(early.get(event.track_id) ?? []), [event, message.final]]);
}

async function run(signal, opened) {
  let delay = 1000;
  while (!signal.aborted) {
    try {
      await stream(
        '/v1/events',
        (message) => {
          if (message.event === 'progress') dispatch(JSON.parse(message.data));
        },
        { signal, onOpen: opened },
      );
      delay = 1000;
    } catch (error) {
      if (signal.aborted || error.status === 401) return; // stopped, or signed out
    } finally {
      opened(); // also when it failed: callers must not wait forever
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15_000);
    if (signal.aborted) return;
    for (const listener of resyncListeners) listener();
  }
}

// Open the stream (once); resolves when the server has answered, so uploads started afterwards
// do not miss their first events.
export function start() {
  if (!controller) {
    controller = new AbortController();
    connected = new Promise((resolve) => run(controller.signal, resolve));
  }
  return connected;
}

export function stop() {
  controller?.abort();
  controller = null;
  connected = null;
  early.clear();
  latest.clear();
}
