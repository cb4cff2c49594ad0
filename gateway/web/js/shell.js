// The signed-in app: the navigation and hash routing (#/library, #/track/<id>, …). Pages are
// plain functions returning DOM nodes; uploads and the progress stream live in their own modules,
// so they carry on while the person moves between pages. main.js loads this module once a
// session exists, so the sign-in form never waits for it.

import * as account from './account.js';
import * as admin from './admin.js';
import { signOut, user } from './api.js';
import { h, replace } from './dom.js';
import * as library from './library.js';
import * as progress from './progress.js';
import * as search from './search.js';
import * as track from './track.js';
import * as uploads from './upload.js';

const main = h('main', { id: 'main', tabindex: -1 });
let leave = null;

const ROUTES = [
  [/^library$/, (params) => library.view(params)],
  [/^track\/([0-9a-f]{32})$/, (params, id) => track.view(params, id)],
  [/^upload$/, () => uploads.view()],
  [/^search$/, () => search.view()],
  [/^account$/, () => account.view()],
  [/^admin$/, () => admin.view(), 'admin'],
];

function parseHash() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, queryText = ''] = hash.split('?', 2);
  return { path: path || 'library', params: new URLSearchParams(queryText) };
}

function navLink(href, label, extra) {
  return h('a', { href, class: 'nav-link' }, label, extra);
}

function shell(root) {
  const me = user();
  const badge = h('span', { class: 'count', hidden: true, 'aria-label': 'uploads in progress' });
  uploads.onCounts(({ busy }) => {
    badge.hidden = busy === 0;
    badge.textContent = String(busy);
  });
  const out = h('button', { type: 'button', class: 'link' }, 'Sign out');
  out.addEventListener('click', () => {
    progress.stop();
    history.replaceState(null, '', '/');
    signOut().catch(() => {}); // the session listener reloads the page: nothing stays in memory
  });
  const header = h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h('a', { class: 'brand', href: '#/library' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Tonestream'),
    h(
      'nav',
      { 'aria-label': 'main' },
      navLink('#/library', 'Library'),
      navLink('#/upload', 'Upload', badge),
      navLink('#/search', 'Search'),
      me.role === 'admin' ? navLink('#/admin', 'Pipeline') : null,
      navLink('#/account', me.username),
      out,
    ),
  );
  header.querySelector('.skip').addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });
  replace(root, header, main);
}

function route() {
  const { path, params } = parseHash();
  leave?.();
  leave = null;
  for (const [pattern, make, role] of ROUTES) {
    const match = path.match(pattern);
    if (!match || (role && user().role !== role)) continue;
    const made = make(params, ...match.slice(1));
    const node = made instanceof Node ? made : made.node;
    leave = made instanceof Node ? null : made.leave;
    replace(main, node);
    for (const link of document.querySelectorAll('.nav-link')) {
      const current = link.getAttribute('href') === `#/${path.split('/')[0]}`;
      if (current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    document.title = `${node.querySelector('h1')?.textContent ?? 'Tonestream'} · Tonestream`;
    return;
  }
  replace(main, h('section', { class: 'page' }, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/library' }, 'Go to the library'))));
}

export function open(root) {
  shell(root);
  progress.start();
  route();
  window.addEventListener('hashchange', route);
}
