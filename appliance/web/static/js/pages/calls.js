import { api } from "../api.js";
import { callRows, CALL_HEADER } from "../calls.js";
import { act, errorFor, html, pager, render } from "../ui.js";

export const title = "Calls";
const PER_PAGE = 50;

export function mount(root) {
  const state = { errors: {}, busy: null, calls: null, total: 0, page: 1 };
  const draw = () => render(view(), root);

  async function load() {
    const body = await act(state, "calls", draw, () => api("/api/calls", { query: { page: state.page, per_page: PER_PAGE } }));
    if (body) { state.calls = body.calls; state.total = body.total; draw(); }
  }

  const view = () => html`
    <h1>Calls</h1>
    ${errorFor(state.errors, "calls")}
    <div class="table-wrap"><table><thead>${CALL_HEADER}</thead>
      <tbody id="calls-rows">${callRows(state.calls, "No calls yet. Calls to the business's Twilio number appear here.")}</tbody></table></div>
    ${pager(state.page, PER_PAGE, state.total, (p) => { state.page = p; load(); })}`;

  draw();
  load();
}
