import { api } from "../api.js";
import { act, emptyRow, errorFor, field, formValues, html, loadingRow, nothing, render, select, when } from "../ui.js";

export const title = "Settings";
const MODES = [["off", "Off"], ["fixed", "Fixed text"], ["ai", "AI reply"]];
const AGENTS = [["", "Appliance default"], ["echo", "Echo (test line)"], ["realtime", "AI agent (Realtime)"]];
// The voice agent's tools (appliance/agent/config.py TOOL_NAMES); none ticked means the agent only talks.
const TOOLS = [["lookup_caller", "Look up the caller"], ["save_lead", "Save a lead"], ["take_message", "Take a message"],
  ["end_call", "End the call"], ["transfer_call", "Transfer to a person"]];
const BUSINESS_FIELDS = ["timezone", "auto_reply_mode", "auto_reply_text", "voice_agent", "agent_instructions",
  "agent_greeting", "agent_voice", "transfer_number"];

function timezones(current) {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const all = new Set(["UTC", ...zones, ...(current ? [current] : [])]);
  return [...all].map((z) => [z, z]);
}

export function mount(root, ctx) {
  const state = { errors: {}, busy: null, gmail: null, business: null, users: null, tokens: null, newToken: null, notice: {} };
  const draw = () => render(view(), root);
  const notice = (key, text) => { state.notice[key] = text; draw(); };

  async function loadGmail() {
    const c = await act(state, "gmail", draw, () => api("/api/gmail/connection"));
    if (c) { state.gmail = c; draw(); }
  }
  async function loadBusiness() {
    const body = await act(state, "business", draw, () => api("/api/settings"));
    if (body) { state.business = body.settings || body; draw(); }
  }
  async function loadUsers() {
    const body = await act(state, "users", draw, () => api("/api/users"));
    if (body) { state.users = body.users; draw(); }
  }
  async function loadTokens() {
    const body = await act(state, "tokens", draw, () => api("/api/tokens"));
    if (body) { state.tokens = body.tokens; draw(); }
  }

  // Connecting leaves the CRM for Google's consent screen; first make sure the appliance can send us there
  // (a missing GOOGLE_CLIENT_ID is an error shown here, not a JSON page).
  async function connect(event) {
    event.preventDefault();
    delete state.errors["gmail-connect"];
    const target = event.currentTarget.href;
    const probe = await fetch(target, { redirect: "manual", credentials: "same-origin" });
    if (probe.type === "opaqueredirect") { location.assign(target); return; }
    const body = await probe.json().catch(() => ({}));
    state.errors["gmail-connect"] = body.error || `${probe.status} ${probe.statusText}`;
    draw();
  }

  async function disconnect() {
    if (await act(state, "gmail-disconnect", draw, () => api("/api/gmail/connection", { method: "DELETE" }))) { notice("gmail", "Disconnected."); loadGmail(); }
  }

  async function saveBusiness(event) {
    event.preventDefault();
    state.notice.business = "";
    const values = formValues(event.target);
    const body = {};
    for (const name of BUSINESS_FIELDS) if (name in values) body[name] = values[name] === "" ? null : values[name];
    body.agent_tools = new FormData(event.target).getAll("agent_tools");
    if (body.timezone === null) body.timezone = "UTC";
    if (body.auto_reply_mode === null) body.auto_reply_mode = "off";
    const saved = await act(state, "business", draw, () => api("/api/settings", { method: "PATCH", body }));
    if (saved) { state.business = saved.settings || saved; notice("business", "Saved."); }
  }

  async function addUser(event) {
    event.preventDefault();
    const form = event.target;
    if (await act(state, "add-user", draw, () => api("/api/users", { method: "POST", body: formValues(form) }))) {
      form.reset(); notice("add-user", "User added."); loadUsers();
    }
  }

  async function changePassword(event) {
    event.preventDefault();
    const form = event.target;
    const values = formValues(form);
    if (values.new_password !== values.repeat_password) { state.errors["password.repeat_password"] = "the two new passwords differ"; draw(); return; }
    delete values.repeat_password;
    if (await act(state, "password", draw, () => api("/api/auth/password", { method: "POST", body: values }))) {
      form.reset(); notice("password", "Password changed; your other sessions were logged out.");
    }
  }

  async function createToken(event) {
    event.preventDefault();
    const form = event.target;
    const made = await act(state, "new-token", draw, () => api("/api/tokens", { method: "POST", body: {} }));
    if (made) { form.reset(); state.newToken = typeof made.token === "string" ? made.token : made.token.token; loadTokens(); }
  }

  async function revoke(token) {
    if (await act(state, `revoke-${token.id}`, draw, () => api(`/api/tokens/${token.id}`, { method: "DELETE" }))) loadTokens();
  }

  const gmail = () => {
    const c = state.gmail;
    if (!c) return errorFor(state.errors, "gmail");
    return html`${errorFor(state.errors, "gmail")}
      ${ctx.query.get("gmail") === "connected" ? html`<p class="ok" role="status">Gmail connected.</p>` : nothing}
      ${c.connected ? html`<p id="gmail-state">Connected as <strong>${c.email}</strong>
          ${c.status === "needs_reconnect" ? html`<span class="badge bad">needs reconnect</span>` : html`<span class="badge ok">ok</span>`}</p>
          ${c.status === "needs_reconnect" ? html`<p class="error">Google no longer accepts this connection; syncs fail until you reconnect.</p>` : nothing}
          <div class="toolbar"><a class="button" href="/api/gmail/oauth/start" @click=${connect}>Reconnect</a>
          <button type="button" class="danger" id="gmail-disconnect" @click=${disconnect}>Disconnect</button>
          <span class="ok" role="status">${state.notice.gmail || ""}</span></div>`
        : html`<p id="gmail-state">No mailbox connected.</p><a class="button" id="gmail-connect" href="/api/gmail/oauth/start" @click=${connect}>Connect Gmail</a>
          <span class="ok" role="status">${state.notice.gmail || ""}</span>`}
      ${errorFor(state.errors, "gmail-connect")}${errorFor(state.errors, "gmail-disconnect")}`;
  };

  const business = () => {
    const b = state.business;
    if (!b) return html`${errorFor(state.errors, "business")}<p class="muted">Loading…</p>`;
    return html`<form id="business" @submit=${saveBusiness}>
      <div class="grid-form">
        ${select(state, "business", "timezone", "Time zone", timezones(b.timezone), b.timezone || "UTC")}
        ${select(state, "business", "auto_reply_mode", "WhatsApp auto-reply", MODES, b.auto_reply_mode || "off")}
        ${field(state, "business", "auto_reply_text", "Auto-reply text", { type: "textarea", value: b.auto_reply_text, wide: true })}
        ${select(state, "business", "voice_agent", "Voice agent", AGENTS, b.voice_agent || "")}
        ${field(state, "business", "transfer_number", "Transfer calls to", { type: "tel", value: b.transfer_number, placeholder: "+972501234567" })}
        ${field(state, "business", "agent_greeting", "Agent greeting", { value: b.agent_greeting, wide: true })}
        ${field(state, "business", "agent_voice", "Agent voice", { value: b.agent_voice, placeholder: "alloy" })}
        <fieldset class="wide" aria-describedby="business.agent_tools-error"><legend>What the agent may do</legend>
          ${TOOLS.map(([name, label]) => html`<label class="check"><input type="checkbox" name="agent_tools" value=${name}
            .checked=${b.agent_tools == null || b.agent_tools.includes(name)}> ${label}</label>`)}
          ${errorFor(state.errors, "business.agent_tools")}</fieldset>
        ${field(state, "business", "agent_instructions", "Agent instructions", { type: "textarea", value: b.agent_instructions, wide: true })}
      </div>
      <button class="primary" ?disabled=${state.busy === "business"}>Save settings</button>
      <span class="ok" role="status">${state.notice.business || ""}</span>
      ${errorFor(state.errors, "business")}
    </form>`;
  };

  const view = () => html`
    <h1>Settings</h1>
    <section class="card" aria-labelledby="gmail-h"><h2 id="gmail-h">Gmail</h2>${gmail()}</section>
    <section class="card" aria-labelledby="business-h"><h2 id="business-h">Business</h2>${business()}</section>
    <section class="card" aria-labelledby="users-h"><h2 id="users-h">Users</h2>
      ${errorFor(state.errors, "users")}
      <div class="table-wrap"><table><thead><tr><th>Email</th><th class="hide-phone">Added</th></tr></thead>
        <tbody id="users-rows">${state.users === null ? loadingRow(2) : state.users.length === 0 ? emptyRow(2, "No users.")
          : state.users.map((u) => html`<tr><td>${u.email}${u.email === ctx.me?.email ? html` <span class="badge">you</span>` : nothing}</td>
              <td class="hide-phone">${when(u.created_at)}</td></tr>`)}</tbody></table></div>
      <form class="bar" id="add-user" @submit=${addUser} novalidate>
        ${field(state, "add-user", "email", "New user's email", { type: "email", required: true })}
        ${field(state, "add-user", "password", "Their password", { type: "password", autocomplete: "new-password", required: true })}
        <button>Add user</button><span class="ok" role="status">${state.notice["add-user"] || ""}</span>
      </form>${errorFor(state.errors, "add-user")}
    </section>
    <section class="card" aria-labelledby="password-h"><h2 id="password-h">Your password</h2>
      <form class="bar" id="password" @submit=${changePassword} novalidate>
        ${field(state, "password", "current_password", "Current password", { type: "password", autocomplete: "current-password", required: true })}
        ${field(state, "password", "new_password", "New password", { type: "password", autocomplete: "new-password", required: true })}
        ${field(state, "password", "repeat_password", "New password again", { type: "password", autocomplete: "new-password", required: true })}
        <button>Change password</button><span class="ok" role="status">${state.notice.password || ""}</span>
      </form>${errorFor(state.errors, "password")}
    </section>
    <section class="card" aria-labelledby="tokens-h"><h2 id="tokens-h">API tokens</h2>
      <p class="muted">For scripts: send <code>Authorization: Bearer &lt;token&gt;</code>.</p>
      ${state.newToken ? html`<p>Copy this token now; it is not shown again:</p><p class="token-once" id="new-token-value">${state.newToken}</p>` : nothing}
      ${errorFor(state.errors, "tokens")}
      <div class="table-wrap"><table><thead><tr><th>Token</th><th class="hide-phone">Created</th><th class="hide-phone">Last used</th><th></th></tr></thead>
        <tbody id="tokens-rows">${state.tokens === null ? loadingRow(4) : state.tokens.length === 0 ? emptyRow(4, "No API tokens.")
          : state.tokens.map((t) => html`<tr data-token=${t.id}><td>${t.name || `token ${t.id}`}</td><td class="hide-phone">${when(t.created_at)}</td>
              <td class="hide-phone">${when(t.last_used_at) || "never"}</td>
              <td><button type="button" class="danger" @click=${() => revoke(t)} aria-label=${`Revoke ${t.name || `token ${t.id}`}`}>Revoke</button>
                ${errorFor(state.errors, `revoke-${t.id}`)}</td></tr>`)}</tbody></table></div>
      <form class="bar" id="new-token" @submit=${createToken}>
        <button>Create token</button>
      </form>${errorFor(state.errors, "new-token")}
    </section>`;

  draw();
  loadGmail(); loadBusiness(); loadUsers(); loadTokens();
}
