// One track: its cover art, player with a waveform, every feature and tag (with the models' tag
// probabilities), the stage timeline, similar tracks, download, delete, and "search like this".
// Live while the pipeline still works on it.

import { call, del, get, mediaLinks } from './api.js';
import { h, notice, replace } from './dom.js';
import { bytes, camelot, dateTime, duration, keyName, number, STAGES, statusLabel, time } from './format.js';
import * as progress from './progress.js';
import { addLike } from './search.js';
import { waveform } from './waveform.js';

const FEATURE_ROWS = [
  ['duration_s', 'Length', (f) => duration(f.duration_s)],
  ['tempo_bpm', 'Tempo', (f) => `${number(f.tempo_bpm)} BPM (confidence ${number(f.tempo_confidence, 2)})`],
  ['key', 'Key', (f) => `${keyName(f.key, f.mode)} (confidence ${number(f.key_confidence, 2)})`],
  ['loudness_lufs', 'Loudness', (f) => `${number(f.loudness_lufs)} LUFS`],
  ['loudness_range_lu', 'Loudness range', (f) => `${number(f.loudness_range_lu)} LU`],
  ['true_peak_dbtp', 'True peak', (f) => `${number(f.true_peak_dbtp)} dBTP`],
  ['sample_peak_dbfs', 'Sample peak', (f) => `${number(f.sample_peak_dbfs)} dBFS`],
  ['replaygain_db', 'ReplayGain', (f) => `${f.replaygain_db > 0 ? '+' : ''}${number(f.replaygain_db)} dB`],
  ['energy', 'Energy', (f) => number(f.energy, 3)],
  ['spectral_centroid_hz', 'Spectral centroid', (f) => `${number(f.spectral_centroid_hz, 0)} Hz`],
  ['spectral_bandwidth_hz', 'Spectral bandwidth', (f) => `${number(f.spectral_bandwidth_hz, 0)} Hz`],
  ['spectral_rolloff_hz', 'Spectral roll-off', (f) => `${number(f.spectral_rolloff_hz, 0)} Hz`],
  ['spectral_flatness', 'Spectral flatness', (f) => number(f.spectral_flatness, 4)],
  ['zero_crossing_rate', 'Zero-crossing rate', (f) => number(f.zero_crossing_rate, 4)],
  ['onset_rate', 'Onset rate', (f) => `${number(f.onset_rate, 2)} /s`],
];
const SHOWN = new Set([...FEATURE_ROWS.map(([name]) => name), 'tempo_confidence', 'key_confidence', 'mode']);

function plain(value) {
  if (Array.isArray(value)) {
    return value.map((item) => (typeof item === 'number' ? Number(item.toFixed(3)) : plain(item))).join(', ');
  }
  if (value && typeof value === 'object') {
    return Object.entries(value).map(([name, item]) => `${name.replace(/_/g, ' ')} ${plain(item)}`).join(', ');
  }
  if (typeof value === 'number') return String(Number(value.toFixed(4)));
  return value === null || value === undefined || value === '' ? '–' : String(value);
}

