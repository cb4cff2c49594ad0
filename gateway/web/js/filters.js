// The API's track filters (tempo, duration, key, mode, mood, genre) as one form fieldset, shared
// by the library and search pages. Durations are entered in seconds, like the API takes them.

import { field, h, select } from './dom.js';
import { camelot, KEYS } from './format.js';

export const FILTER_NAMES = ['tempo_min', 'tempo_max', 'duration_min', 'duration_max', 'key', 'mode', 'mood', 'genre'];

function numberInput(name, value, placeholder) {
  return h('input', { type: 'number', name, min: 0, step: 'any', inputmode: 'decimal', value: value ?? '', placeholder });
}

export function filterFields(values = {}) {
  const keyOptions = [['', 'any key'], ...KEYS.map((key) => [key, `${key} (${camelot(key, 'minor')} / ${camelot(key, 'major')})`])];
  return h(
    'fieldset',
    { class: 'filters' },
    h('legend', {}, 'Filters'),
    field('BPM from', numberInput('tempo_min', values.tempo_min, 'e.g. 120')),
    field('BPM to', numberInput('tempo_max', values.tempo_max, 'e.g. 130')),
    field('Length from (s)', numberInput('duration_min', values.duration_min)),
    field('Length to (s)', numberInput('duration_max', values.duration_max)),
    field('Key', select('key', keyOptions, values.key ?? '')),
    field('Mode', select('mode', [['', 'any mode'], ['major', 'major'], ['minor', 'minor']], values.mode ?? '')),
    field('Mood', h('input', { type: 'text', name: 'mood', value: values.mood ?? '', placeholder: 'e.g. dark', autocomplete: 'off' })),
    field('Genre', h('input', { type: 'text', name: 'genre', value: values.genre ?? '', placeholder: 'e.g. house', autocomplete: 'off' })),
  );
}

// The filled-in filters of a form: strings for the query string, numbers for a JSON body.
export function readFilters(form, { numbers = false } = {}) {
  const data = new FormData(form);
  const filters = {};
  for (const name of FILTER_NAMES) {
    const value = String(data.get(name) ?? '').trim();
    if (!value) continue;
    filters[name] = numbers && (name.endsWith('_min') || name.endsWith('_max')) ? Number(value) : value;
  }
  return filters;
}
