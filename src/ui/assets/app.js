// The console's entry: routing by the URL fragment (`#/projects/shop` is the page of the API
// resource `/v2/projects/shop`), sign-in state, theme.

import { h, fill, alertBox } from './dom.js';
import { session, whenUnauthorized } from './api.js';
import * as views from './views.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let config = { version: '' };

function signOut() {
  session.signOut();
  location.hash = '#/signin';
}

function renderNav() {
  if (!session.token) { fill(nav); return; }
  fill(nav,
    h('a', { href: '#/' }, 'Projects & clusters'),
    h('button', { type: 'button', class: 'btn small', id: 'sign-out', onclick: signOut }, 'Sign out'));
}

const PREFIXES = {
  '/new': views.create,
  '/edit': views.edit,
  '/manifests': views.manifests,
  '/json': views.json,
  '/plan': views.plan,
  '/analysis': views.analysis,
};

async function route() {
  const fragment = decodeURI(location.hash.slice(1) || '/');
  const path = fragment.split('?')[0] || '/';
  renderNav();
  fill(main);
  main.setAttribute('aria-busy', 'true');
  try {
    if (!session.token) {
      if (path !== '/signin') { location.replace('#/signin'); return; }
      await views.signIn(main, { config, onSignedIn: () => { location.hash = '#/'; } });
      return;
    }
    if (path === '/signin') { location.replace('#/'); return; }
    if (path === '/') { await views.home(main); return; }
    const prefix = Object.keys(PREFIXES).find((p) => path.startsWith(`${p}/`));
    if (prefix) await PREFIXES[prefix](main, path.slice(prefix.length));
    else await views.resource(main, path);
  } catch (e) {
    views.errorView(main, e);
  } finally {
    main.removeAttribute('aria-busy');
    // Move focus to the new page's heading, as a page load would, for keyboard and screen readers.
    document.getElementById('page-title')?.focus({ preventScroll: true });
  }
}

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem('meshintent.theme', theme);
  const button = document.getElementById('theme');
  button.setAttribute('aria-pressed', String(theme === 'dark'));
  button.textContent = theme === 'dark' ? 'Light' : 'Dark';
  button.title = theme === 'dark' ? 'Light theme' : 'Dark theme';
}

async function start() {
  try {
    config = await (await fetch('/ui/config.json')).json();
  } catch { /* the console still works with token sign-in */ }
  document.getElementById('version').textContent = config.version ? `v${config.version}` : '';
  const saved = localStorage.getItem('meshintent.theme');
  setTheme(saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
  document.getElementById('theme').addEventListener('click', () => {
    setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
  });
  whenUnauthorized(() => {
    if (session.token) { session.signOut(); location.hash = '#/signin'; }
  });
  try {
    if (await views.oidcFinish(config)) location.hash = '#/';
  } catch (e) {
    main.append(alertBox(e.message));
  }
  document.querySelector('.skip').addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', route);
  await route();
}

start();
