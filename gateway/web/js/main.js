// The web app's entry: the sign-in form and the session. Only this module, api.js and dom.js
// load with the page. The signed-in app (shell.js and its pages) is fetched once a session is
// restored, or in the background once the sign-in form is shown: every module side by side (the
// gateway lists them in the page) rather than one import level after another.

import { onSessionChange, restore, signIn } from './api.js';
import { field, h, notice, replace } from './dom.js';

const app = document.getElementById('app');
const later = document.querySelector('meta[name="later-modules"]')?.content.split(' ') ?? [];
let shellLoaded = null;
const loadShell = () => (shellLoaded ??= Promise.all(later.filter(Boolean).map((path) => import(path))).then(() => import('./shell.js')));

function loginPage() {
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const message = h('div', {});
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'login card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Tonestream'),
    field('User name', username),
    field('Password', password),
    message,
    button,
    h(
      'p',
      { class: 'muted small' },
      'First start: sign in as ',
      h('code', {}, 'admin'),
      ' with the password ',
      h('code', {}, 'tonestream password'),
      ' prints on the machine that runs the server.',
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await signIn(username.value.trim(), password.value);
    } catch (error) {
      replace(message, notice('error', error.status === 401 ? 'Wrong user name or password.' : error.message));
      password.select();
    } finally {
      button.disabled = false;
    }
  });
  replace(app, h('main', { class: 'login-page' }, form));
  username.focus();
}

let opened = false;
onSessionChange((signedIn) => {
  if (signedIn && !opened) {
    opened = true;
    loadShell()
      .then((shell) => shell.open(app))
      .catch((error) => replace(app, h('main', { class: 'login-page' }, notice('error', `The app did not load: ${error.message}. Reload the page.`))));
  } else if (!signedIn && opened) {
    location.reload(); // the session ended (expired or revoked): back to the sign-in form
  }
});

restore().then((ok) => {
  if (ok) return;
  loginPage();
  loadShell().catch(() => {}); // ready before the person has typed; a failure shows at sign-in
});
