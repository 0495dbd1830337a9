// The JSON API, with the session cookie. Every error becomes an ApiError carrying the API's message,
// its HTTP status, the per-field messages of a 422 and the rest of the body (a 409's run_id, ...).

export class ApiError extends Error {
  constructor(status, message, body = {}) {
    super(message);
    this.status = status;
    this.fields = body.fields || {};
    this.body = body;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

export function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function api(path, { method = "GET", body, query } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), init);
  } catch {
    throw new ApiError(0, "the appliance did not answer; check the connection and try again");
  }
  let payload = {};
  try { payload = await response.json(); } catch { payload = {}; }
  if (response.status === 401 && path !== "/api/auth/login") onUnauthorized();
  if (!response.ok || payload.success === false) {
    throw new ApiError(response.status, payload.error || `${response.status} ${response.statusText}`, payload);
  }
  return payload;
}
