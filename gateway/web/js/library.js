// The library: the user's tracks a page at a time (cursor paging, never the whole catalog),
// with the API's filters, text query and sort kept in the URL. The server sorts (`sort=`), so
// "Load more" continues the same order however large the library. Rows of tracks still in the
// pipeline follow the progress stream.

import { get, query } from './api.js';
import { field, h, replace, select, notice } from './dom.js';
import { camelot, duration, number, shortDateTime, STATUSES, statusLabel } from './format.js';
import { FILTER_NAMES, filterFields, readFilters } from './filters.js';
import * as progress from './progress.js';

const PAGE_SIZE = 50;

const DEFAULT_SORT = '-created_at';
// `sort`: the API's column for GET /v1/tracks?sort= (none: not sortable on the server).
const COLUMNS = [
  { id: 'filename', label: 'File', sort: 'filename' },
  { id: 'status', label: 'Status' },
  { id: 'duration', label: 'Length', sort: 'duration' },
  { id: 'tempo', label: 'BPM', sort: 'bpm' },
  { id: 'key', label: 'Key', sort: 'key' },
  { id: 'camelot', label: 'Camelot', narrow: true },
  { id: 'mood', label: 'Mood', value: (t) => t.mood.join(', ') || null, narrow: true },
  { id: 'genre', label: 'Genre', value: (t) => t.genre.join(', ') || null, narrow: true },
  { id: 'added', label: 'Added', sort: 'created_at', narrow: true },
];
const SORTS = [
  ['-created_at', 'newest first'],
  ['created_at', 'oldest first'],
  ['bpm', 'BPM, slowest first'],
  ['-bpm', 'BPM, fastest first'],
  ['duration', 'length, shortest first'],
  ['-duration', 'length, longest first'],
  ['key', 'key, A to G#'],
  ['-key', 'key, G# to A'],
  ['title', 'title tag, A to Z'],
  ['-title', 'title tag, Z to A'],
  ['artist', 'artist tag, A to Z'],
  ['-artist', 'artist tag, Z to A'],
  ['filename', 'file name, A to Z'],
  ['-filename', 'file name, Z to A'],
];

const FINAL = new Set(['indexed', 'failed']);

// A track's detail (GET /v1/tracks/{id}) in the shape of a list row.
function summaryOf(track) {
  const features = track.features ?? {};
  const tags = track.tags ?? {};
  return {
    track_id: track.track_id,
    filename: track.filename,
    status: track.status,
    created_at: track.created_at,
    size_bytes: track.size_bytes,
    duration_s: features.duration_s ?? null,
    tempo_bpm: features.tempo_bpm ?? null,
    key: features.key ?? null,
    mode: features.mode ?? null,
    mood: tags.mood ?? [],
    genre: tags.genre ?? [],
    failure_reason: track.failure_reason ?? null,
  };
}

function cell(track, column) {
  switch (column.id) {
    case 'filename':
      return h(
        'td',
        { class: 'name' },
        h('a', { href: `#/track/${track.track_id}` }, track.filename || track.track_id),
        track.title || track.artist ? h('span', { class: 'tagline' }, [track.artist, track.title].filter(Boolean).join(' – ')) : null,
      );
    case 'status':
      return h(
        'td',
        {},
        h('span', { class: `badge badge-${track.status}`, title: track.failure_reason ?? '' }, statusLabel(track.status)),
        track.failure_reason ? h('span', { class: 'reason' }, track.failure_reason) : null,
      );
    case 'duration':
      return h('td', { class: 'num' }, duration(track.duration_s));
    case 'tempo':
      return h('td', { class: 'num' }, number(track.tempo_bpm));
    case 'key':
      return h('td', { class: 'nowrap' }, track.key ? `${track.key} ${track.mode}` : '–');
    case 'camelot':
      return h('td', { class: 'narrow' }, camelot(track.key, track.mode) ?? '–');
    case 'added':
      return h('td', { class: 'narrow nowrap' }, shortDateTime(track.created_at));
    default:
      return h('td', { class: column.narrow ? 'narrow' : '' }, column.value(track) ?? '–');
  }
}

