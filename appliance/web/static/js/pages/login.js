import { api } from "../api.js";
import { act, errorFor, field, formValues, html, render } from "../ui.js";

export const title = "Log in";

export function mount(root, ctx) {
  const state = { errors: {}, busy: null };
  const draw = () => render(html`
    <h1>Log in</h1>
    <form class="card" id="login-form" @submit=${submit} novalidate>
      <div class="grid-form">
        ${field(state, "login", "email", "Email", { type: "email", required: true, autocomplete: "username" })}
        ${field(state, "login", "password", "Password", { type: "password", required: true, autocomplete: "current-password" })}
      </div>
      <button class="primary" ?disabled=${state.busy === "login"}>Log in</button>
      ${errorFor(state.errors, "login")}
    </form>`, root);

  async function submit(event) {
    event.preventDefault();
    const values = formValues(event.target);
    const ok = await act(state, "login", draw, () => api("/api/auth/login", { method: "POST", body: values }));
    if (!ok) return;
    await ctx.loggedIn();
    const next = ctx.query.get("next");
    ctx.go(next && next.startsWith("/") && !next.startsWith("//") && next !== "/login" ? next : "/leads");
  }

  draw();
  root.querySelector("#login-email").focus();
}
