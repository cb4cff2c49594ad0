// Search by any mix of text, an image, an audio file or a microphone recording, and tracks the
// results should resemble ("like these"), each with a weight, plus the library's filters. The
// results show the fused score and which inputs matched; the API's notes (such as the keyword
// fallback when semantic search is unavailable) are shown as they come.

import { base64, post } from './api.js';
import { field, h, notice, replace } from './dom.js';
import { keyName, duration, number, statusLabel } from './format.js';
import { filterFields, readFilters } from './filters.js';
import { toWav } from './wav.js';

const MAX_RECORDING_MS = 60_000;

const likes = new Map(); // track id → file name; kept while the page lives
let recording = null; // the last microphone recording, a Blob

export function addLike(track) {
  likes.set(track.track_id, track.filename || track.track_id);
}

function weight(name, label) {
  return field(`${label} weight`, h('input', { type: 'number', name: `weight_${name}`, min: 0, max: 10, step: 0.1, value: 1, class: 'weight' }));
}

function likeList() {
  const list = h('ul', { class: 'chips removable', 'aria-label': 'tracks to resemble' });
  const render = () => {
    if (!likes.size) {
      replace(list, h('li', { class: 'muted plain' }, 'None. Use “Search like this” on a track, or “More like this” on a result.'));
      return;
    }
    replace(
      list,
      [...likes].map(([id, name]) => {
        const remove = h('button', { type: 'button', class: 'link', 'aria-label': `remove ${name}` }, '×');
        remove.addEventListener('click', () => {
          likes.delete(id);
          render();
        });
        return h('li', {}, name, ' ', remove);
      }),
    );
  };
  render();
  list.refresh = render;
  return list;
}

function recorder() {
  const status = h('span', { class: 'muted', role: 'status' }, recording ? 'A recording is ready.' : '');
  const button = h('button', { type: 'button' }, 'Record from microphone');
  const clearButton = h('button', { type: 'button', class: 'link', hidden: !recording }, 'discard');
  let media = null;
  button.addEventListener('click', async () => {
    if (media) {
      media.stop();
      return;
    }
    if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
      status.textContent = 'This browser cannot record audio.';
      return;
    }
    try {
      const input = await navigator.mediaDevices.getUserMedia({ audio: true });
      const chunks = [];
      media = new MediaRecorder(input);
      media.addEventListener('dataavailable', (event) => chunks.push(event.data));
      media.addEventListener('stop', async () => {
        for (const track of input.getTracks()) track.stop();
        clearTimeout(limit);
        const type = media.mimeType;
        media = null;
        button.textContent = 'Record again';
        try {
          recording = await toWav(new Blob(chunks, { type }));
          status.textContent = `Recorded ${(recording.size / 1000).toFixed(0)} KB.`;
          clearButton.hidden = false;
        } catch (error) {
          status.textContent = `The recording could not be read: ${error.message}`;
        }
      });
      media.start();
      const limit = setTimeout(() => media?.stop(), MAX_RECORDING_MS);
      button.textContent = 'Stop recording';
      status.textContent = 'Recording…';
    } catch (error) {
      status.textContent = `Microphone unavailable: ${error.message}`;
    }
  });
  clearButton.addEventListener('click', () => {
    recording = null;
    status.textContent = '';
    clearButton.hidden = true;
  });
  return h('div', { class: 'recorder' }, button, ' ', status, ' ', clearButton);
}