export function view(params) {
  const values = Object.fromEntries(params.entries());
  const pageSize = Math.min(Math.max(Number.parseInt(values.limit, 10) || PAGE_SIZE, 1), 500);
  const known = SORTS.some(([value]) => value === values.sort);
  const state = { items: [], cursor: null, sort: known ? values.sort : DEFAULT_SORT, requests: 0 };
  const statusOptions = [['', 'any status'], ...STATUSES.map((status) => [status, statusLabel(status)])];
  const form = h(
    'form',
    { class: 'library-filters', role: 'search', 'aria-label': 'filter the library' },
    h(
      'div',
      { class: 'row row-3' },
      field('Search words', h('input', { type: 'search', name: 'q', value: values.q ?? '', placeholder: 'file name, mood, genre…' })),
      field('Status', select('status', statusOptions, values.status ?? '')),
      field('Sort by', select('sort', SORTS, state.sort)),
    ),
    h('details', { open: FILTER_NAMES.some((name) => values[name]) }, h('summary', {}, 'More filters'), filterFields(values)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'), h('a', { class: 'button', href: '#/library' }, 'Reset')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = { q: String(data.get('q') ?? '').trim(), status: data.get('status'), ...readFilters(form) };
    const sort = data.get('sort');
    location.hash = `#/library${query({ ...next, sort: sort === DEFAULT_SORT ? '' : sort, limit: values.limit })}`;
  });

  const head = h('tr', {});
  const body = h('tbody', {});
  const table = h('table', { class: 'tracks' }, h('caption', { class: 'visually-hidden' }, 'Your tracks'), h('thead', {}, head), body);
  const info = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const errors = h('div', {});

  const renderHead = () => {
    replace(
      head,
      COLUMNS.map((column) => {
        const attrs = { scope: 'col', class: column.narrow ? 'narrow' : '' };
        if (!column.sort) return h('th', attrs, column.label);
        const sorted = state.sort.replace(/^-/, '') === column.sort;
        const descending = sorted && state.sort.startsWith('-');
        const button = h(
          'button',
          { type: 'button', class: 'sort', 'aria-label': `sort by ${column.label}` },
          column.label,
          sorted ? (descending ? ' ▼' : ' ▲') : '',
        );
        button.addEventListener('click', () => resort(sorted && !descending ? `-${column.sort}` : column.sort, column.id));
        return h('th', { ...attrs, 'aria-sort': sorted ? (descending ? 'descending' : 'ascending') : 'none' }, button);
      }),
    );
  };

  const renderBody = () => {
    replace(body, state.items.map((track) => h('tr', { dataset: { trackId: track.track_id } }, COLUMNS.map((column) => cell(track, column)))));
    info.textContent = state.items.length
      ? `${state.items.length} track${state.items.length === 1 ? '' : 's'} shown${state.cursor ? ', more available' : ''}.`
      : 'No tracks match.';
    more.hidden = !state.cursor;
    table.dataset.requests = String(state.requests); // pages asked for so far (the tests read it)
  };

  // Each finished or failed stage re-reads the track once the catalog reflects the event. Reads
  // can overlap: only the one asked for last may change the row, and one for the track's last
  // event retries until the catalog's status (a projection that may lag) says so too. A row
  // that hears nothing for a while, or any row after the stream reconnected, is re-read anyway.
  const watched = new Map(); // track id → unsubscribe
  const tickets = new Map(); // track id → number of the latest read asked for
  const heard = new Map(); // track id of a row still in the pipeline → when it last heard news
  const RETRIES = 30;
  const QUIET_MS = 10_000;
  const ticket = (trackId) => {
    const next = (tickets.get(trackId) ?? 0) + 1;
    tickets.set(trackId, next);
    heard.set(trackId, Date.now());
    return next;
  };
  const show = (fresh) => {
    const index = state.items.findIndex((item) => item.track_id === fresh.track_id);
    if (index >= 0) state.items[index] = fresh;
    if (FINAL.has(fresh.status)) {
      watched.get(fresh.track_id)?.();
      heard.delete(fresh.track_id);
    }
    renderBody();
  };
  const update = async (event, mine, attempt = 0) => {
    try {
      const fresh = summaryOf(await progress.trackAfter(event));
      if (tickets.get(event.track_id) !== mine) return;
      show(fresh);
      const last = event.state === 'failed' || (event.stage === 'indexing' && event.state === 'finished');
      if (last && !FINAL.has(fresh.status) && attempt < RETRIES) setTimeout(() => update(event, mine, attempt + 1), 1000);
    } catch {
      // deleted meanwhile, or signed out: the row stays as it was
    }
  };
  const reread = async (trackId) => {
    const mine = ticket(trackId);
    try {
      const fresh = summaryOf(await get(`/v1/tracks/${trackId}`));
      if (tickets.get(trackId) === mine) show(fresh);
    } catch {
      heard.delete(trackId); // deleted meanwhile, or signed out
    }
  };
  const watch = (track) => {
    if (FINAL.has(track.status) || watched.has(track.track_id)) return;
    heard.set(track.track_id, Date.now());
    const unsubscribe = progress.subscribe(track.track_id, (event) => {
      heard.set(event.track_id, Date.now());
      if (event.state === 'finished' || event.state === 'failed') update(event, ticket(event.track_id));
    });
    watched.set(track.track_id, unsubscribe);
  };
  const quiet = setInterval(() => {
    for (const [trackId, at] of heard) if (Date.now() - at > QUIET_MS) reread(trackId);
  }, 2000);
  const stopResync = progress.onResync(() => {
    for (const trackId of heard.keys()) reread(trackId);
  });

  const filters = { ...values };
  delete filters.sort;
  delete filters.limit;
  let generation = 0; // a new sort discards pages still arriving for the old one
  const load = async () => {
    const mine = generation;
    more.disabled = true;
    try {
      state.requests += 1;
      const page = await get(`/v1/tracks${query({ ...filters, sort: state.sort, cursor: state.cursor, limit: pageSize })}`);
      if (mine !== generation) return;
      state.items.push(...page.items);
      state.cursor = page.next_cursor;
      page.items.forEach(watch);
      renderBody();
    } catch (error) {
      replace(errors, notice('error', error.message));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', load);

  // A new order starts again at the first page; the URL keeps it (without a new history entry
  // or a re-render, so the focus stays on the header button).
  const resort = (sort, columnId) => {
    state.sort = sort;
    state.items = [];
    state.cursor = null;
    generation += 1;
    form.elements.sort.value = sort;
    const shown = { ...values, sort: sort === DEFAULT_SORT ? '' : sort };
    history.replaceState(null, '', `#/library${query(shown)}`);
    renderHead();
    head.querySelector(`th:nth-child(${COLUMNS.findIndex((c) => c.id === columnId) + 1}) button`)?.focus();
    load();
  };

  renderHead();
  load();
  const leave = () => {
    for (const unsubscribe of watched.values()) unsubscribe();
    clearInterval(quiet);
    stopResync();
  };
  const node = h(
    'section',
    { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Library'), h('a', { class: 'button primary', href: '#/upload' }, 'Upload')),
    form,
    errors,
    info,
    h('div', { class: 'table-wrap' }, table),
    more,
  );
  return { node, leave };
}
