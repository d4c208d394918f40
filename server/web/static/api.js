// REST client of the web UI: same-origin fetch (the server's HttpOnly session cookie authenticates),
// JSON in and out, and one error type carrying the API's ErrorBody code and sentence.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called on a 401 outside the login request, so an expired session returns to the login view.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

// Which sign-in a request was sent under. A request still in flight at logout comes back 401
// after it; that answer belongs to the old session and must not throw the next user (or the
// one typing a password on the login view) back to a "session ended" login.
let sessionGeneration = 0;
export function newSession() {
  sessionGeneration += 1;
}

export async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const sentIn = sessionGeneration;
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // error pages from a proxy are not JSON; fall back to the status text below
  }
  if (!response.ok) {
    const code = (data && data.error) || `http_${response.status}`;
    const message = (data && data.message) || response.statusText || `Request failed (${response.status})`;
    const error = new ApiError(response.status, code, message);
    if (response.status === 401 && path !== "/api/auth/login" && sentIn === sessionGeneration) {
      onUnauthorized(error);
    }
    throw error;
  }
  return data;
}

// Status of a media URL without downloading it: used only after a <video>/<audio> element failed,
// because media elements do not expose the HTTP status.
export async function mediaStatus(url) {
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Range: "bytes=0-0" } });
    if (response.body) await response.body.cancel();
    return response.status;
  } catch {
    return 0;
  }
}
