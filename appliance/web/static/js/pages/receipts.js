import { api } from "../api.js";
import { RECEIPT_HEADER, receiptRows, STATUSES, statusBadge } from "../receipts.js";
import { act, errorFor, field, formValues, html, money, nothing, openDialog, pager, render, select, when } from "../ui.js";

export const title = "Receipts";
const PER_PAGE = 25;
const FILTERS = ["from_date", "to_date", "status", "q"];

export function mount(root, ctx) {
  // The filter lives in the address bar too, so a reload or a shared link shows the same receipts.
  // (Links of the old CRM spell the dates fromDate/toDate; they are read and sent as from_date/to_date.)
  const camel = { from_date: "fromDate", to_date: "toDate" };
  const filter = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || ctx.query.get(camel[k]) || ""]));
  const state = { errors: {}, busy: null, rows: null, total: 0, page: Number(ctx.query.get("page")) || 1, stats: null, open: null, timeZone: undefined };
  const draw = () => render(view(), root);

  async function load() {
    const query = { ...filter, page: state.page, per_page: PER_PAGE };
    const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v !== null));
    history.replaceState(null, "", `/receipts?${params}`);
    await act(state, "receipts-filter", draw, async () => {
      const [list, stats, settings] = await Promise.all([api("/api/receipts", { query }), api("/api/receipts/stats", { query: filter }),
        state.timeZone ? null : api("/api/settings")]);
      if (settings) state.timeZone = settings.settings.timezone || "UTC";
      state.rows = list.items;
      state.total = list.total;
      state.stats = stats;
    });
  }

  function applyFilter(event) {
    event.preventDefault();
    Object.assign(filter, formValues(event.target));
    state.page = 1;
    load();
  }

  function clearFilter() {
    for (const k of FILTERS) filter[k] = "";
    state.page = 1;
    load();
  }

  async function open(receipt) {
    state.open = { ...receipt, attachments: null };
    state.saved = "";
    draw();
    openDialog(root.querySelector("#receipt-dialog"));
    const found = await act(state, "receipt", draw, () => api(`/api/receipts/${receipt.id}`));
    if (found) { state.open = found.receipt; draw(); }
  }

  async function patch(key, body) {
    const updated = await act(state, key, draw, () => api(`/api/receipts/${state.open.id}`, { method: "PATCH", body }));
    if (!updated) return;
    state.open = { ...state.open, ...updated.receipt };
    state.saved = key === "correct" ? "Corrections saved." : `Marked ${updated.receipt.status}.`;
    const row = state.rows.find((r) => r.id === state.open.id);
    if (row) Object.assign(row, updated.receipt);
    draw();
    load();
  }

  function correct(event) {
    event.preventDefault();
    const values = formValues(event.target);
    patch("correct", { vendor: values.vendor, amount: values.amount, currency: values.currency.toUpperCase() });
  }

  function close() { root.querySelector("#receipt-dialog").close(); }

  const totals = () => {
    const s = state.stats;
    if (!s) return nothing;
    return html`<div class="totals" id="receipt-totals" aria-label="Totals for this filter">
      ${s.totals.length === 0 ? html`<span class="muted">No amounts for this filter.</span>`
        : s.totals.map((t) => html`<span data-currency=${t.currency}><strong>${money(t.amount, t.currency)}</strong>
            <span class="muted">${t.currency} · ${t.count} receipts</span></span>`)}
      <span class="muted">${Object.entries(s.by_status || {}).map(([k, v]) => `${k} ${v}`).join(" · ")}</span></div>`;
  };

  const dialog = () => {
    const r = state.open;
    if (!r) return nothing;
    return html`
      <header><strong id="receipt-title">${r.vendor || "Receipt"} · ${money(r.amount, r.currency)}</strong>
        <button type="button" aria-label="Close" @click=${close}>✕</button></header>
      <div class="dialog-body">
        ${errorFor(state.errors, "receipt")}
        <p>${statusBadge(r.status)} <span class="muted">received ${when(r.received_at, state.timeZone)} (${state.timeZone})</span></p>
        <p dir="auto">${r.subject}</p>
        ${r.preview_url ? html`<img class="preview" id="receipt-preview" src=${r.preview_url} alt=${`Preview of the email from ${r.vendor || "the vendor"}`}>`
          : r.attachments === null ? nothing : html`<p class="muted">No preview of this email yet.</p>`}
        <h2>Attachments</h2>
        ${r.attachments === null || r.attachments === undefined ? html`<p class="muted">Loading…</p>`
          : r.attachments.length === 0 ? html`<p class="empty">No attachments.</p>`
          : html`<ul class="thumbs list-plain" id="receipt-attachments">${r.attachments.map((a) => html`<li>
              <a href=${a.url} target="_blank" rel="noopener" download=${a.filename}>
                ${a.thumbnail_url ? html`<img src=${a.thumbnail_url} alt=${`First page of ${a.filename}`}><br>` : nothing}${a.filename}</a>
              <span class="muted">${a.content_type} · ${Math.ceil((a.size || 0) / 1024)} KiB</span></li>`)}</ul>`}
        <h2>Review</h2>
        <div class="toolbar">
          <button type="button" class="primary" id="approve" ?disabled=${state.busy === "review"} @click=${() => patch("review", { status: "approved" })}>Approve</button>
          <button type="button" class="danger" id="reject" ?disabled=${state.busy === "review"} @click=${() => patch("review", { status: "rejected" })}>Reject</button>
          <span class="ok" role="status">${state.saved}</span>
        </div>
        ${errorFor(state.errors, "review")}
        <form id="correct" @submit=${correct}>
          <div class="grid-form">
            ${field(state, "correct", "vendor", "Vendor", { value: r.vendor })}
            ${field(state, "correct", "amount", "Amount", { value: r.amount, placeholder: "1234.50" })}
            ${field(state, "correct", "currency", "Currency", { value: r.currency, placeholder: "ILS" })}
          </div>
          <button ?disabled=${state.busy === "correct"}>Save corrections</button>
          ${errorFor(state.errors, "correct")}
        </form>
      </div>`;
  };

  const view = () => html`
    <h1>Receipts</h1>
    <form class="bar" id="receipts-filter" @submit=${applyFilter}>
      ${field(state, "receipts-filter", "from_date", "From", { type: "date", value: filter.from_date })}
      ${field(state, "receipts-filter", "to_date", "To", { type: "date", value: filter.to_date })}
      ${select(state, "receipts-filter", "status", "Status", [["", "any"], ...STATUSES.map((s) => [s, s])], filter.status)}
      <label class="field" for="receipts-q"><span>Search</span>
        <input id="receipts-q" name="q" type="search" placeholder="vendor or subject" .value=${filter.q}></label>
      <button class="primary">Filter</button>
      <button type="button" @click=${clearFilter}>Clear</button>
    </form>
    ${errorFor(state.errors, "receipts-filter")}
    ${totals()}
    <div class="table-wrap"><table><thead>${RECEIPT_HEADER}</thead>
      <tbody id="receipts-rows">${receiptRows(state.rows, FILTERS.some((k) => filter[k])
        ? "No receipt matches this filter." : html`No receipts yet. Connect Gmail in <a href="/settings">Settings</a>, then <a href="/sync">sync</a>.`, open, state.timeZone)}</tbody></table></div>
    ${pager(state.page, PER_PAGE, state.total, (p) => { state.page = p; load(); })}
    <dialog id="receipt-dialog" aria-labelledby="receipt-title">${dialog()}</dialog>`;

  draw();
  load();
  return () => { const d = root.querySelector("#receipt-dialog"); if (d && d.open) d.close(); };
}
