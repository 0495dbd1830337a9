import { api } from "../api.js";
import { RECEIPT_HEADER, receiptRows } from "../receipts.js";
import { act, errorFor, field, formValues, html, nothing, render, when } from "../ui.js";

export const title = "Sync";
const ACTIVE = ["queued", "running"];
const POLL_MS = 500;

export function mount(root) {
  const state = { errors: {}, busy: null, run: undefined, connection: null, receipts: null, joined: false };
  const draw = () => render(view(), root);
  let timer = null;
  let gone = false;

  async function refresh(runId) {
    const body = await act(state, "sync-status", draw, () => runId ? api(`/api/receipts/sync/status/${runId}`) : api("/api/receipts/sync/latest"));
    if (body) state.run = body.run;
    const latest = await act(state, "sync-receipts", draw, () => api("/api/receipts", { query: { per_page: 10 } }));
    if (latest) state.receipts = latest.items;
    draw();
    clearTimeout(timer);
    if (!gone && state.run && ACTIVE.includes(state.run.status)) timer = setTimeout(() => refresh(state.run.id), POLL_MS);
  }

  async function start(key, body) {
    state.joined = false;
    try {
      const started = await api("/api/receipts/sync", { method: "POST", body });
      delete state.errors[key];
      state.run = { id: started.run_id, status: started.status, progress_percentage: 0, messages_scanned: 0, saved_receipts: 0, errors_count: 0 };
      refresh(started.run_id);
    } catch (err) {
      if (err.status === 409 && err.body.run_id) {
        // Someone (another tab, a colleague) already started one: follow that run instead.
        state.errors[key] = "A sync is already running; showing its progress.";
        state.joined = true;
        refresh(err.body.run_id);
      } else {
        state.errors[key] = err.message;
      }
      draw();
    }
  }

  function full(event) {
    event.preventDefault();
    const { from_date: from, to_date: to } = formValues(event.target);
    start("full-sync", { mode: "full", ...(from ? { from_date: from } : {}), ...(to ? { to_date: to } : {}) });
  }

  const progress = () => {
    const run = state.run;
    if (run === undefined) return html`<p class="muted">Loading…</p>`;
    if (run === null) return html`<p class="empty">No sync has run yet. “Sync now” reads the mailbox for receipts.</p>`;
    const pct = Math.round(Number(run.progress_percentage) || 0);
    return html`<div class="card" id="sync-run" data-status=${run.status}>
      <p><strong id="sync-run-title">Run ${run.id}</strong> · ${run.mode || ""} · <span id="sync-state">${run.status}</span></p>
      <label for="sync-progress">Progress <span id="sync-percent">${pct}%</span></label>
      <progress id="sync-progress" max="100" .value=${pct} aria-valuenow=${pct}>${pct}%</progress>
      <div class="progress-line">
        <span>Messages scanned <strong id="sync-scanned">${run.messages_scanned ?? 0}</strong></span>
        <span>Receipts saved <strong id="sync-saved">${run.saved_receipts ?? 0}</strong></span>
        <span>Errors <strong id="sync-errors">${run.errors_count ?? 0}</strong></span>
      </div>
      <p class="muted">${run.started_at ? `started ${when(run.started_at)}` : ""}${run.finished_at ? ` · finished ${when(run.finished_at)}` : ""}
        ${run.last_heartbeat_at && ACTIVE.includes(run.status) ? ` · last heartbeat ${when(run.last_heartbeat_at)}` : ""}</p>
      ${run.status === "failed" ? html`<p class="error" role="alert" id="sync-failure">This sync failed: ${run.error_message || "no reason recorded"}</p>` : nothing}
      ${run.status === "completed" ? html`<p class="ok" role="status">Done. <a href="/receipts">See all receipts</a>.</p>` : nothing}
    </div>`;
  };

  const connection = () => {
    const c = state.connection;
    if (!c) return nothing;
    if (!c.connected) return html`<p class="error" role="alert">No Gmail mailbox is connected. <a href="/settings">Connect one in Settings</a>.</p>`;
    if (c.status === "needs_reconnect") return html`<p class="error" role="alert">Gmail (${c.email}) needs to be reconnected. <a href="/settings">Reconnect in Settings</a>.</p>`;
    return html`<p class="muted">Mailbox: ${c.email}</p>`;
  };

  const view = () => html`
    <h1>Sync receipts from Gmail</h1>
    ${connection()}
    <div class="card">
      <div class="toolbar">
        <button type="button" class="primary" id="sync-now" @click=${() => start("sync-now", { mode: "incremental" })}>Sync now</button>
        <span class="muted">Reads mail that arrived since the last sync.</span>
      </div>
      ${errorFor(state.errors, "sync-now")}
      <form class="bar" id="full-sync" @submit=${full}>
        ${field(state, "full-sync", "from_date", "From", { type: "date" })}
        ${field(state, "full-sync", "to_date", "To", { type: "date" })}
        <button id="full-sync-start">Full sync</button>
      </form>
      ${errorFor(state.errors, "full-sync")}
    </div>
    ${errorFor(state.errors, "sync-status")}
    ${progress()}
    <h2>Newest receipts</h2>
    <div class="table-wrap"><table><thead>${RECEIPT_HEADER}</thead>
      <tbody id="sync-receipts">${receiptRows(state.receipts, "No receipts yet.")}</tbody></table></div>`;

  draw();
  act(state, "connection", draw, () => api("/api/gmail/connection")).then((c) => { if (c) { state.connection = c; draw(); } });
  refresh(null);
  return () => { gone = true; clearTimeout(timer); };
}
