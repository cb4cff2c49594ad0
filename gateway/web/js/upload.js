// Uploads: many files or whole folders, a few at a time, each with a live row showing the
// upload itself and then every pipeline stage from the progress stream (with percentages when
// a stage reports them: the row's bar then moves through the pipeline, and the row keeps the
// percentages it heard in `data-percents`), the failure reason or the duplicate notice. The queue lives in this
// module, so uploads go on while the person browses other pages.

import { get, upload } from './api.js';
import { h, replace } from './dom.js';
import { bytes, STAGES } from './format.js';
import * as progress from './progress.js';

const CONCURRENCY = 2; // leaves browser connections (6 per origin) for browsing and the stream
const QUIET_RESYNC_MS = 10_000;
const PERCENTS_KEPT = 100;

const rows = []; // every Row of this page's life, newest last
const waiting = [];
let active = 0;
const counterListeners = new Set();

export function onCounts(listener) {
  counterListeners.add(listener);
  listener(counts());
}

function counts() {
  const busy = rows.filter((row) => !row.done).length;
  return { busy, total: rows.length };
}

function changed() {
  const now = counts();
  for (const listener of counterListeners) listener(now);
}

class Row {
  constructor(file) {
    this.file = file;
    this.trackId = null;
    this.done = false;
    this.stages = Object.fromEntries(STAGES.map((stage) => [stage, { state: 'waiting', percent: 0 }]));
    this.percents = []; // "stage:percent" of each percent event, in order
    this.status = h('span', { class: 'row-status', role: 'status' }, 'queued');
    this.bar = h('progress', { max: 1, value: 0, 'aria-label': `upload of ${file.name}` });
    this.reason = h('p', { class: 'row-reason', hidden: true });
    this.link = h('span', { class: 'row-name' }, file.name);
    this.chips = h('ol', { class: 'stages', 'aria-label': 'pipeline stages' });
    this.node = h(
      'li',
      { class: 'upload-row', dataset: { state: 'queued' } },
      h('div', { class: 'row-head' }, this.link, h('span', { class: 'row-size' }, bytes(file.size)), this.status),
      this.bar,
      this.chips,
      this.reason,
    );
    this.renderStages();
  }

  set(state, text) {
    this.node.dataset.state = state;
    this.status.textContent = text;
  }

  fail(reason) {
    this.done = true;
    this.set('failed', this.trackId ? 'failed' : 'refused');
    this.chips.hidden = !this.trackId; // refused at upload: no stage ever ran
    this.bar.hidden = true;
    this.reason.hidden = false;
    this.reason.textContent = this.duplicate ? `Duplicate of an earlier upload, which failed: ${reason}` : reason;
    this.unsubscribe?.();
    changed();
  }

  finish() {
    this.done = true;
    this.set('indexed', 'indexed');
    this.unsubscribe?.();
    changed();
  }

  renderStages() {
    if (this.trackId) {
      // the pipeline's share done: finished stages, plus the running one's percent
      const done = STAGES.reduce((sum, stage) => {
        const { state, percent } = this.stages[stage];
        return sum + (state === 'finished' ? 1 : state === 'started' ? (percent || 0) / 100 : 0);
      }, 0);
      this.bar.value = done / STAGES.length;
    }
    replace(
      this.chips,
      STAGES.map((stage) => {
        const { state, percent } = this.stages[stage];
        const text = state === 'started' && percent > 0 && percent < 100 ? `${stage} ${Math.round(percent)} %` : stage;
        const chip = h('li', { class: `stage stage-${state}`, title: `${stage}: ${state}` }, text);
        if (state === 'started' && percent > 0 && percent < 100) chip.style.setProperty('--percent', `${percent}%`);
        return chip;
      }),
    );
  }

  // One progress event (progress.v1) of this row's track.
  apply(event, final) {
    if (this.done) return;
    this.heard = Date.now();
    const stage = this.stages[event.stage];
    if (stage && event.state === 'percent' && this.percents.length < PERCENTS_KEPT) {
      this.percents.push(`${event.stage}:${Math.round(event.percent)}`);
      this.node.dataset.percents = this.percents.join(' ');
    }
    if (stage) {
      stage.state = event.state === 'percent' ? 'started' : event.state;
      stage.percent = event.state === 'finished' ? 100 : event.percent;
      this.renderStages();
    }
    if (event.state === 'failed') this.fail(event.message || `${event.stage} failed`);
    else if (final && event.state === 'finished') this.finish(); // after the last stage
    else this.set('processing', event.state === 'finished' ? `${event.stage} done` : `${event.stage}…`);
  }

