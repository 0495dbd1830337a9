import { api } from "../api.js";
import { queueChart } from "../chart.js";
import { act, emptyRow, epoch, errorFor, every, html, loadingRow, render } from "../ui.js";

export const title = "Jobs";
const QUEUES = ["high", "default", "low"];

export function mount(root) {
  const state = { errors: {}, busy: null, stats: null, dead: null, failed: null, series: null, retried: {}, updated: null };
  const draw = () => { render(view(), root); chart.update(state.series); };
  let chart = { update() {}, destroy() {} };

  async function load() {
    await act(state, "jobs", draw, async () => {
      const [stats, dead, failed, series] = await Promise.all([
        api("/api/jobs/stats"), api("/api/jobs", { query: { status: "dead", limit: 50 } }),
        api("/api/jobs", { query: { status: "failed", limit: 50 } }), api("/api/jobs/series"),
      ]);
      Object.assign(state, { stats, dead: dead.jobs, failed: failed.jobs, series, updated: new Date() });
    });
  }

  async function retry(job) {
    const done = await act(state, `retry-${job.id}`, draw, () => api(`/api/jobs/${job.id}/retry`, { method: "POST", body: {} }));
    if (done) { state.retried[job.id] = true; await load(); }
  }

  const jobRows = (jobs, emptyText) => jobs === null ? loadingRow(6) : jobs.length === 0 ? emptyRow(6, emptyText)
    : jobs.map((job) => html`<tr data-job=${job.id}>
        <td><strong>${job.name}</strong><br><span class="muted">${job.id}</span></td><td class="hide-phone">${job.queue}</td>
        <td class="num"><span class="muted phone-only">attempts</span> ${job.attempts}</td><td class="hide-phone">${epoch(job.failed_at)}</td>
        <td><span class="error">${job.error}</span>${job.traceback ? html`<details><summary>Traceback</summary>
          <pre class="trace">${job.traceback}</pre></details>` : ""}</td>
        <td><button type="button" id=${`retry-${job.id}`} ?disabled=${state.busy === `retry-${job.id}`} @click=${() => retry(job)}>Retry</button>
          ${errorFor(state.errors, `retry-${job.id}`)}</td></tr>`);

  const view = () => {
    const s = state.stats;
    return html`
      <h1>Jobs <span class="muted">${state.updated ? `updated ${state.updated.toLocaleTimeString()}` : ""}</span></h1>
      ${errorFor(state.errors, "jobs")}
      <h2>Last hour</h2>
      <div class="chart" id="jobs-chart" role="img" aria-label="Queue depths and jobs per second over the last hour"></div>
      <p class="muted" id="chart-empty">${state.series && state.series.points.length < 2 ? "The scheduler samples the queues every few seconds; the chart fills as it does." : ""}</p>
      <h2>Queues</h2>
      <div class="table-wrap"><table><thead><tr><th>Queue</th><th class="num">Queued</th><th class="num">Running</th>
        <th class="num">Scheduled</th><th class="num">Retrying</th><th class="num">Dead</th><th class="num hide-phone">Oldest waiting</th></tr></thead>
        <tbody id="queues">${s === null ? loadingRow(7) : QUEUES.filter((q) => q in s.queues).map((name) => {
          const q = s.queues[name];
          return html`<tr><td>${name}</td><td class="num">${q.queued}</td><td class="num">${q.running}</td><td class="num">${q.scheduled}</td>
            <td class="num">${q.failed}</td><td class="num">${q.dead}</td><td class="num hide-phone">${q.oldest_waiting_seconds}s</td></tr>`;
        })}</tbody></table></div>
      <p class="muted" id="totals">${s ? Object.entries(s.totals).map(([k, v]) => `${k} ${v}`).join(" · ") : ""}</p>
      <h2>Dead jobs</h2>
      <div class="table-wrap"><table class="stack"><thead><tr><th>Job</th><th class="hide-phone">Queue</th><th class="num">Attempts</th>
        <th class="hide-phone">Failed at</th><th>Error</th><th></th></tr></thead>
        <tbody id="dead-jobs">${jobRows(state.dead, "No dead jobs: every job finished or is still being retried.")}</tbody></table></div>
      <h2>Failed, waiting to retry</h2>
      <div class="table-wrap"><table class="stack"><thead><tr><th>Job</th><th class="hide-phone">Queue</th><th class="num">Attempts</th>
        <th class="hide-phone">Failed at</th><th>Error</th><th></th></tr></thead>
        <tbody id="failed-jobs">${jobRows(state.failed, "No job is waiting to retry.")}</tbody></table></div>
      <h2>Workers</h2>
      <div class="table-wrap"><table><thead><tr><th>Worker</th><th class="num">Running</th><th class="num">Processed</th><th class="num">Last beat</th></tr></thead>
        <tbody id="workers">${s === null ? loadingRow(4) : s.workers.length === 0 ? emptyRow(4, "No worker is running: start one with `appliance worker`.")
          : s.workers.map((w) => html`<tr><td>${w.id}</td><td class="num">${w.running}</td><td class="num">${w.processed}</td>
            <td class="num">${w.last_heartbeat_seconds_ago}s ago</td></tr>`)}</tbody></table></div>`;
  };

  render(view(), root);
  chart = queueChart(root.querySelector("#jobs-chart"));
  load();
  const stop = every(2000, load);
  return () => { stop(); chart.destroy(); };
}
