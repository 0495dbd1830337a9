// Call rows, shared by the calls page and the lead page.
import { emptyRow, html, loadingRow, seconds, when } from "./ui.js";

export const CALL_HEADER = html`<tr><th>From</th><th class="hide-phone">To</th><th>Status</th><th class="hide-phone">Started</th>
  <th class="num">Duration</th><th class="num">Frames in / out</th><th class="num">Dropped</th><th>End reason</th></tr>`;

export function callRows(calls, emptyText, onOpen) {
  if (calls === null) return loadingRow(8);
  if (calls.length === 0) return emptyRow(8, emptyText);
  return calls.map((c) => html`<tr data-call=${c.id}>
    <td>${onOpen ? html`<button type="button" class="link" @click=${() => onOpen(c)}>${c.from || "unknown"}</button>` : c.from}</td>
    <td class="hide-phone">${c.to}</td><td>${c.status}</td>
    <td class="hide-phone">${when(c.started_at || c.created_at)}</td><td class="num">${seconds(c.duration_seconds)}</td>
    <td class="num">${c.frames_in} / ${c.frames_out}</td><td class="num">${c.frames_dropped}</td><td>${c.end_reason || ""}</td></tr>`);
}
