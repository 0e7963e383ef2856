/**
 * Development hot reload, loaded only under `tidings serve --reload`. The server broadcasts
 * `reload-css` (swap that stylesheet in place: the page keeps its state, scroll and socket) and
 * `reload-js` / `reload-html` (reload the page) to every Socket.IO socket.
 *
 * The job client keeps its socket to itself, so this opens a second one, speaking the few frames
 * of Engine.IO 4 / Socket.IO 5 it needs over a plain WebSocket: open (0), connect to the
 * namespace (40), ping (2) / pong (3), events (42). Development only: it never runs in production.
 */
import { identity } from "./identity.js";

const RETRY_MS = 1_000;

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

function onEvent(name, data) {
  if (name === "reload-css" && typeof data?.path === "string") {
    swapStylesheet(data.path);
  } else if (name === "reload-js" || name === "reload-html") {
    location.reload();
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/socket.io/?EIO=4&transport=websocket`);
  socket.addEventListener("message", ({ data }) => {
    if (typeof data !== "string") return;
    if (data.startsWith("0")) {
      const { token } = identity();
      socket.send(`40${JSON.stringify(token ? { token } : {})}`);
    } else if (data === "2") {
      socket.send("3");
    } else if (data.startsWith("42")) {
      try {
        const [name, payload] = JSON.parse(data.slice(2));
        onEvent(name, payload);
      } catch {
        // not an event this script knows
      }
    }
  });
  socket.addEventListener("close", () => setTimeout(connect, RETRY_MS));
}

connect();
