import { api } from "../api.js";
import { callRows, CALL_HEADER } from "../calls.js";
import { act, errorFor, html, nothing, openDialog, pager, render, seconds, when } from "../ui.js";

export const title = "Calls";
const PER_PAGE = 50;

// A transcript is a list of turns ({role: "caller"|"agent", text, at: seconds into the call}); tool calls are
// {name, arguments, output}; usage is token counts.
function transcriptView(transcript) {
  if (!transcript || transcript.length === 0) return html`<p class="empty">No transcript for this call.</p>`;
  if (typeof transcript === "string") return html`<pre class="transcript">${transcript}</pre>`;
  return html`<div class="thread" id="transcript">${transcript.map((turn) => html`<div class=${`msg ${turn.role === "assistant" || turn.role === "agent" ? "out" : ""}`}>
    ${turn.text ?? turn.content ?? ""}<div class="meta">${turn.role}${typeof turn.at === "number" ? ` · ${seconds(turn.at)}` : ""}</div></div>`)}</div>`;
}

const json = (value) => (typeof value === "string" ? value : JSON.stringify(value));

export function mount(root) {
  const state = { errors: {}, busy: null, calls: null, total: 0, page: 1, open: null };
  const draw = () => render(view(), root);

  async function load() {
    const body = await act(state, "calls", draw, () => api("/api/calls", { query: { page: state.page, per_page: PER_PAGE } }));
    if (body) { state.calls = body.calls; state.total = body.total; draw(); }
  }

  async function open(call) {
    state.open = { ...call, loading: true };
    draw();
    openDialog(root.querySelector("#call-dialog"));
    const found = await act(state, "call", draw, () => api(`/api/calls/${call.id}`));
    state.open = found ? found.call : { ...call, loading: false };
    draw();
  }

  const dialog = () => {
    const c = state.open;
    if (!c) return nothing;
    return html`<header><strong id="call-title">Call from ${c.from || "unknown"}</strong>
        <button type="button" aria-label="Close" @click=${() => root.querySelector("#call-dialog").close()}>✕</button></header>
      <div class="dialog-body">
        ${errorFor(state.errors, "call")}
        <p>${c.status} · ${when(c.started_at || c.created_at)} · ${seconds(c.duration_seconds)} ·
          frames ${c.frames_in} in / ${c.frames_out} out / ${c.frames_dropped} dropped · ${c.end_reason || ""}</p>
        ${c.loading ? html`<p class="muted">Loading…</p>` : html`
          <h2>Transcript</h2>${transcriptView(c.transcript)}
          <h2>Tools used</h2>${!c.tool_calls || c.tool_calls.length === 0 ? html`<p class="empty">The agent used no tools.</p>`
            : html`<ul class="list-plain" id="tool-calls">${c.tool_calls.map((t) => html`<li><strong>${t.name}</strong>
                <code>${json(t.arguments)}</code>${t.output !== undefined ? html` → <code>${json(t.output)}</code>` : nothing}</li>`)}</ul>`}
          ${c.usage ? html`<h2>Usage</h2><p class="muted" id="call-usage">${Object.entries(c.usage).map(([k, v]) => `${k} ${json(v)}`).join(" · ")}</p>` : nothing}`}
      </div>`;
  };

  const view = () => html`
    <h1>Calls</h1>
    ${errorFor(state.errors, "calls")}
    <div class="table-wrap"><table><thead>${CALL_HEADER}</thead>
      <tbody id="calls-rows">${callRows(state.calls, "No calls yet. Calls to the business's Twilio number appear here.", open)}</tbody></table></div>
    ${pager(state.page, PER_PAGE, state.total, (p) => { state.page = p; load(); })}
    <dialog id="call-dialog" aria-labelledby="call-title">${dialog()}</dialog>`;

  draw();
  load();
  return () => { const d = root.querySelector("#call-dialog"); if (d && d.open) d.close(); };
}
