// Operations (admin only): the pipeline's backlog per stage, tracks by status, and replay.

import { get, post } from './api.js';
import { field, h, notice, replace, select } from './dom.js';
import { STAGES, statusLabel } from './format.js';

const REFRESH_MS = 5000;

export function view() {
  const status = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const answer = h('div', { 'aria-live': 'polite' });
  const since = h('input', { type: 'datetime-local', name: 'since', step: 1 });
  const form = h(
    'form',
    { class: 'inline-form' },
    field('Stage', select('stage', STAGES.map((stage) => [stage, stage]), 'indexing')),
    field('Since (local time; empty: the whole log)', since),
    h('button', { type: 'submit', class: 'primary' }, 'Replay'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const request = { stage: data.get('stage') };
    if (since.value) request.since = new Date(since.value).toISOString();
    try {
      const result = await post('/v1/admin/replay', request);
      replace(answer, notice('success', `Replaying ${result.stage} from sequence ${result.from_sequence}: ${result.pending} message${result.pending === 1 ? '' : 's'} to process.`));
      load();
    } catch (error) {
      replace(answer, notice('error', error.message));
    }
  });

  const load = async () => {
    try {
      const state = await get('/v1/admin/status');
      const columns = ['pending', 'in_flight', 'redelivered', 'failed', 'lag'];
      replace(
        status,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'tracks' },
            h('caption', { class: 'visually-hidden' }, 'Backlog per stage'),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Stage'), columns.map((name) => h('th', { scope: 'col', class: 'num' }, name.replace('_', ' '))))),
            h('tbody', {}, state.stages.map((stage) => h('tr', {}, h('th', { scope: 'row' }, stage.stage), columns.map((name) => h('td', { class: `num${stage[name] ? ' busy' : ''}` }, stage[name]))))),
          ),
        ),
        h('h2', {}, 'Tracks by status (all users)'),
        h('ul', { class: 'counts' }, Object.entries(state.tracks_by_status).map(([name, count]) => h('li', {}, h('strong', {}, count), ` ${statusLabel(name)}`))),
      );
    } catch (error) {
      replace(status, notice('error', error.message));
    }
  };
  load();
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') load();
  }, REFRESH_MS);
  return {
    node: h('section', { class: 'page' }, h('h1', {}, 'Pipeline'), status, h('h2', {}, 'Replay a stage'), h('p', { class: 'muted' }, 'The stage re-reads its input events from the log. Use it to rebuild an index or re-run a stage after a version change.'), form, answer),
    leave: () => clearInterval(timer),
  };
}
