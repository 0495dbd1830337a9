// Shared view helpers: lit-html (vendored), formatting, errors shown next to the control that caused them,
// empty states, modal dialogs that lock the page's scroll.
import { html, render, nothing } from "/static/vendor/lit-html@3.3.3/lit-html.js";
import { ApiError } from "./api.js";

export { html, render, nothing };

// Dates in the browser's zone, or in `timeZone` (a business's IANA zone) when given.
export const when = (iso, timeZone) => (iso ? new Date(iso).toLocaleString(undefined, timeZone ? { timeZone } : {}) : "");
export const day = (iso, timeZone) => (iso ? new Date(iso).toLocaleDateString(undefined, timeZone ? { timeZone } : {}) : "");
export const epoch = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : "");
export function seconds(value) {
  if (value === null || value === undefined) return "";
  const s = Number(value);
  return s >= 60 ? `${Math.floor(s / 60)}m ${Math.round(s % 60)}s` : `${s.toFixed(1)}s`;
}
export function money(amount, currency) {
  if (amount === null || amount === undefined || amount === "") return "";
  const n = Number(amount);
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "USD" }).format(n);
  } catch {
    return `${amount} ${currency || ""}`.trim();
  }
}

// Errors live in a page's `errors` object, keyed by the control (or form) that caused them; a 422's
// field messages go under "<form>.<field>".
export function errorFor(errors, key) {
  return html`<p class="error" role="alert" id=${`${key}-error`} data-error-for=${key}>${errors[key] || ""}</p>`;
}

export async function act(state, key, draw, work) {
  for (const k of Object.keys(state.errors)) if (k === key || k.startsWith(`${key}.`)) delete state.errors[k];
  state.busy = key;
  draw();
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    state.errors[key] = err.message;
    for (const [field, message] of Object.entries(err.fields)) state.errors[`${key}.${field}`] = message;
    return undefined;
  } finally {
    state.busy = null;
    draw();
  }
}

// A labelled input with its own error line: field(state, "lead-form", "phone", "Phone", {type: "tel"}).
export function field(state, form, name, label, { type = "text", value = "", required = false, ...rest } = {}) {
  const id = `${form}-${name}`;
  const key = `${form}.${name}`;
  const input = type === "textarea"
    ? html`<textarea id=${id} name=${name} .value=${value ?? ""} aria-describedby=${`${key}-error`}></textarea>`
    : html`<input id=${id} name=${name} type=${type} .value=${value ?? ""} ?required=${required}
        autocomplete=${rest.autocomplete || "off"} placeholder=${rest.placeholder || ""}
        aria-describedby=${`${key}-error`}>`;
  return html`<label class=${`field ${rest.wide ? "wide" : ""}`} for=${id}><span>${label}</span>${input}
    ${errorFor(state.errors, key)}</label>`;
}

export function select(state, form, name, label, options, value, { onChange } = {}) {
  const id = `${form}-${name}`;
  const key = `${form}.${name}`;
  return html`<label class="field" for=${id}><span>${label}</span>
    <select id=${id} name=${name} aria-describedby=${`${key}-error`} @change=${onChange || (() => {})}>
      ${options.map(([v, text]) => html`<option value=${v} ?selected=${String(v) === String(value ?? "")}>${text}</option>`)}
    </select>${errorFor(state.errors, key)}</label>`;
}

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

export function emptyRow(columns, text) {
  return html`<tr><td class="empty" colspan=${columns}>${text}</td></tr>`;
}

export function loadingRow(columns) {
  return html`<tr><td class="loading muted" colspan=${columns}>Loading…</td></tr>`;
}

// Page-scroll lock for modals that also holds on iOS Safari (overflow: hidden alone does not): the body is
// fixed at -scrollY while the dialog is open, and the position is restored exactly when it closes.
let lockedAt = null;
export function lockScroll() {
  if (lockedAt !== null) return;
  lockedAt = window.scrollY;
  document.body.style.top = `-${lockedAt}px`;
  document.body.classList.add("scroll-locked");
}
export function unlockScroll() {
  if (lockedAt === null) return;
  const y = lockedAt;
  lockedAt = null;
  document.body.classList.remove("scroll-locked");
  document.body.style.top = "";
  window.scrollTo(0, y);
}

// Open a <dialog> modally with the scroll lock; closing it any way (button, Escape) unlocks.
export function openDialog(dialog) {
  if (!dialog || dialog.open) return;
  lockScroll();
  dialog.addEventListener("close", unlockScroll, { once: true });
  dialog.showModal();
}

export function pager(page, perPage, total, go) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" ?disabled=${page <= 1} @click=${() => go(page - 1)}>Previous</button>
    <span>Page ${page} of ${pages} · ${total} in all</span>
    <button type="button" ?disabled=${page >= pages} @click=${() => go(page + 1)}>Next</button>
  </nav>`;
}

// Repeats `work` every `ms` until the returned stop function is called; one run at a time.
export function every(ms, work) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try { await work(); } catch (err) { if (!(err instanceof ApiError)) throw err; }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(timer); };
}
