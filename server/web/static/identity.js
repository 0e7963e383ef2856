/**
 * Who the page is. On an open server (no TIDINGS_SECRET) that is a stable random user id kept in
 * localStorage, so a reload (or a second tab) follows the same jobs. With a secret, the page is
 * opened as `/#token=<user token>`: the token is kept for this tab in sessionStorage and taken
 * out of the address bar, so it is not bookmarked, shared or screenshotted.
 */

const USER_KEY = "tidings.userId";
const TOKEN_KEY = "tidings.token";

function stored(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null; // storage refused (a privacy mode): the id lasts as long as the page
  }
}

function store(storage, key, value) {
  try {
    storage.setItem(key, value);
  } catch {
    // as above
  }
}

/** A fresh user id; getRandomValues, unlike randomUUID, also works on plain http. */
function newUserId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `web-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

function tokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (!token) return null;
  fragment.delete("token");
  const rest = fragment.toString();
  history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  return token;
}

let cached = null;

/** `{ userId, token }`: token is null on an open server. */
export function identity() {
  if (cached !== null) return cached;
  const token = tokenFromFragment();
  if (token !== null) store(sessionStorage, TOKEN_KEY, token);
  let userId = stored(localStorage, USER_KEY);
  if (!userId) {
    userId = newUserId();
    store(localStorage, USER_KEY, userId);
  }
  cached = { userId, token: token ?? stored(sessionStorage, TOKEN_KEY) };
  return cached;
}
