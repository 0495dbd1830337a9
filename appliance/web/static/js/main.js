// The CRM shell: path router, navigation, the logged-in user. Each page is its own module under pages/,
// loaded when first visited, exporting mount(root, ctx) that returns a cleanup function.
import { api, whenUnauthorized } from "./api.js";
import { html, render } from "./ui.js";

const PAGES = [
  ["leads", "Leads"], ["inbox", "WhatsApp"], ["calls", "Calls"], ["receipts", "Receipts"],
  ["sync", "Sync"], ["jobs", "Jobs"], ["settings", "Settings"],
];
const ROUTES = [
  [/^\/login$/, "login"], [/^\/leads$/, "leads"], [/^\/leads\/(\d+)$/, "lead"], [/^\/inbox$/, "inbox"],
  [/^\/calls$/, "calls"], [/^\/receipts$/, "receipts"], [/^\/sync$/, "sync"], [/^\/jobs$/, "jobs"],
  [/^\/settings$/, "settings"],
];

const main = document.getElementById("main");
let me = null;
let cleanup = () => {};
let generation = 0;

function match(path) {
  for (const [pattern, page] of ROUTES) {
    const found = path.match(pattern);
    if (found) return { page, params: found.slice(1) };
  }
  return null;
}

function drawShell(page) {
  const section = page === "lead" ? "leads" : page;
  render(me ? PAGES.map(([id, label]) => html`<a href=${`/${id}`} aria-current=${section === id ? "page" : "false"}>${label}</a>`) : "",
    document.getElementById("nav"));
  render(me ? html`<span>${me.email}</span><button type="button" id="logout" @click=${logout}>Log out</button>` : "",
    document.getElementById("who"));
}

async function logout() {
  try { await api("/api/auth/logout", { method: "POST", body: {} }); } finally { me = null; go("/login"); }
}

export function go(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path); else history.pushState(null, "", path);
  show();
}

async function show() {
  const mine = ++generation;
  cleanup();
  cleanup = () => {};
  // Old links and redirects written as "/#settings" land on the page of that name.
  if (location.pathname === "/" && match(`/${location.hash.slice(1)}`)) history.replaceState(null, "", `/${location.hash.slice(1)}${location.search}`);
  let route = match(location.pathname);
  if (!route) { history.replaceState(null, "", "/leads"); route = match("/leads"); }
  if (!me && route.page !== "login") {
    try { me = await api("/api/auth/me"); } catch { me = null; }
    if (mine !== generation) return;
    if (!me) { history.replaceState(null, "", `/login?next=${encodeURIComponent(location.pathname + location.search)}`); route = match("/login"); }
  }
  drawShell(route.page);
  const module = await import(`./pages/${route.page}.js`);
  if (mine !== generation) return;
  document.title = `${module.title} · appliance`;
  const root = document.createElement("div");
  root.className = `page page-${route.page}`;
  main.replaceChildren(root);
  const query = new URLSearchParams(location.search);
  cleanup = module.mount(root, {
    params: route.params, query, me, go,
    loggedIn: async () => { me = await api("/api/auth/me"); },
  }) || (() => {});
}

whenUnauthorized(() => {
  if (me && location.pathname !== "/login") { me = null; go(`/login?next=${encodeURIComponent(location.pathname)}`, { replace: true }); }
});

// Same-origin links navigate inside the app; the rest (API downloads, OAuth start) leave it normally.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || link.target || link.hasAttribute("download")) return;
  if (!match(url.pathname)) return;
  event.preventDefault();
  go(url.pathname + url.search);
});
window.addEventListener("popstate", show);
show();