function results(answer, container, rerun) {
  const notes = answer.notes.map((note) => notice('info', note));
  const mode = answer.text_mode ? h('p', { class: 'muted' }, `Text matched by ${answer.text_mode === 'keyword' ? 'keywords (fallback)' : 'meaning (CLIP)'}.`) : null;
  if (!answer.results.length) {
    replace(container, notes, mode, h('p', {}, 'No matches.'));
    return;
  }
  const rows = answer.results.map((hit) => {
    const more = h('button', { type: 'button', class: 'small', 'aria-label': `more like ${hit.track.filename}` }, 'More like this');
    more.addEventListener('click', () => {
      addLike(hit.track);
      rerun();
    });
    return h(
      'tr',
      {},
      h('td', { class: 'num score' }, hit.score.toFixed(3)),
      h('td', { class: 'name' }, h('a', { href: `#/track/${hit.track_id}` }, hit.track.filename || hit.track_id)),
      h('td', {}, h('ul', { class: 'chips' }, hit.matched.map((input) => h('li', { class: `matched-${input}` }, input)))),
      h('td', { class: 'num' }, number(hit.track.tempo_bpm)),
      h('td', {}, keyName(hit.track.key, hit.track.mode)),
      h('td', { class: 'num narrow' }, duration(hit.track.duration_s)),
      h('td', { class: 'narrow' }, statusLabel(hit.track.status)),
      h('td', {}, more),
    );
  });
  replace(
    container,
    notes,
    mode,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'tracks results' },
        h('caption', { class: 'visually-hidden' }, 'Search results'),
        h(
          'thead',
          {},
          h('tr', {}, ['Score', 'File', 'Matched', 'BPM', 'Key', 'Length', 'Status', ''].map((label, index) =>
            h('th', { scope: 'col', class: index === 5 || index === 6 ? 'narrow' : '' }, label || h('span', { class: 'visually-hidden' }, 'actions')),
          )),
        ),
        h('tbody', {}, rows),
      ),
    ),
  );
}

export function view() {
  const likesList = likeList();
  const image = h('input', { type: 'file', name: 'image', accept: 'image/*' });
  const audioFile = h('input', { type: 'file', name: 'audio', accept: 'audio/*' });
  const preview = h('img', { class: 'preview', alt: 'the chosen image', hidden: true });
  image.addEventListener('change', () => {
    const file = image.files[0];
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !file;
    if (file) preview.src = URL.createObjectURL(file);
  });
  const output = h('div', { class: 'search-results', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'search-form', role: 'search', 'aria-label': 'search your tracks' },
    h(
      'div',
      { class: 'inputs' },
      h('fieldset', {}, h('legend', {}, 'Text'), field('Describe the music', h('input', { type: 'search', name: 'text', placeholder: 'e.g. dark techno, peaceful piano' })), weight('text', 'Text')),
      h('fieldset', {}, h('legend', {}, 'Image'), field('Picture', image, 'Needs CLIP on the server.'), preview, weight('image', 'Image')),
      h('fieldset', {}, h('legend', {}, 'Audio example'), field('Audio file', audioFile), recorder(), weight('audio', 'Audio')),
      h('fieldset', {}, h('legend', {}, 'Like these tracks'), likesList, weight('tracks', 'Tracks')),
    ),
    h('details', {}, h('summary', {}, 'Filters and count'), filterFields(), field('Results', h('input', { type: 'number', name: 'k', min: 1, max: 200, value: 20 }))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Search')),
  );

  const run = async () => {
    replace(output, h('p', { class: 'muted' }, 'Searching…'));
    const data = new FormData(form);
    const request = { filters: readFilters(form, { numbers: true }), k: Number(data.get('k')) || 20, weights: {} };
    for (const name of ['text', 'image', 'audio', 'tracks']) request.weights[name] = Number(data.get(`weight_${name}`) || 1);
    const text = String(data.get('text') ?? '').trim();
    if (text) request.text = text;
    if (image.files[0]) request.image_base64 = await base64(image.files[0]);
    const example = audioFile.files[0] ?? recording;
    if (example) request.audio_base64 = await base64(example);
    if (likes.size) request.track_ids = [...likes.keys()];
    if (!text && !request.image_base64 && !request.audio_base64 && !likes.size) {
      replace(output, notice('error', 'Give at least one input: text, an image, an audio example or tracks.'));
      return;
    }
    try {
      results(await post('/v1/search', request), output, () => {
        likesList.refresh();
        run();
      });
    } catch (error) {
      replace(output, notice('error', error.message));
    }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  return h('section', { class: 'page' }, h('h1', {}, 'Search'), form, output);
}
