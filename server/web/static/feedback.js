/**
 * What the page shows beside the rows: notifications that come and go, the freshness colour of an
 * "updated N s ago", the pulse of a number that changed and the fade of a sentence that changed.
 * The motion is CSS, switched off under prefers-reduced-motion. Notifications are for the eye:
 * the page's polite live region already says the same to a screen reader, so the stack is not a
 * live region itself (it would be read twice).
 */
import { formatAgo } from "./tidings-client.js";

/** How long a notification stays, unless the pointer or the focus is on it (ms). */
const NOTE_LIFETIME = 8_000;
const NOTE_LIMIT = 4;

/** fresh under 5 s, recent under 30 s, stale after. */
export function freshness(then, now) {
  const seconds = (now - then) / 1000;
  return seconds < 5 ? "fresh" : seconds < 30 ? "recent" : "stale";
}

/** "updated N s ago" in `node`, coloured by freshness; `empty` when there is no time. */
export function paintAgo(node, then, now, empty = "") {
  const ago = formatAgo(then, now);
  const text = ago === null ? empty : `updated ${ago}`;
  if (node.textContent !== text) node.textContent = text;
  if (ago === null) delete node.dataset.freshness;
  else node.dataset.freshness = freshness(then, now);
}

/** Plays a CSS animation on `node` again (`pulse`, `fade`). */
export function replay(node, name) {
  node.classList.remove(name);
  void node.offsetWidth; // a reflow, so that adding the class back starts the animation over
  node.classList.add(name);
}

/**
 * A notification: `kind` is done, error or milestone. It goes by itself after a while, or with
 * its close button.
 */
export function notify(text, kind) {
  const stack = document.getElementById("notes");
  const note = document.createElement("li");
  note.className = "note";
  note.dataset.kind = kind;
  const body = document.createElement("span");
  body.className = "note-text";
  body.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "note-close";
  close.textContent = "\u00d7";
  close.setAttribute("aria-label", `Dismiss: ${text}`);
  note.append(body, close);

  let timer = 0;
  const remove = () => {
    clearTimeout(timer);
    if (note.contains(document.activeElement)) document.getElementById("files").focus();
    note.remove();
  };
  const wait = () => {
    clearTimeout(timer);
    timer = setTimeout(remove, NOTE_LIFETIME);
  };
  close.addEventListener("click", remove);
  note.addEventListener("pointerenter", () => clearTimeout(timer));
  note.addEventListener("pointerleave", wait);
  note.addEventListener("focusin", () => clearTimeout(timer));
  note.addEventListener("focusout", wait);
  stack.append(note);
  while (stack.childElementCount > NOTE_LIMIT) stack.firstElementChild.remove();
  wait();
}
