import { api } from "../api.js";
import { callRows, CALL_HEADER } from "../calls.js";
import { jidOf, loadThread, send, threadView } from "../thread.js";
import { act, errorFor, field, html, openDialog, render, select, when } from "../ui.js";
import { leadBody, STATUSES } from "./leads.js";

export const title = "Lead";

export function mount(root, ctx) {
  const id = Number(ctx.params[0]);
  const state = { errors: {}, busy: null, lead: null, messages: null, calls: null, saved: false };
  const draw = () => render(view(), root);

  async function load() {
    const found = await act(state, "lead", draw, () => api(`/api/leads/${id}`));
    if (!found) return;
    state.lead = found.lead;
    draw();
    const jid = jidOf(state.lead.phone);
    state.messages = jid ? await loadThread(jid) : [];
    state.calls = state.lead.phone ? (await api("/api/calls", { query: { phone: state.lead.phone, per_page: 100 } })).calls : [];
    draw();
  }

  async function save(event) {
    event.preventDefault();
    state.saved = false;
    const body = leadBody(event.target);
    for (const name of ["name", "phone", "email", "notes"]) if (!(name in body)) body[name] = null;
    const updated = await act(state, "edit-lead", draw, () => api(`/api/leads/${id}`, { method: "PATCH", body }));
    if (updated) { state.lead = updated.lead; state.saved = true; draw(); }
  }

  async function remove() {
    const done = await act(state, "delete-lead", draw, () => api(`/api/leads/${id}`, { method: "DELETE" }));
    if (done) { root.querySelector("#confirm-delete").close(); ctx.go("/leads"); }
  }

  async function sendMessage(event) {
    if (await send(state, draw, event, jidOf(state.lead.phone))) { state.messages = await loadThread(jidOf(state.lead.phone)); draw(); }
  }

  const view = () => {
    const lead = state.lead;
    if (!lead) return html`<p><a href="/leads">← Leads</a></p>${errorFor(state.errors, "lead")}
      ${state.errors.lead ? "" : html`<p class="muted">Loading…</p>`}`;
    return html`
      <p><a href="/leads">← Leads</a></p>
      <h1>${lead.name || lead.phone || lead.email}</h1>
      <form class="card" id="edit-lead" @submit=${save} novalidate>
        <div class="grid-form">
          ${field(state, "edit-lead", "name", "Name", { value: lead.name })}
          ${field(state, "edit-lead", "phone", "Phone", { type: "tel", value: lead.phone })}
          ${field(state, "edit-lead", "email", "Email", { type: "email", value: lead.email })}
          ${field(state, "edit-lead", "source", "Source", { value: lead.source })}
          ${select(state, "edit-lead", "status", "Status", STATUSES.map((s) => [s, s]), lead.status)}
          ${field(state, "edit-lead", "notes", "Notes", { type: "textarea", value: lead.notes, wide: true })}
        </div>
        <button class="primary" ?disabled=${state.busy === "edit-lead"}>Save changes</button>
        <button type="button" class="danger" id="delete-lead" @click=${() => openDialog(root.querySelector("#confirm-delete"))}>Delete lead</button>
        <span class="ok" role="status">${state.saved ? "Saved." : ""}</span>
        ${errorFor(state.errors, "edit-lead")}
        <p class="muted">Created ${when(lead.created_at)} · updated ${when(lead.updated_at)}</p>
      </form>
      <dialog id="confirm-delete" aria-labelledby="confirm-delete-title">
        <header><strong id="confirm-delete-title">Delete this lead?</strong></header>
        <div class="dialog-body"><p>${lead.name || lead.phone || lead.email} and its notes are deleted for good.
          Its WhatsApp messages and calls stay on record.</p>${errorFor(state.errors, "delete-lead")}</div>
        <footer><button type="button" @click=${() => root.querySelector("#confirm-delete").close()}>Cancel</button>
          <button type="button" class="danger" id="confirm-delete-yes" @click=${remove}>Delete</button></footer>
      </dialog>
      <h2>WhatsApp</h2>
      ${lead.phone ? threadView(state, state.messages, sendMessage) : html`<p class="empty">This lead has no phone number.</p>`}
      <h2>Calls</h2>
      <div class="table-wrap"><table><thead>${CALL_HEADER}</thead>
        <tbody id="lead-calls">${callRows(state.calls, "No calls with this lead.")}</tbody></table></div>`;
  };

  draw();
  load();
}