function definitions(entries) {
  return h('dl', { class: 'facts' }, entries.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

function features(track) {
  const f = track.features;
  if (!f) return h('p', { class: 'muted' }, 'Not analysed yet.');
  const known = FEATURE_ROWS.filter(([name]) => f[name] !== undefined).map(([, label, show]) => [label, show(f)]);
  const others = Object.entries(f).filter(([name]) => !SHOWN.has(name));
  return h(
    'div',
    {},
    definitions(known),
    others.length
      ? h('details', {}, h('summary', {}, 'All measurements'), definitions(others.map(([name, value]) => [name, plain(value)])))
      : null,
  );
}

function chips(values) {
  return values?.length ? h('ul', { class: 'chips' }, values.map((value) => h('li', {}, value))) : '–';
}

const LABELS = [['mood', 'Mood'], ['genre', 'Genre'], ['instruments', 'Instruments'], ['vocals', 'Vocals']];
const TAG_FACTS = [['energy', 'Energy'], ['brightness', 'Brightness'], ['tempo_class', 'Tempo'], ['source', 'Tagger']];
const SHOWN_TAGS = new Set([...LABELS, ...TAG_FACTS].map(([name]) => name).concat(['description', 'scores']));
const TOP_SCORES = 12;

// The pretrained models' strongest tags and their probabilities (tags.scores: MSD and MTT).
function modelScores(scores) {
  const ranked = ['msd', 'mtt']
    .flatMap((model) => Object.entries(scores[model] ?? {}).map(([tag, p]) => [tag, p, model.toUpperCase()]))
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP_SCORES);
  if (!ranked.length) return null;
  return h(
    'details',
    { class: 'model-scores', open: true },
    h('summary', {}, `Model tags (${scores.model ?? 'musicnn'}), strongest ${ranked.length}`),
    h(
      'ol',
      { class: 'scores' },
      ranked.map(([tag, p, model]) => {
        const percent = `${Math.round(p * 100)} %`;
        return h(
          'li',
          {},
          h('span', { title: `${model} model` }, tag, h('small', { class: 'muted' }, ` ${model}`)),
          h('meter', { min: 0, max: 1, value: p, 'aria-label': `${tag} (${model}): ${percent}` }),
          h('span', { class: 'num' }, percent),
        );
      }),
    ),
  );
}

function tags(track) {
  const t = track.tags;
  if (!t) return h('p', { class: 'muted' }, 'Not tagged yet.');
  const rest = Object.entries(t).filter(([name]) => !SHOWN_TAGS.has(name));
  return h(
    'div',
    {},
    t.description ? h('p', { class: 'description' }, t.description) : null,
    definitions([
      ...LABELS.map(([name, label]) => [label, chips(t[name])]),
      ...TAG_FACTS.filter(([name]) => t[name]).map(([name, label]) => [label, t[name]]),
      ...rest.map(([name, value]) => [name.replace(/_/g, ' '), plain(value)]),
    ]),
    t.scores ? modelScores(t.scores) : null,
  );
}

// The cover art the file carried, fetched with the access token (an <img> cannot send it).
async function loadCover(trackId, image) {
  try {
    const response = await call('GET', `/v1/tracks/${trackId}/cover`, { raw: true });
    image.src = URL.createObjectURL(await response.blob());
    image.hidden = false;
  } catch {
    image.remove(); // none after all (404), or gone: the page reads as if there never was one
  }
}

function fileFacts(track) {
  const audio = Object.entries(track.audio ?? {}).filter(([name]) => !['peaks', 'metadata'].includes(name) && !name.endsWith('_key'));
  const fileTags = Object.entries(track.audio?.metadata ?? {}).filter(([name, value]) => value && !name.startsWith('cover'));
  return definitions([
    ...fileTags.map(([name, value]) => [name.replace(/_/g, ' '), plain(value)]),
    ['Size', `${bytes(track.size_bytes)}, ${track.content_type || 'unknown type'}`],
    ['Uploaded', dateTime(track.created_at)],
    ['SHA-256', h('code', { class: 'hash' }, track.sha256)],
    ['Track id', h('code', {}, track.track_id)],
    ...audio.map(([name, value]) => [name.replace(/_/g, ' '), plain(value)]),
    track.semantic_model ? ['Semantic model', track.semantic_model] : null,
  ].filter(Boolean));
}

function timeline(track) {
  let previous = track.created_at;
  return h(
    'ol',
    { class: 'timeline' },
    h('li', { class: 'stage-finished' }, h('span', { class: 'stage-name' }, 'upload'), h('span', {}, 'finished'), h('time', {}, time(track.created_at))),
    STAGES.map((stage) => {
      const info = track.stages?.[stage];
      const state = info?.state ?? 'waiting';
      const took = info?.at && previous && state === 'finished' ? `+${(info.at - previous).toFixed(2)} s` : '';
      if (info?.at) previous = info.at;
      const percent = state === 'started' && info?.percent > 0 ? ` ${Math.round(info.percent)} %` : '';
      return h(
        'li',
        { class: `stage-${state === 'percent' ? 'started' : state}` },
        h('span', { class: 'stage-name' }, stage),
        h('span', {}, `${state}${percent}`, took ? h('small', { class: 'muted' }, ` ${took}`) : null),
        h('time', {}, info?.at ? time(info.at) : '–'),
        info?.message && state === 'failed' ? h('p', { class: 'reason' }, info.message) : null,
      );
    }),
  );
}

async function similar(track, container) {
  if (track.status !== 'indexed') {
    replace(container, h('p', { class: 'muted' }, 'Similar tracks appear once the track is indexed.'));
    return;
  }
  try {
    const found = await get(`/v1/tracks/${track.track_id}/similar?k=8`);
    if (!found.results.length) {
      replace(container, h('p', { class: 'muted' }, 'No other tracks yet.'));
      return;
    }
    replace(
      container,
      h(
        'ol',
        { class: 'similar' },
        found.results.map((hit) =>
          h(
            'li',
            {},
            h(
              'div',
              {},
              h('a', { href: `#/track/${hit.track_id}`, class: 'similar-open' }, hit.track.filename || hit.track_id),
              h('div', { class: 'muted small' }, `${number(hit.track.tempo_bpm)} BPM · ${keyName(hit.track.key, hit.track.mode)}`),
            ),
            h('span', { class: 'score', title: 'cosine similarity' }, hit.score.toFixed(3)),
            h('a', { href: `#/track/${hit.track_id}?play=1`, class: 'button small', 'aria-label': `play ${hit.track.filename}` }, '▶'),
          ),
        ),
      ),
    );
  } catch (error) {
    replace(container, notice('error', error.message));
  }
}

export function view(params, trackId) {
  const root = h('section', { class: 'page' }, h('p', { class: 'muted' }, 'Loading…'));
  const audio = h('audio', { controls: true, preload: 'metadata', class: 'player', 'aria-label': 'player' });
  let unsubscribe = () => {};
  let links = null;
  let sourced = null; // the first media link, asked for once however often the page renders
  const cover = h('img', { class: 'cover', alt: 'cover art', width: 96, height: 96, hidden: true });
  let coverShown = false;

  const setSource = async (keepTime = 0, play = false) => {
    links = await mediaLinks(trackId);
    audio.src = links.audio;
    if (keepTime) audio.addEventListener('loadedmetadata', () => (audio.currentTime = keepTime), { once: true });
    if (play) audio.play().catch(() => {});
    return links;
  };
  // The media link expires with the access token; fetch a fresh one and carry on from here.
  audio.addEventListener('error', () => {
    if (links && Date.now() / 1000 > links.expires_at - 5) setSource(audio.currentTime, !audio.paused);
  });

  let renders = 0; // reads can overlap: only the one asked for last renders
  const render = async (event) => {
    const ticket = ++renders;
    let track;
    try {
      track = await (event ? progress.trackAfter(event) : get(`/v1/tracks/${trackId}`));
      if (ticket !== renders) return;
    } catch (error) {
      replace(root, h('h1', {}, 'Track'), notice('error', error.message), h('a', { href: '#/library' }, 'Back to the library'));
      return;
    }
    const similarBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const download = h('a', { class: 'button', download: track.filename || trackId, href: '#' }, 'Download');
    const remove = h('button', { type: 'button', class: 'danger' }, 'Delete');
    const like = h('button', { type: 'button' }, 'Search like this');
    const status = h(
      'p',
      { class: 'track-status' },
      h('span', { class: `badge badge-${track.status}` }, statusLabel(track.status)),
      track.failure_reason ? h('span', { class: 'reason' }, ` ${track.failed_stage ?? ''}: ${track.failure_reason}`) : null,
    );
    const f = track.features;
    if (!coverShown && track.audio?.metadata?.cover_key) {
      coverShown = true;
      loadCover(trackId, cover);
    }
    replace(
      root,
      h('p', { class: 'crumbs' }, h('a', { href: '#/library' }, 'Library'), ' / '),
      coverShown ? cover : null,
      h('h1', { class: 'track-title' }, track.filename || trackId),
      status,
      f
        ? h(
            'ul',
            { class: 'headline' },
            h('li', {}, h('strong', {}, number(f.tempo_bpm)), ' BPM'),
            h('li', {}, h('strong', {}, `${f.key} ${f.mode}`), ` · ${camelot(f.key, f.mode) ?? ''}`),
            h('li', {}, h('strong', {}, duration(f.duration_s))),
            h('li', {}, h('strong', {}, number(f.loudness_lufs)), ' LUFS'),
          )
        : null,
      h(
        'div',
        { class: 'player-box' },
        track.audio?.peaks?.length ? waveform(track.audio.peaks, audio) : null,
        audio,
      ),
      h('div', { class: 'actions' }, download, like, remove),
      h(
        'div',
        { class: 'grid' },
        h('section', { class: 'card' }, h('h2', {}, 'Features'), features(track)),
        h('section', { class: 'card' }, h('h2', {}, 'Tags'), tags(track)),
        h('section', { class: 'card' }, h('h2', {}, 'Pipeline'), timeline(track)),
        h('section', { class: 'card' }, h('h2', {}, 'File'), fileFacts(track)),
        h('section', { class: 'card' }, h('h2', {}, 'Similar tracks'), similarBox),
      ),
    );
    like.addEventListener('click', () => {
      addLike(track);
      location.hash = '#/search';
    });
    remove.addEventListener('click', async () => {
      if (!confirm(`Delete “${track.filename}” everywhere? This cannot be undone.`)) return;
      try {
        await del(`/v1/tracks/${trackId}`);
        location.hash = '#/library';
      } catch (error) {
        root.prepend(notice('error', error.message));
      }
    });
    similar(track, similarBox);
    sourced ??= setSource(0, params.get('play') === '1').catch((error) => {
      root.prepend(notice('error', `Cannot play: ${error.message}`));
    });
    await sourced;
    if (links) download.href = links.audio;
    if (track.status === 'indexed' || track.status === 'failed') unsubscribe();
  };

  progress.start();
  unsubscribe = progress.subscribe(trackId, (event, final) => {
    if (final || event.state === 'finished' || event.state === 'failed') render(event);
  });
  render();
  const leave = () => {
    unsubscribe();
    audio.pause();
    if (cover.src) URL.revokeObjectURL(cover.src);
  };
  return { node: root, leave };
}
