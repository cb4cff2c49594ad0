// Formatting of the API's numbers for people: durations, sizes, times, keys (with Camelot).

const CAMELOT_MINOR = { 'G#': 1, 'D#': 2, 'A#': 3, F: 4, C: 5, G: 6, D: 7, A: 8, E: 9, B: 10, 'F#': 11, 'C#': 12 };
const CAMELOT_MAJOR = { B: 1, 'F#': 2, 'C#': 3, 'G#': 4, 'D#': 5, 'A#': 6, F: 7, C: 8, G: 9, D: 10, A: 11, E: 12 };

export const KEYS = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'];
export const STAGES = ['decode', 'features', 'tagging', 'embedding', 'indexing'];
export const STATUSES = ['uploaded', 'decode', 'features', 'tagging', 'embedding', 'indexed', 'failed'];

export function camelot(key, mode) {
  if (!key || !mode) return null;
  const table = mode === 'minor' ? CAMELOT_MINOR : mode === 'major' ? CAMELOT_MAJOR : null;
  const number = table?.[key];
  return number ? `${number}${mode === 'minor' ? 'A' : 'B'}` : null;
}

export function keyName(key, mode) {
  if (!key) return '–';
  const code = camelot(key, mode);
  return `${key} ${mode ?? ''}`.trim() + (code ? ` (${code})` : '');
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function bytes(size) {
  if (!Number.isFinite(size)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function number(value, digits = 1) {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

export function dateTime(epochSeconds) {
  if (!epochSeconds) return '–';
  return new Date(epochSeconds * 1000).toLocaleString(undefined, {
    dateStyle: 'medium',
    timeStyle: 'medium',
  });
}

export function shortDateTime(epochSeconds) {
  if (!epochSeconds) return '–';
  return new Date(epochSeconds * 1000).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
}

export function time(epochSeconds) {
  if (!epochSeconds) return '–';
  return new Date(epochSeconds * 1000).toLocaleTimeString(undefined, { timeStyle: 'medium' });
}

// The catalog status is the last finished stage; say it the way a person would.
const STATUS_LABELS = { decode: 'decoded', features: 'analysed', tagging: 'tagged', embedding: 'embedded' };

export function statusLabel(status) {
  return STATUS_LABELS[status] ?? status;
}
