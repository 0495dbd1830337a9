"use strict";
const PAGES = {leads: "Leads", inbox: "WhatsApp", calls: "Calls", jobs: "Jobs"};
let me = null, refresh = null, openJid = null;
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = (iso) => iso ? new Date(iso).toLocaleString() : "";

async function api(path, options = {}) {
  const response = await fetch(path, {credentials: "same-origin", headers: {"Content-Type": "application/json"}, ...options});
  if (response.status === 401 && path !== "/api/auth/login") { me = null; show("login"); throw new Error("log in first"); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function show(page) {
  clearInterval(refresh);
  for (const s of document.querySelectorAll("section")) s.classList.toggle("on", s.id === page);
  $("nav").innerHTML = me ? Object.entries(PAGES).map(([id, label]) =>
    `<a href="#${id}" class="${id === page ? "on" : ""}">${label}</a>`).join(" ") : "";
  $("who").innerHTML = me ? `${esc(me.email)} · <a href="#" id="logout">log out</a>` : "";
  if (me) $("logout").onclick = async (e) => { e.preventDefault(); await api("/api/auth/logout", {method: "POST", body: "{}"}); me = null; show("login"); };
  const loaders = {leads: loadLeads, inbox: loadInbox, calls: loadCalls, jobs: loadJobs};
  if (me && loaders[page]) {
    loaders[page]().catch(() => {});
    if (page === "jobs" || page === "inbox") refresh = setInterval(() => loaders[page]().catch(() => {}), 2000);
  }
}

async function loadLeads(q = "") {
  const body = await api(`/api/leads?per_page=100&q=${encodeURIComponent(q)}`);
  $("leads-rows").innerHTML = body.leads.map((l) => `<tr><td>${esc(l.name)}</td><td>${esc(l.phone)}</td><td>${esc(l.email)}</td><td>${esc(l.source)}</td><td>${esc(l.status)}</td><td>${when(l.created_at)}</td></tr>`).join("");
  $("leads-total").textContent = `${body.total} leads`;
}

async function loadInbox() {
  const body = await api("/api/whatsapp/conversations?per_page=100");
  $("conversations").innerHTML = body.conversations.map((c) => `<tr data-jid="${esc(c.jid)}" style="cursor:pointer"><td><strong>${esc(c.lead_name || c.jid.split("@")[0])}</strong>${c.unread ? ` <span class="err">(${c.unread})</span>` : ""}<br><span class="muted">${esc(c.last_message.body)}</span></td></tr>`).join("");
  for (const row of $("conversations").querySelectorAll("tr")) row.onclick = () => openThread(row.dataset.jid);
  if (openJid) await loadThread();
}

async function openThread(jid) {
  openJid = jid;
  $("send-form").hidden = false;
  await api(`/api/whatsapp/conversations/${encodeURIComponent(jid)}/read`, {method: "POST", body: "{}"});
  await loadThread();
}

async function loadThread() {
  const body = await api(`/api/whatsapp/conversations/${encodeURIComponent(openJid)}/messages?limit=100`);
  $("thread").innerHTML = body.messages.slice().reverse().map((m) => `<div class="msg ${m.direction}">${esc(m.body)}<br><span class="muted">${when(m.created_at)} · ${esc(m.status)}</span></div>`).join("");
}

async function loadCalls() {
  const body = await api("/api/calls?per_page=100");
  $("calls-rows").innerHTML = body.calls.map((c) => `<tr><td>${esc(c.call_sid)}</td><td>${esc(c.from)}</td><td>${esc(c.status)}</td><td>${when(c.started_at)}</td><td class="num">${c.duration_seconds ?? ""}</td><td class="num">${c.frames_in}/${c.frames_out}</td><td class="num">${c.frames_dropped}</td><td>${esc(c.end_reason)}</td></tr>`).join("");
}

async function loadJobs() {
  const body = await api("/api/jobs/stats");
  const deepest = Math.max(1, ...Object.values(body.queues).map((q) => q.queued));
  const order = ["high", "default", "low"].filter((n) => n in body.queues);
  $("queues").innerHTML = order.map((name) => [name, body.queues[name]]).map(([name, q]) => `<tr><td>${esc(name)}</td><td class="num">${q.queued}</td><td class="num">${q.running}</td><td class="num">${q.scheduled}</td><td class="num">${q.oldest_waiting_seconds}</td><td><div class="bar"><div style="width:${100 * q.queued / deepest}%"></div></div></td></tr>`).join("");
  $("totals").textContent = Object.entries(body.totals).map(([k, v]) => `${k} ${v}`).join(" · ");
  $("workers").innerHTML = body.workers.map((w) => `<tr><td>${esc(w.id)}</td><td class="num">${esc(w.running)}</td><td class="num">${esc(w.processed)}</td></tr>`).join("");
  $("jobs-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

$("login-form").onsubmit = async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  try {
    await api("/api/auth/login", {method: "POST", body: JSON.stringify({email: form.get("email"), password: form.get("password")})});
    me = await api("/api/auth/me");
    location.hash = "#leads"; show("leads");
  } catch (err) { $("login-error").textContent = err.message; }
};
$("lead-search").onsubmit = (e) => { e.preventDefault(); loadLeads(new FormData(e.target).get("q")).catch(() => {}); };
$("send-form").onsubmit = async (e) => {
  e.preventDefault();
  const input = e.target.elements.text;
  try {
    await api("/api/whatsapp/send", {method: "POST", body: JSON.stringify({jid: openJid, text: input.value})});
    input.value = ""; $("send-error").textContent = ""; await loadThread();
  } catch (err) { $("send-error").textContent = err.message; }
};
window.onhashchange = () => show(location.hash.slice(1) || "leads");
api("/api/auth/me").then((who) => { me = who; show(location.hash.slice(1) || "leads"); }).catch(() => show("login"));
