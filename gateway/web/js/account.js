// The signed-in user and their API keys: create one (its secret is shown once), revoke one.

import { del, get, post, user } from './api.js';
import { dateTime } from './format.js';
import { field, h, notice, replace } from './dom.js';

export function view() {
  const me = user();
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const created = h('div', {});
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 100, placeholder: 'e.g. laptop scripts', autocomplete: 'off' });
  const form = h('form', { class: 'inline-form' }, field('New key name', name), h('button', { type: 'submit', class: 'primary' }, 'Create API key'));

  const load = async () => {
    try {
      const keys = await get('/v1/auth/api-keys');
      if (!keys.length) {
        replace(list, h('p', { class: 'muted' }, 'No API keys.'));
        return;
      }
      replace(
        list,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'tracks keys' },
            h('caption', { class: 'visually-hidden' }, 'Your API keys'),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Last used'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'actions')))),
            h(
              'tbody',
              {},
              keys.map((key) => {
                const revoke = h('button', { type: 'button', class: 'danger small', 'aria-label': `revoke ${key.name}` }, 'Revoke');
                revoke.addEventListener('click', async () => {
                  if (!confirm(`Revoke the key “${key.name}”? Programs using it stop working at once.`)) return;
                  try {
                    await del(`/v1/auth/api-keys/${encodeURIComponent(key.key_id)}`);
                    load();
                  } catch (error) {
                    replace(created, notice('error', error.message));
                  }
                });
                return h('tr', {}, h('td', {}, key.name), h('td', {}, dateTime(key.created_at)), h('td', {}, key.last_used_at ? dateTime(key.last_used_at) : 'never'), h('td', {}, revoke));
              }),
            ),
          ),
        ),
      );
    } catch (error) {
      replace(list, notice('error', error.message));
    }
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const key = await post('/v1/auth/api-keys', { name: name.value });
      const secret = h('input', { type: 'text', readonly: true, value: key.api_key, class: 'secret', 'aria-label': 'the new API key' });
      const copy = h('button', { type: 'button' }, 'Copy');
      copy.addEventListener('click', async () => {
        await navigator.clipboard?.writeText(key.api_key);
        copy.textContent = 'Copied';
      });
      replace(
        created,
        h(
          'div',
          { class: 'notice notice-success', role: 'status' },
          h('p', {}, `Key “${key.name}” created. Copy it now: it is not shown again.`),
          h('div', { class: 'inline-form' }, secret, copy),
          h('p', { class: 'muted' }, 'Send it as “Authorization: Bearer <key>” or “X-API-Key: <key>”.'),
        ),
      );
      name.value = '';
      load();
    } catch (error) {
      replace(created, notice('error', error.message));
    }
  });
  load();
  return h(
    'section',
    { class: 'page' },
    h('h1', {}, 'Account'),
    h('p', {}, 'Signed in as ', h('strong', {}, me.username), me.role === 'admin' ? ' (admin)' : ''),
    h('h2', {}, 'API keys'),
    h('p', { class: 'muted' }, 'For scripts and the tonestream CLI. Signing out of this page does not revoke them.'),
    form,
    created,
    list,
  );
}
