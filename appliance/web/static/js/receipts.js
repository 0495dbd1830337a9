// Receipt rows and the filter query, shared by the receipts page and the sync page.
import { day, emptyRow, html, loadingRow, money } from "./ui.js";

export const STATUSES = ["new", "approved", "rejected"];
const BADGE = { approved: "ok", rejected: "bad", new: "warn" };

export const statusBadge = (status) => html`<span class=${`badge ${BADGE[status] || ""}`}>${status}</span>`;

// Days are shown in the business's zone (`timeZone`), the zone the date filter reads them in.
export function receiptRows(receipts, emptyText, onOpen, timeZone) {
  if (receipts === null) return loadingRow(5);
  if (receipts.length === 0) return emptyRow(5, emptyText);
  return receipts.map((r) => html`<tr data-receipt=${r.id}>
    <td>${day(r.received_at, timeZone)}</td>
    <td dir="auto">${onOpen ? html`<button type="button" class="link" dir="auto" @click=${() => onOpen(r)}>${r.vendor || "(unknown vendor)"}</button>` : r.vendor}</td>
    <td class="hide-phone" dir="auto">${r.subject}</td><td class="num">${money(r.amount, r.currency)}</td><td>${statusBadge(r.status)}</td></tr>`);
}

export const RECEIPT_HEADER = html`<tr><th>Date</th><th>Vendor</th><th class="hide-phone">Subject</th><th class="num">Amount</th><th>Status</th></tr>`;