  // The catalog's view of the track: covers events missed before or between streams.
  async resync() {
    if (!this.trackId || this.done) return;
    try {
      const track = await get(`/v1/tracks/${this.trackId}`);
      for (const [stage, info] of Object.entries(track.stages ?? {})) {
        if (this.stages[stage]) this.stages[stage] = { state: info.state, percent: info.percent };
      }
      this.renderStages();
      if (track.status === 'failed') this.fail(track.failure_reason || 'failed');
      else if (track.status === 'indexed') this.finish();
    } catch (error) {
      if (error.status === 404) this.fail('the track was deleted');
    }
  }

  async run() {
    this.set('uploading', 'uploading');
    try {
      const { status, body } = await upload(this.file, (fraction) => {
        this.bar.value = fraction;
      });
      this.trackId = body.track_id;
      this.bar.value = 0;
      this.bar.setAttribute('aria-label', `pipeline progress of ${this.file.name}`);
      this.link = replaceLink(this.link, body.track_id, this.file.name);
      if (status === 200) {
        this.duplicate = true;
        this.node.classList.add('duplicate');
        this.reason.hidden = false;
        this.reason.textContent = 'Duplicate: you uploaded these exact bytes before; this is the existing track.';
      }
      this.set('processing', 'uploaded');
      this.unsubscribe = progress.subscribe(this.trackId, (event, final) => this.apply(event, final));
      await this.resync();
      this.watch();
    } catch (error) {
      this.fail(error.message);
    }
  }

  watch() {
    this.heard = Date.now();
    const timer = setInterval(() => {
      if (this.done) clearInterval(timer);
      else if (Date.now() - this.heard > QUIET_RESYNC_MS) {
        this.heard = Date.now();
        this.resync();
      }
    }, 2000);
  }
}

function replaceLink(old, trackId, name) {
  const link = h('a', { class: 'row-name', href: `#/track/${trackId}` }, name);
  old.replaceWith(link);
  return link;
}

progress.onResync(() => {
  for (const row of rows) row.resync();
});

function pump() {
  while (active < CONCURRENCY && waiting.length) {
    const row = waiting.shift();
    active += 1;
    row.run().finally(() => {
      active -= 1;
      changed();
      pump();
    });
  }
}

const list = h('ol', { class: 'upload-list' });
const empty = h('p', { class: 'muted' }, 'Nothing uploaded yet in this session.');
onCounts(({ total }) => {
  empty.hidden = total > 0;
});

export async function enqueue(files) {
  if (!files.length) return;
  await progress.start();
  for (const file of files) {
    const row = new Row(file);
    rows.push(row);
    waiting.push(row);
    list.prepend(row.node);
  }
  changed();
  pump();
}

// Files of a drop: folders are walked recursively (File System entries API).
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const files = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  };
  for (const entry of entries) await walk(entry);
  return files;
}

function picker(label, attrs) {
  const input = h('input', { type: 'file', multiple: true, class: 'visually-hidden', tabindex: -1, ...attrs });
  input.addEventListener('change', () => {
    enqueue([...input.files]);
    input.value = '';
  });
  const button = h('label', { class: 'button', tabindex: 0, role: 'button' }, label, input);
  button.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      input.click();
    }
  });
  return button;
}

export function view() {
  const zone = h(
    'div',
    { class: 'dropzone', 'aria-label': 'drop audio files or folders here' },
    h('p', { class: 'dropzone-title' }, 'Drop audio files or folders here'),
    h('p', { class: 'muted' }, 'Any format FFmpeg reads. Uploads continue while you browse.'),
    h(
      'div',
      { class: 'actions' },
      picker('Choose files', { 'aria-label': 'choose audio files', accept: 'audio/*,.flac,.wav,.mp3,.ogg,.opus,.m4a,.aac,.aiff,.aif' }),
      picker('Choose a folder', { 'aria-label': 'choose a folder', webkitdirectory: true }),
    ),
  );
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', async (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    enqueue(await droppedFiles(event.dataTransfer));
  });
  return h('section', { class: 'page' }, h('h1', {}, 'Upload'), zone, h('h2', {}, 'This session'), empty, list);
}
