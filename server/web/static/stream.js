/**
 * The way in when Socket.IO cannot connect (a proxy that drops websockets and long polling, say):
 * `GET /api/stream`, one EventSource carrying every job of the user, written into the same store
 * the socket client writes, so the rest of the page cannot tell the difference.
 *
 * The server keeps the client rule for the stream (each job's events in order, no holes; a
 * `resync` snapshot when it cannot replay), so here an event is applied when it is the next one
 * and a snapshot when it is newer than what the store holds; an event past a hole fetches the job's
 * state once, and what arrives meanwhile waits for it. The stream starts with a snapshot of
 * every *unfinished* job only, so on every (re)open the finished ones are read from
 * `GET /api/jobs`: a reload shows them, and a job that ended while the stream was down does too.
 */
import { apiUrl, authHeaders } from "./identity.js";

const EVENTS = ["job_update", "job_complete", "job_error"];
/** Waits before opening a stream the server closed (EventSource retries other failures itself). */
const RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

async function requestJson(method, path) {
  const response = await fetch(apiUrl(path), { method, headers: authHeaders(), cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body?.error?.message ?? `The server answered ${response.status}.`);
  }
  return body;
}

/** `POST /api/jobs/{id}/cancel`: the socket-less twin of the client's `cancel`. */
export function cancelOverHttp(jobId) {
  return requestJson("POST", `/api/jobs/${encodeURIComponent(jobId)}/cancel`);
}

/**
 * Follow every job of the user into `store`. `onStatus("live" | "reconnecting" | "offline")`,
 * `onEvent(event)` for each applied event. Returns a function that closes the stream.
 */
export function followStream(store, { onStatus, onEvent }) {
  let source = null;
  let closed = false;
  let retryTimer;
  let attempt = 0;
  let opened = false;
  /** Job id -> the events that came while its state is being fetched (one request per job). */
  const fetching = new Map();

  function replace(snapshot) {
    const entry = store.getState().jobs[snapshot.job_id];
    if (entry !== undefined && entry.epoch === snapshot.epoch && entry.seq >= snapshot.seq) return;
    store.getState().replaceSnapshot(snapshot.job_id, snapshot, Date.now());
  }

  async function refetch(jobId) {
    fetching.set(jobId, []);
    let snapshot = null;
    try {
      snapshot = await requestJson("GET", `/api/jobs/${encodeURIComponent(jobId)}`);
      replace(snapshot);
    } catch {
      // gone or not ours any more: the next snapshot or list tells
    }
    const waited = fetching.get(jobId) ?? [];
    fetching.delete(jobId);
    if (closed) return;
    // What came meanwhile is mostly newer than the state fetched: applied now, in order. After a
    // failed fetch only the newest goes on, so one more hole asks once more, not once per event.
    const next = snapshot === null ? waited.slice(-1) : waited.filter((event) => event.epoch === snapshot.epoch);
    for (const event of next.sort((a, b) => a.seq - b.seq)) apply(event);
  }

  async function catchUp() {
    try {
      const { jobs } = await requestJson("GET", "/api/jobs");
      for (const snapshot of [...jobs].reverse()) replace(snapshot); // oldest first, like the client
    } catch {
      // the stream still brings every unfinished job
    }
  }

  function apply(event) {
    const waiting = fetching.get(event.job_id);
    if (waiting !== undefined) {
      waiting.push(event); // its job's state is on its way: no second request
      return;
    }
    const entry = store.getState().jobs[event.job_id];
    const known = entry !== undefined && entry.epoch !== null;
    if (known && entry.epoch === event.epoch && event.seq <= entry.seq) return; // already shown
    if (known ? entry.epoch === event.epoch && event.seq === entry.seq + 1 : event.seq === 1) {
      store.getState().applyEvent(event, Date.now());
      onEvent(event);
    } else {
      void refetch(event.job_id); // a hole, or a job first seen midway: take its whole state
    }
  }

  function parse(message) {
    try {
      return JSON.parse(message.data);
    } catch {
      return null;
    }
  }

  function open() {
    source = new EventSource(apiUrl("/api/stream", { stream: true }));
    source.addEventListener("open", () => {
      attempt = 0;
      onStatus("live");
      if (opened) void catchUp(); // the first time, it came before the stream
      opened = true;
    });
    for (const name of ["snapshot", "resync"]) {
      source.addEventListener(name, (message) => {
        const snapshot = parse(message);
        if (snapshot !== null) replace(snapshot);
      });
    }
    for (const name of EVENTS) {
      source.addEventListener(name, (message) => {
        const event = parse(message);
        if (event !== null) apply(event);
      });
    }
    source.addEventListener("error", () => {
      if (closed) return;
      if (source.readyState !== EventSource.CLOSED) {
        onStatus("reconnecting"); // the browser tries again by itself
        return;
      }
      onStatus("offline");
      const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
      attempt += 1;
      retryTimer = setTimeout(open, delay);
    });
  }

  // The list first, so rows come in the order the jobs were made, not unfinished ones first.
  void catchUp().finally(() => {
    if (!closed) open();
  });
  return () => {
    closed = true;
    clearTimeout(retryTimer);
    source?.close();
  };
}
