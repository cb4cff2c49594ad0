// The library: the user's tracks a page at a time (cursor paging, never the whole catalog),
// with the API's filters and text query kept in the URL, and sorting of the loaded rows. Rows of
// tracks still in the pipeline follow the progress stream.

import { get, query } from './api.js';
import { field, h, replace, select, notice } from './dom.js';
import { camelot, duration, number, shortDateTime, STATUSES, statusLabel } from './format.js';
import { FILTER_NAMES, filterFields, readFilters } from './filters.js';
import * as progress from './progress.js';

const PAGE_SIZE = 50;

const COLUMNS = [
  { id: 'filename', label: 'File', value: (t) => t.filename.toLowerCase() },
  { id: 'status', label: 'Status', value: (t) => t.status },
  { id: 'duration', label: 'Length', value: (t) => t.duration_s, numeric: true },
  { id: 'tempo', label: 'BPM', value: (t) => t.tempo_bpm, numeric: true },
  { id: 'key', label: 'Key', value: (t) => (t.key ? `${t.key} ${t.mode}` : null) },
  { id: 'camelot', label: 'Camelot', value: (t) => camelotSortKey(t), numeric: true, narrow: true },
  { id: 'mood', label: 'Mood', value: (t) => t.mood.join(', ') || null, narrow: true },
  { id: 'genre', label: 'Genre', value: (t) => t.genre.join(', ') || null, narrow: true },
  { id: 'added', label: 'Added', value: (t) => t.created_at, numeric: true, narrow: true },
];

function camelotSortKey(track) {
  const code = camelot(track.key, track.mode);
  return code ? Number.parseInt(code, 10) * 2 + (code.endsWith('B') ? 1 : 0) : null;
}

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
      return h('td', { class: 'name' }, h('a', { href: `#/track/${track.track_id}` }, track.filename || track.track_id));
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
  const state = { items: [], cursor: null, sort: params.get('sort') ?? '', descending: params.get('desc') === '1' };
  const values = Object.fromEntries(params.entries());
  const statusOptions = [['', 'any status'], ...STATUSES.map((status) => [status, statusLabel(status)])];
  const form = h(
    'form',
    { class: 'library-filters', role: 'search', 'aria-label': 'filter the library' },
    h(
      'div',
      { class: 'row' },
      field('Search words', h('input', { type: 'search', name: 'q', value: values.q ?? '', placeholder: 'file name, mood, genre…' })),
      field('Status', select('status', statusOptions, values.status ?? '')),
    ),
    h('details', { open: FILTER_NAMES.some((name) => values[name]) }, h('summary', {}, 'More filters'), filterFields(values)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'), h('a', { class: 'button', href: '#/library' }, 'Reset')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = { q: String(data.get('q') ?? '').trim(), status: data.get('status'), ...readFilters(form) };
    location.hash = `#/library${query(next)}`;
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
        const sorted = state.sort === column.id;
        const button = h(
          'button',
          { type: 'button', class: 'sort', 'aria-label': `sort by ${column.label}` },
          column.label,
          sorted ? (state.descending ? ' ▼' : ' ▲') : '',
        );
        button.addEventListener('click', () => {
          state.descending = sorted ? !state.descending : false;
          state.sort = column.id;
          renderHead();
          renderBody();
        });
        return h(
          'th',
          { scope: 'col', class: column.narrow ? 'narrow' : '', 'aria-sort': sorted ? (state.descending ? 'descending' : 'ascending') : 'none' },
          button,
        );
      }),
    );
  };

  const ordered = () => {
    const column = COLUMNS.find((candidate) => candidate.id === state.sort);
    if (!column) return state.items;
    const sign = state.descending ? -1 : 1;
    return [...state.items].sort((a, b) => {
      const x = column.value(a);
      const y = column.value(b);
      if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1; // blanks last
      if (y === null || y === undefined) return -1;
      return (column.numeric ? x - y : String(x).localeCompare(String(y))) * sign;
    });
  };

  const renderBody = () => {
    replace(body, ordered().map((track) => h('tr', { dataset: { trackId: track.track_id } }, COLUMNS.map((column) => cell(track, column)))));
    const sortNote = state.sort ? ' Sorting applies to the loaded tracks.' : '';
    info.textContent = state.items.length
      ? `${state.items.length} track${state.items.length === 1 ? '' : 's'} loaded${state.cursor ? ', more available' : ''}.${sortNote}`
      : 'No tracks match.';
    more.hidden = !state.cursor;
  };

  const watched = new Map(); // track id → unsubscribe
  const watch = (track) => {
    if (FINAL.has(track.status) || watched.has(track.track_id)) return;
    const update = async (event) => {
      try {
        const fresh = summaryOf(await progress.trackAfter(event));
        const index = state.items.findIndex((item) => item.track_id === fresh.track_id);
        if (index >= 0) state.items[index] = fresh;
        if (FINAL.has(fresh.status)) watched.get(fresh.track_id)?.();
        renderBody();
      } catch {
        // deleted meanwhile, or signed out: the row stays as it was
      }
    };
    watched.set(
      track.track_id,
      progress.subscribe(track.track_id, (event) => {
        if (event.state === 'finished' || event.state === 'failed') update(event);
      }),
    );
  };

  const filters = { ...values };
  delete filters.sort;
  delete filters.desc;
  const load = async () => {
    more.disabled = true;
    try {
      const page = await get(`/v1/tracks${query({ ...filters, cursor: state.cursor, limit: PAGE_SIZE })}`);
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

  renderHead();
  load();
  const leave = () => {
    for (const unsubscribe of watched.values()) unsubscribe();
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
