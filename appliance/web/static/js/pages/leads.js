import { api } from "../api.js";
import { act, emptyRow, errorFor, field, formValues, html, loadingRow, pager, render, select, when } from "../ui.js";

export const title = "Leads";
export const STATUSES = ["new", "contacted", "qualified", "won", "lost"];
const PER_PAGE = 25;

// Only the fields a person filled in: an empty input means "not given", not an empty string.
export function leadBody(form) {
  return Object.fromEntries(Object.entries(formValues(form)).filter(([, v]) => v !== ""));
}

export function mount(root, ctx) {
  const state = { errors: {}, busy: null, rows: null, total: 0, page: 1, q: "", status: "", adding: false };
  const draw = () => render(view(), root);

  async function load() {
    await act(state, "leads", draw, async () => {
      const body = await api("/api/leads", { query: { q: state.q, status: state.status, page: state.page, per_page: PER_PAGE } });
      state.rows = body.leads;
      state.total = body.total;
    });
  }

  async function create(event) {
    event.preventDefault();
    const form = event.target;
    const created = await act(state, "new-lead", draw, () => api("/api/leads", { method: "POST", body: leadBody(form) }));
    if (created) { form.reset(); state.adding = false; state.page = 1; await load(); }
  }

  async function setStatus(lead, status) {
    const key = `status-${lead.id}`;
    const updated = await act(state, key, draw, () => api(`/api/leads/${lead.id}`, { method: "PATCH", body: { status } }));
    if (updated) Object.assign(lead, updated.lead);
    draw();
  }

  function search(event) {
    event.preventDefault();
    const values = formValues(event.target);
    state.q = values.q; state.status = values.status; state.page = 1;
    load();
  }

  const row = (lead) => html`<tr data-lead=${lead.id}>
    <td><a href=${`/leads/${lead.id}`}>${lead.name || lead.phone || lead.email}</a></td>
    <td>${lead.phone}</td><td class="hide-phone">${lead.email}</td><td class="hide-phone">${lead.source}</td>
    <td><select id=${`status-${lead.id}`} aria-label=${`Status of ${lead.name || lead.phone || lead.email}`}
        @change=${(e) => setStatus(lead, e.target.value)}>
        ${STATUSES.map((s) => html`<option ?selected=${s === lead.status}>${s}</option>`)}
      </select>${errorFor(state.errors, `status-${lead.id}`)}</td>
    <td class="hide-phone">${when(lead.created_at)}</td></tr>`;

  const view = () => html`
    <h1>Leads</h1>
    <div class="toolbar">
      <form class="bar" role="search" @submit=${search}>
        <label class="field" for="leads-q"><span>Search</span>
          <input id="leads-q" name="q" type="search" placeholder="name, phone or email" .value=${state.q}></label>
        ${select(state, "leads-filter", "status", "Status", [["", "any"], ...STATUSES.map((s) => [s, s])], state.status)}
        <button>Search</button>
      </form>
      <button type="button" class="primary" id="add-lead" aria-expanded=${state.adding ? "true" : "false"}
        @click=${() => { state.adding = !state.adding; draw(); if (state.adding) root.querySelector("#new-lead-name").focus(); }}>New lead</button>
    </div>
    <form class="card" id="new-lead" ?hidden=${!state.adding} @submit=${create} novalidate>
      <h2>New lead</h2>
      <div class="grid-form">
        ${field(state, "new-lead", "name", "Name")}
        ${field(state, "new-lead", "phone", "Phone", { type: "tel", placeholder: "+972501234567" })}
        ${field(state, "new-lead", "email", "Email", { type: "email" })}
        ${field(state, "new-lead", "source", "Source", { placeholder: "manual" })}
        ${select(state, "new-lead", "status", "Status", STATUSES.map((s) => [s, s]), "new")}
        ${field(state, "new-lead", "notes", "Notes", { type: "textarea", wide: true })}
      </div>
      <button class="primary" ?disabled=${state.busy === "new-lead"}>Save lead</button>
      <button type="button" @click=${() => { state.adding = false; draw(); }}>Cancel</button>
      ${errorFor(state.errors, "new-lead")}
    </form>
    ${errorFor(state.errors, "leads")}
    <div class="table-wrap"><table>
      <thead><tr><th>Name</th><th>Phone</th><th class="hide-phone">Email</th><th class="hide-phone">Source</th><th>Status</th><th class="hide-phone">Created</th></tr></thead>
      <tbody id="leads-rows">${state.rows === null ? loadingRow(6)
        : state.rows.length === 0 ? emptyRow(6, state.q || state.status ? "No lead matches this search." : "No leads yet. Add one with “New lead”; WhatsApp contacts appear here by themselves.")
        : state.rows.map(row)}</tbody>
    </table></div>
    ${pager(state.page, PER_PAGE, state.total, (p) => { state.page = p; load(); })}`;

  draw();
  load();
}
