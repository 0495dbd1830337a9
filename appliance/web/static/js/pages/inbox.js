import { api } from "../api.js";
import { loadThread, send, threadView } from "../thread.js";
import { act, errorFor, every, html, render, when } from "../ui.js";

export const title = "WhatsApp";

export function mount(root, ctx) {
  const state = { errors: {}, busy: null, conversations: null, jid: ctx.query.get("jid"), messages: null };
  const draw = () => render(view(), root);

  async function load() {
    const body = await act(state, "inbox", draw, () => api("/api/whatsapp/conversations", { query: { per_page: 100 } }));
    if (body) state.conversations = body.conversations;
    if (state.jid) state.messages = await loadThread(state.jid);
    draw();
  }

  async function open(jid) {
    state.jid = jid;
    state.messages = null;
    history.replaceState(null, "", `/inbox?jid=${encodeURIComponent(jid)}`);
    draw();
    await act(state, "inbox", draw, () => api(`/api/whatsapp/conversations/${encodeURIComponent(jid)}/read`, { method: "POST", body: {} }));
    await load();
  }

  async function sendMessage(event) {
    if (await send(state, draw, event, state.jid)) await load();
  }

  const name = (c) => c.lead_name || `+${c.jid.split("@")[0]}`;
  const view = () => html`
    <h1>WhatsApp</h1>
    ${errorFor(state.errors, "inbox")}
    <div class="split">
      <div id="conversations" role="list" aria-label="Conversations">${state.conversations === null ? html`<p class="muted">Loading…</p>`
        : state.conversations.length === 0 ? html`<p class="empty">No conversations yet. Messages to the business's WhatsApp number appear here.</p>`
        : state.conversations.map((c) => html`<button type="button" role="listitem" class="conv" data-jid=${c.jid}
            aria-current=${c.jid === state.jid ? "true" : "false"} @click=${() => open(c.jid)}>
            <strong>${name(c)}</strong> ${c.unread ? html`<span class="badge bad">${c.unread} unread</span>` : ""}<br>
            <span class="muted">${c.last_message.body}</span> <span class="muted">· ${when(c.last_message.created_at)}</span></button>`)}</div>
      <div>${state.jid ? threadView(state, state.messages, sendMessage) : html`<p class="empty">Choose a conversation.</p>`}</div>
    </div>`;

  draw();
  load();
  return every(3000, load);
}
