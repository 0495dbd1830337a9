// One WhatsApp conversation: its messages, oldest first, and a send box. Used by the inbox and the lead page.
import { api, ApiError } from "./api.js";
import { act, errorFor, html, nothing, when } from "./ui.js";

// A photo is shown; other media (voice notes, documents, video) are links, all through signed URLs.
function media(m) {
  const file = m.media;
  if (!file || !file.url) return nothing;
  if ((file.mimetype || "").startsWith("image/")) return html`<a href=${file.url} target="_blank" rel="noopener"><img class="wa-media" src=${file.url} alt=${m.body || "photo"}></a>`;
  return html`<div><a href=${file.url} target="_blank" rel="noopener">Open ${m.kind || "file"} (${file.mimetype || "file"})</a></div>`;
}

// The conversation's messages, oldest first; none yet (the API's 404) is an empty thread.
export async function loadThread(jid) {
  try {
    const body = await api(`/api/whatsapp/conversations/${encodeURIComponent(jid)}/messages`, { query: { limit: 100 } });
    return body.messages.slice().reverse();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}

export function threadView(state, messages, onSend) {
  return html`
    <div class="thread" id="thread" aria-live="polite">${messages === null ? html`<p class="muted">Loading…</p>`
      : messages.length === 0 ? html`<p class="empty">No WhatsApp messages with this contact yet.</p>`
      : messages.map((m) => html`<div class=${`msg ${m.direction}`} dir="auto">${media(m)}${m.body}
          <div class="meta">${when(m.created_at)} · ${m.status}${m.edited ? " · edited" : ""}</div></div>`)}</div>
    <form class="bar" id="send-form" @submit=${onSend}>
      <label class="field" for="send-text"><span>Message</span>
        <input id="send-text" name="text" required autocomplete="off" aria-describedby="send-error"></label>
      <button class="primary" ?disabled=${state.busy === "send"}>Send</button>
    </form>
    ${errorFor(state.errors, "send")}`;
}

export async function send(state, draw, event, jid) {
  event.preventDefault();
  const input = event.target.elements.text;
  const sent = await act(state, "send", draw, () => api("/api/whatsapp/send", { method: "POST", body: { jid, text: input.value } }));
  if (sent) input.value = "";
  return sent;
}

export const jidOf = (phone) => (phone ? `${phone.replace(/^\+/, "")}@s.whatsapp.net` : null);
