/**
 * Development hot reload, loaded only under `tidings serve --reload`. The server sends
 * `reload-css` (swap that stylesheet in place: the page keeps its state, scroll and socket),
 * `reload-js` / `reload-html` / `reload-page` (reload the page) on the `GET /api/live` stream,
 * which opens with `connected`. Each message is `{event, file, path, timestamp}`.
 *
 * A small badge says whether the page is hearing the server ("Hot reload on") or waiting for it
 * (EventSource reconnects by itself). Development only: it never runs in production.
 */

const badge = document.createElement("p");
badge.id = "hot-reload";
badge.setAttribute("role", "status");
Object.assign(badge.style, {
  position: "fixed",
  right: "0.75rem",
  bottom: "0.75rem",
  margin: "0",
  padding: "0.25rem 0.6rem",
  borderRadius: "999px",
  font: "12px/1.4 system-ui, sans-serif",
  background: "#1f2937",
  color: "#f9fafb",
  zIndex: "1000",
});

function show(text, live) {
  badge.textContent = text;
  badge.dataset.state = live ? "on" : "waiting";
  badge.style.background = live ? "#166534" : "#92400e";
  if (!badge.isConnected) document.body.append(badge);
}

function swapStylesheet(path) {
  for (const link of document.querySelectorAll('link[rel="stylesheet"]')) {
    const url = new URL(link.href);
    if (url.pathname !== path) continue;
    url.searchParams.set("reload", String(Date.now()));
    const fresh = link.cloneNode();
    fresh.href = `${url.pathname}${url.search}`;
    // The old sheet stays until the new one has loaded, so nothing flashes unstyled.
    fresh.addEventListener("load", () => link.remove(), { once: true });
    fresh.addEventListener("error", () => fresh.remove(), { once: true });
    link.after(fresh);
    console.info(`[tidings] hot reload: swapped ${path}`);
  }
}

const live = new EventSource("/api/live");
live.onmessage = ({ data }) => {
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return; // not a message this script knows
  }
  if (message.event === "connected") {
    show("Hot reload on", true);
  } else if (message.event === "reload-css" && typeof message.path === "string") {
    swapStylesheet(message.path);
  } else if (["reload-js", "reload-html", "reload-page"].includes(message.event)) {
    location.reload();
  }
};
live.onerror = () => show("Hot reload: reconnecting…", false);
