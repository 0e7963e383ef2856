/**
 * The live upload page: files go up through POST /api/upload, and every job of the user comes
 * back through the tidings client (the bundle beside this file): over Socket.IO, or, when that
 * cannot connect at all, over the server's event stream, which the client falls back to by itself
 * (`fallback: "sse"`). Either way it writes one store; this file only draws it.
 *
 * Drawing is built for a thousand files: one keyed row per job, created once and then updated in
 * place field by field, at most once per animation frame however many events arrived; a row's
 * step timeline is built only while it is open; the live log keeps its last LOG_LIMIT lines.
 * Every string that comes from a user or a server goes in as textContent, never as HTML.
 *
 * Besides the user's own jobs, the page follows any job by its id: `/?job=<id>` (repeatable),
 * `/jobs/<id>`, or the "Follow a job" form. On an open server the ids it followed are kept in
 * localStorage and followed again on the next visit, so jobs reported by a worker (which belong
 * to no one, or to another user) stay on the page. There it also lists the server's recent jobs,
 * each followed, when chosen, the way the form follows one.
 */
import { createJobClient, formatEta, formatPercent, isTerminal } from "./tidings-client.js";
import { identity } from "./identity.js";
import { pageUploader, filesOfDrop, filesOfFolder } from "./upload.js";
import { setUpControls } from "./controls.js";
import { notify, paintAgo, replay } from "./feedback.js";

const LOG_LIMIT = 200;
/** A note every this many files done. */
const MILESTONE = 10;

const LABELS = {
  waiting: "Waiting to upload",
  uploading: "Uploading",
  pending: "Uploaded",
  queued: "Queued",
  processing: "Processing",
  done: "Done",
  error: "Failed",
  cancelled: "Cancelled",
};
/** Which stats card a status counts in. */
const KINDS = {
  waiting: "queued",
  uploading: "uploading",
  pending: "queued",
  queued: "queued",
  processing: "processing",
  done: "done",
  error: "errors",
  cancelled: "errors",
};
/** Said when the server refuses the page's token: the page has no way to get a fresh one. */
const SESSION_EXPIRED = "Your session has expired - reopen the link";
const BADGES = {
  connected: "live",
  connecting: "connecting",
  reconnecting: "reconnecting",
  disconnected: "offline",
};

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(node, text) {
  const value = text ?? "";
  if (node.textContent !== value) node.textContent = value;
}

function clockTime(value) {
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour12: false });
}

// ---- what a row shows ---------------------------------------------------------------------

/**
 * When the job last changed, by the job's own timestamps: a job that finished minutes before the
 * page loaded was not updated "just now" (when its snapshot arrived). The client's clock caps it,
 * so a server clock ahead of the browser's never says "in the future".
 */
function changedAt(entry) {
  const server = Date.parse(entry.updatedAt ?? "");
  if (entry.lastEventAt === null) return null;
  return Number.isNaN(server) ? entry.lastEventAt : Math.min(server, entry.lastEventAt);
}

/** What a row shows for a job the store knows. */
function viewOfEntry(entry, fallbackName) {
  const terminal = isTerminal(entry.status);
  const waiting = entry.status === "pending" && entry.snapshot === null;
  const waitingFor = opened.has(entry.jobId) && fallbackName === undefined
    ? `Waiting for job ${entry.jobId} to start...`
    : "Uploaded. Waiting for the server to start on it...";
  return {
    name: entry.filename ?? fallbackName ?? entry.jobId,
    status: entry.status,
    message: waiting ? waitingFor : entry.message,
    progress: entry.status === "done" ? 100 : entry.progress,
    eta: terminal ? null : formatEta(entry.etaSeconds),
    at: changedAt(entry),
    steps: entry.steps,
    error: entry.status === "error" || entry.status === "cancelled" ? entry.error : null,
    errorAt: entry.updatedAt,
    cancellable: !terminal && entry.subscription !== "forbidden",
    cancelling: !terminal && entry.cancelRequested,
  };
}

/** What a row shows for a file still on its way up (or that never got there). */
function viewOfUpload(upload) {
  const share = upload.total > 0 ? (100 * upload.loaded) / upload.total : 0;
  const views = {
    waiting: ["waiting", upload.held ? `Waiting for "Upload all" to upload ${upload.name}.` : `Waiting to upload ${upload.name}...`, 0],
    uploading: ["uploading", `Uploading ${upload.name}...`, share],
    uploaded: ["pending", "Uploaded. Waiting for the server to start on it...", null],
    failed: ["error", `Could not upload ${upload.name}.`, null],
    cancelled: ["cancelled", "Upload cancelled.", null],
  };
  const [status, message, progress] = views[upload.state];
  return {
    name: upload.name,
    status,
    message,
    progress,
    eta: null,
    at: null,
    steps: null,
    error: upload.state === "failed" ? { code: "upload_failed", message: upload.error } : null,
    errorAt: upload.finishedAt === null ? null : new Date(upload.finishedAt).toISOString(),
    cancellable: upload.state === "waiting" || upload.state === "uploading" || upload.state === "uploaded",
    cancelling: false,
  };
}

// ---- one file ----------------------------------------------------------------------------

let rowCounter = 0;

class Row {
  constructor(key, onCancel) {
    this.key = key;
    this.view = {};
    rowCounter += 1;
    const nameId = `file-${rowCounter}-name`;

    this.el = element("li", "file");
    this.el.tabIndex = -1;
    const head = element("div", "file-head");
    this.icon = element("span", "file-icon");
    this.icon.setAttribute("aria-hidden", "true");
    const title = element("div", "file-title");
    this.name = element("span", "file-name");
    this.name.id = nameId;
    this.state = element("span", "file-state");
    title.append(this.name, this.state);
    this.cancel = element("button", "button small cancel", "Cancel");
    this.cancel.type = "button";
    this.cancel.addEventListener("click", () => onCancel(this.key));
    head.append(this.icon, title, this.cancel);

    this.message = element("p", "file-message");
    this.bar = element("div", "bar");
    this.bar.setAttribute("role", "progressbar");
    this.bar.setAttribute("aria-valuemin", "0");
    this.bar.setAttribute("aria-valuemax", "100");
    this.bar.setAttribute("aria-labelledby", nameId);
    this.fill = element("div", "bar-fill");
    this.bar.append(this.fill);

    const meta = element("p", "file-meta");
    this.percent = element("span", "file-percent");
    this.eta = element("span", "file-eta");
    this.ago = element("span", "file-ago");
    meta.append(this.percent, this.eta, this.ago);

    this.error = element("details", "file-error");
    this.error.hidden = true;
    this.error.append(element("summary", "", "Error details"));
    this.errorReason = element("p", "file-error-reason");
    this.errorFacts = element("p", "file-error-facts");
    this.errorTime = element("time", "file-error-time");
    this.error.append(this.errorReason, this.errorFacts, this.errorTime);

    this.steps = element("details", "file-steps");
    this.stepsSummary = element("summary", "", "Steps");
    this.timeline = element("ol", "timeline");
    this.steps.append(this.stepsSummary, this.timeline);
    this.steps.addEventListener("toggle", () => this.paintTimeline());

    this.el.append(head, this.message, this.bar, meta, this.error, this.steps);
  }

  paint(view) {
    const was = this.view;
    this.view = view;
    if (view.status !== was.status) {
      this.el.dataset.status = view.status;
      setText(this.state, LABELS[view.status]);
    }
    if (view.name !== was.name) setText(this.name, view.name);
    if (view.message !== was.message) {
      setText(this.message, view.message);
      if (was.message !== undefined) replay(this.message, "fade");
    }
    if (view.progress !== was.progress || view.message !== was.message) this.paintProgress(view);
    if (view.eta !== was.eta) setText(this.eta, view.eta);
    if (view.at !== was.at) this.tick(Date.now());
    if (view.error !== was.error || view.steps !== was.steps) this.paintError(view);
    if (view.steps !== was.steps) {
      this.steps.hidden = view.steps === null || view.steps.length === 0;
      setText(this.stepsSummary, `Steps (${view.steps?.length ?? 0})`);
      if (this.steps.open) this.paintTimeline();
    }
    if (view.cancellable !== was.cancellable || view.cancelling !== was.cancelling || view.name !== was.name) {
      const hadFocus = document.activeElement === this.cancel;
      this.cancel.hidden = !view.cancellable;
      this.cancel.disabled = view.cancelling;
      setText(this.cancel, view.cancelling ? "Cancelling..." : "Cancel");
      // The name a screen reader says is the label, so it must say what the button shows.
      this.cancel.setAttribute("aria-label", `${view.cancelling ? "Cancelling" : "Cancel"} ${view.name}`);
      if (hadFocus && this.cancel.hidden) this.el.focus(); // keep the keyboard user's place
    }
  }

  paintProgress(view) {
    const percent = view.progress === null ? null : Math.min(100, Math.max(0, view.progress));
    this.bar.classList.toggle("indeterminate", percent === null && !isTerminal(view.status));
    if (percent === null) {
      this.bar.removeAttribute("aria-valuenow");
      this.fill.style.width = isTerminal(view.status) ? "100%" : "";
    } else {
      this.bar.setAttribute("aria-valuenow", String(Math.floor(percent)));
      this.fill.style.width = `${percent}%`;
    }
    const shown = formatPercent(percent);
    this.bar.setAttribute("aria-valuetext", shown ? `${shown}: ${view.message ?? ""}` : view.message ?? "");
    setText(this.percent, shown);
  }

  paintError(view) {
    const error = view.error;
    this.error.hidden = error === null || error === undefined;
    if (this.error.hidden) return;
    this.el.dataset.errorCode = error.code;
    setText(this.errorReason, error.message);
    const step = view.steps?.find((entry) => entry.status === "error");
    setText(this.errorFacts, step ? `Code ${error.code}, in the step ${step.step}.` : `Code ${error.code}.`);
    const at = step?.updated_at ?? view.errorAt;
    this.errorTime.hidden = !at;
    if (at) {
      this.errorTime.dateTime = at;
      setText(this.errorTime, `Failed at ${clockTime(at)}`);
    }
  }

  /** The timeline is built only while it is open: a thousand closed rows cost nothing. */
  paintTimeline() {
    if (!this.steps.open) return;
    const items = (this.view.steps ?? []).map((step) => {
      const item = element("li", "step");
      item.dataset.status = step.status;
      const dot = element("span", "step-dot");
      dot.setAttribute("aria-hidden", "true");
      const time = element("time", "step-time", clockTime(step.started_at));
      time.dateTime = step.started_at;
      item.append(dot, element("span", "step-message", step.message), time);
      return item;
    });
    this.timeline.replaceChildren(...items);
  }

  tick(now) {
    paintAgo(this.ago, this.view.at, now);
  }

  rekey(key) {
    this.key = key;
  }
}

// ---- the page ----------------------------------------------------------------------------

const { userId, token } = identity();
const client = createJobClient({
  userId,
  ...(token ? { getToken: () => identity().token } : {}),
  // Socket.IO never got through (two failed attempts, or five seconds): the event stream instead.
  fallback: "sse",
});
const store = client.store;

const list = $("files");
const logList = $("log");
const rows = new Map(); // job id, or an upload's key until its job id is known -> Row
const uploadsByKey = new Map();
const uploadOfJob = new Map(); // job id -> its upload, for the name until the server says it
const painted = new Map(); // job id -> the store entry its row shows
const dirtyUploads = new Set();
const newRows = document.createDocumentFragment();
let pendingLog = [];
let finished = [];
let lastActivity = null;
/** Files done since the page loaded, for the milestones. */
let doneSinceLoad = 0;
let scheduled = false;

let mode = "socket.io";
let expired = false;
let transportState = "connecting";
let online = navigator.onLine;

function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(frame);
}

function addRow(key) {
  const row = new Row(key, cancel);
  rows.set(key, row);
  newRows.append(row.el);
  return row;
}

function frame() {
  scheduled = false;
  const { jobs, order } = store.getState();
  for (const jobId of order) {
    const entry = jobs[jobId];
    const before = painted.get(jobId);
    if (before === entry) continue;
    painted.set(jobId, entry);
    const row = rows.get(jobId) ?? addRow(jobId);
    row.paint(viewOfEntry(entry, uploadOfJob.get(jobId)?.name));
    // Finished while the page watched: seen running, or uploaded from here (it may end before
    // the first frame that sees it). Jobs that had ended before the page opened are not news.
    const watchedRunning = before?.snapshot ? !isTerminal(before.status) : uploadOfJob.has(jobId);
    if (watchedRunning && isTerminal(entry.status)) finished.push(entry);
    const at = changedAt(entry);
    if (at !== null && (lastActivity === null || at > lastActivity)) lastActivity = at;
  }
  for (const upload of dirtyUploads) rows.get(upload.key)?.paint(viewOfUpload(upload));
  dirtyUploads.clear();
  if (newRows.childNodes.length > 0) list.append(newRows);
  flushLog();
  paintOverview();
  announce();
  paintUpdated(Date.now());
}

function paintOverview() {
  const counts = { queued: 0, uploading: 0, processing: 0, done: 0, errors: 0 };
  let sum = 0;
  for (const row of rows.values()) {
    const { status, progress } = row.view;
    if (status === undefined) continue;
    counts[KINDS[status]] += 1;
    sum += isTerminal(status) ? 100 : Math.min(100, Math.max(0, progress ?? 0));
  }
  const total = rows.size;
  const percent = total === 0 ? 0 : sum / total;
  for (const [kind, count] of Object.entries(counts)) {
    const node = $(`count-${kind}`);
    if (node.textContent === String(count)) continue;
    node.textContent = String(count);
    replay(node.closest(".stat"), "pulse");
  }
  setText($("overall-percent"), formatPercent(percent));
  const settled = counts.done + counts.errors;
  setText(
    $("overall-label"),
    total === 0
      ? "No files yet"
      : settled === total
        ? `All ${total} ${total === 1 ? "file" : "files"} finished`
        : `${settled} of ${total} ${total === 1 ? "file" : "files"} finished`,
  );
  const bar = $("overall-bar");
  bar.setAttribute("aria-valuenow", String(Math.floor(percent)));
  bar.firstElementChild.style.width = `${percent}%`;
  $("empty").hidden = total > 0;
}

/**
 * The polite live region says when files finish; many at once are said in one sentence. Each
 * sentence goes in as a new node, so one that repeats the last (the same file uploaded twice) is
 * still read: a screen reader hears of an added node, while text set to what it was changes nothing.
 */
function announce() {
  if (finished.length === 0) return;
  const ended = finished;
  finished = [];
  refreshRecent(); // the recent list shows how they ended
  let sentence;
  if (ended.length === 1) {
    const [entry] = ended;
    const name = entry.filename ?? entry.jobId;
    sentence =
      entry.status === "done"
        ? `${name} is done.`
        : entry.status === "cancelled"
          ? `${name} was cancelled.`
          : `${name} failed: ${entry.error?.message ?? entry.message ?? "no reason given"}`;
  } else {
    const parts = ["done", "error", "cancelled"]
      .map((status) => [ended.filter((entry) => entry.status === status).length, status])
      .filter(([count]) => count > 0)
      .map(([count, status]) => `${count} ${status === "error" ? "failed" : status}`);
    sentence = `${ended.length} files finished: ${parts.join(", ")}.`;
  }
  const failed = ended.some((entry) => entry.status !== "done");
  notify(sentence, failed ? "error" : "done");
  const before = doneSinceLoad;
  doneSinceLoad += ended.filter((entry) => entry.status === "done").length;
  const reached = Math.floor(doneSinceLoad / MILESTONE) * MILESTONE;
  if (reached > before) {
    const note = `Milestone: ${reached} files done.`;
    notify(note, "milestone");
    log(note);
    sentence = `${sentence} ${note}`;
  }
  $("announcer").replaceChildren(element("p", "", sentence));
}

function paintUpdated(now) {
  paintAgo($("updated"), lastActivity, now, "no updates yet");
}

/** Once a second: the "updated N s ago" texts move on by themselves. */
function tick() {
  const now = Date.now();
  paintUpdated(now);
  for (const row of rows.values()) if (row.view.at) row.tick(now);
}

// ---- the live log -------------------------------------------------------------------------

function log(text, at = Date.now()) {
  pendingLog.push([at, text]);
  if (pendingLog.length > LOG_LIMIT) pendingLog = pendingLog.slice(-LOG_LIMIT);
  schedule();
}

function logEvent(event) {
  const name = typeof event.extra?.filename === "string" ? event.extra.filename : event.job_id;
  log(`${name}: ${event.message}`);
}

function flushLog() {
  if (pendingLog.length === 0) return;
  const atBottom = logList.scrollTop + logList.clientHeight >= logList.scrollHeight - 4;
  const lines = pendingLog.map(([at, text]) => {
    const item = element("li", "log-line");
    const time = element("time", "log-time", clockTime(new Date(at)));
    time.dateTime = new Date(at).toISOString();
    item.append(time, element("span", "log-text", text));
    return item;
  });
  pendingLog = [];
  logList.append(...lines);
  while (logList.childElementCount > LOG_LIMIT) logList.firstElementChild.remove();
  if (atBottom) logList.scrollTop = logList.scrollHeight;
}

// ---- connection ---------------------------------------------------------------------------

function paintConnection() {
  const state = online ? transportState : "offline";
  const badge = $("connection");
  badge.dataset.state = state;
  setText(badge, state);
  setText($("transport"), mode === "socket.io" ? "via Socket.IO" : "via server-sent events");
}

function onConnection(connection) {
  if (expired) return;
  if (connection.error?.code === "unauthorized") {
    sessionExpired();
    return;
  }
  const was = transportState;
  transportState = BADGES[connection.status];
  if (connection.transport !== mode) {
    mode = connection.transport;
    log("Socket.IO could not connect; following the server-sent event stream instead.");
  }
  if (was !== transportState) {
    const stream = mode === "sse";
    if (transportState === "live") {
      log(stream ? "Connected to the event stream: live." : was === "connecting" ? "Connected: live." : "Reconnected: live again.");
    } else if (transportState === "reconnecting" && was === "live") {
      log("Connection lost; reconnecting...");
    }
  }
  paintConnection();
}

/**
 * The server refused the token (it expired, or there is none where one is needed). Another
 * transport would be refused too, and the page cannot mint a token: say so, and stop asking.
 */
function sessionExpired() {
  expired = true;
  client.disconnect();
  transportState = "offline";
  const notice = $("notice");
  notice.textContent = SESSION_EXPIRED;
  notice.hidden = false;
  log(`${SESSION_EXPIRED}.`);
  paintConnection();
}

// ---- actions ------------------------------------------------------------------------------

// ---- jobs followed by id ------------------------------------------------------------------

const JOB_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const OPENED_KEY = "tidings.followed";
const OPENED_LIMIT = 50;
const opened = new Set();

/** The job ids in the address: `?job=<id>` (any number of them) and `/jobs/<id>`. */
function jobsInAddress() {
  const ids = new URL(window.location.href).searchParams.getAll("job");
  const path = /^\/jobs\/([^/]+)\/?$/.exec(window.location.pathname);
  if (path) {
    try {
      ids.push(decodeURIComponent(path[1]));
    } catch {
      ids.push(path[1]);
    }
  }
  return ids.map((id) => id.trim()).filter(Boolean);
}

function followedBefore() {
  try {
    const ids = JSON.parse(localStorage.getItem(OPENED_KEY) ?? "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string" && JOB_ID.test(id)) : [];
  } catch {
    return [];
  }
}

function remember(jobId) {
  const ids = [jobId, ...followedBefore().filter((id) => id !== jobId)].slice(0, OPENED_LIMIT);
  try {
    localStorage.setItem(OPENED_KEY, JSON.stringify(ids));
  } catch {
    // Storage full or blocked: the job is followed for this visit only.
  }
}

/** Follow a job by its id; false (and a log line saying why) for something that is not one. */
function follow(jobId, { quiet = false } = {}) {
  if (!JOB_ID.test(jobId)) {
    log(`"${jobId}" is not a job id: 1 to 128 letters, digits and _ . : - only.`);
    return false;
  }
  if (!opened.has(jobId)) {
    opened.add(jobId);
    client.subscribe(jobId);
    if (!quiet) log(`Following job ${jobId}.`);
  }
  if (!token) remember(jobId);
  return true;
}

/**
 * Follow a job the person asked for on the page (the form, a recent job): also put it in the
 * address, so a reload or a shared link follows it too, and bring its row into view.
 */
function openJob(jobId) {
  if (!follow(jobId)) return false;
  const address = new URL(window.location.href);
  if (!address.searchParams.getAll("job").includes(jobId)) address.searchParams.append("job", jobId);
  window.history.replaceState(null, "", address);
  schedule(); // its row is drawn on the next frame, and shown then
  requestAnimationFrame(() => rows.get(jobId)?.el.scrollIntoView({ block: "nearest" }));
  return true;
}

function setUpFollowing() {
  for (const jobId of jobsInAddress()) follow(jobId);
  if (!token) for (const jobId of followedBefore()) follow(jobId, { quiet: true });
  const form = $("open-job");
  const input = $("job-id");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (openJob(input.value.trim())) input.value = "";
  });
}

// ---- recent jobs of the server ------------------------------------------------------------

/** The list is fetched again at most this often while the page is visible (and when a job ends). */
const RECENT_REFRESH_MS = 30_000;
let recentRefused = false;
let recentLoading = null;
let recentAgain = false;

/**
 * On an open server the page lists the server's newest jobs (`GET /api/jobs/recent`), whoever
 * made them, so a job a worker reports can be found without knowing its id. The server decides:
 * with a secret it answers 403 and the list stays hidden for good.
 */
function refreshRecent() {
  if (recentRefused) return;
  if (recentLoading !== null) {
    recentAgain = true; // one more fetch once this one is back, not one per finished job
    return;
  }
  recentLoading = loadRecent().finally(() => {
    recentLoading = null;
    if (recentAgain) {
      recentAgain = false;
      refreshRecent();
    }
  });
}

async function loadRecent() {
  let response;
  try {
    response = await fetch("/api/jobs/recent", { headers: { Accept: "application/json" } });
  } catch {
    return; // offline: the list stays as it was until the next refresh
  }
  if (response.status === 403) {
    recentRefused = true;
    $("recent").hidden = true;
    return;
  }
  if (!response.ok) return;
  const { jobs } = await response.json();
  paintRecent(Array.isArray(jobs) ? jobs : []);
}

function paintRecent(jobs) {
  const list = $("recent-list");
  const focused = document.activeElement?.closest?.(".recent-job")?.dataset.jobId;
  const items = jobs.map((job) => {
    const name = typeof job.extra?.filename === "string" ? job.extra.filename : job.job_id;
    const facts = [LABELS[job.status] ?? job.status];
    if (!isTerminal(job.status) && typeof job.progress === "number") facts.push(formatPercent(job.progress));
    if (name !== job.job_id) facts.push(job.job_id);
    const button = element("button", "button recent-job");
    button.type = "button";
    button.dataset.jobId = job.job_id;
    button.append(element("span", "recent-name", name), element("span", "recent-facts", facts.join(" · ")));
    button.addEventListener("click", () => openJob(job.job_id));
    const item = element("li", "recent-item");
    item.append(button);
    return item;
  });
  list.replaceChildren(...items);
  $("recent-empty").hidden = jobs.length > 0;
  $("recent").hidden = false;
  if (focused !== undefined) {
    // A keyboard user keeps their place when the list is drawn again.
    Array.from(list.querySelectorAll(".recent-job")).find((button) => button.dataset.jobId === focused)?.focus();
  }
}

function setUpRecent() {
  refreshRecent();
  setInterval(() => {
    if (!document.hidden) refreshRecent();
  }, RECENT_REFRESH_MS);
}

function nameOf(key) {
  return rows.get(key)?.view.name ?? key;
}

async function cancel(key) {
  const upload = uploadsByKey.get(key);
  if (upload !== undefined) {
    uploader.cancel(upload);
    return;
  }
  store.getState().setCancelRequested(key, true);
  try {
    await client.cancel(key); // over Socket.IO, or over HTTP after the fallback
    log(`Cancelled ${nameOf(key)}.`);
  } catch (error) {
    store.getState().setCancelRequested(key, false);
    log(`Could not cancel ${nameOf(key)}: ${error.message}`);
  }
}

function onUpload(upload) {
  if (upload.state === "uploaded") {
    // From here the row is the job's: keyed by its id, drawn from the store.
    uploadsByKey.delete(upload.key);
    uploadOfJob.set(upload.jobId, upload);
    const row = rows.get(upload.key);
    rows.delete(upload.key);
    const existing = rows.get(upload.jobId);
    if (existing !== undefined) {
      row.el.replaceWith(existing.el); // its events came before the upload's answer
    } else {
      row.rekey(upload.jobId);
      rows.set(upload.jobId, row);
      if (store.getState().jobs[upload.jobId] === undefined) row.paint(viewOfUpload(upload));
    }
    painted.delete(upload.jobId);
    schedule();
    return;
  }
  if (upload.state === "failed") {
    log(`Could not upload ${upload.name}: ${upload.error}`);
    notify(`Could not upload ${upload.name}: ${upload.error}`, "error");
  }
  if (upload.state === "cancelled") log(`Upload of ${upload.name} cancelled.`);
  dirtyUploads.add(upload);
  schedule();
}

const controls = setUpControls({
  onChange(settings) {
    uploader.concurrency = settings.parallel;
    if (settings.autoStart) uploadAll();
  },
  onUploadAll: uploadAll,
});
const uploader = pageUploader((upload) => {
  onUpload(upload);
  controls.setHeld(uploader.held);
}, controls.settings);

function uploadAll() {
  const count = uploader.release();
  if (count > 0) log(`Uploading ${count} ${count === 1 ? "file" : "files"}.`);
}

function addFiles(files) {
  if (files.length === 0) return;
  const hold = !controls.settings().autoStart;
  for (const upload of uploader.add(files, { hold })) {
    uploadsByKey.set(upload.key, upload);
    addRow(upload.key);
    dirtyUploads.add(upload);
  }
  const count = `${files.length} ${files.length === 1 ? "file" : "files"}`;
  log(hold ? `Added ${count}; press "Upload all" to send them.` : `Uploading ${count}.`);
  schedule();
}

function setUpInputs() {
  const fileInput = $("file-input");
  const folderInput = $("folder-input");
  const dropzone = $("dropzone");
  $("pick-files").addEventListener("click", () => fileInput.click());
  $("pick-folder").addEventListener("click", () => folderInput.click());
  fileInput.addEventListener("change", () => {
    addFiles(Array.from(fileInput.files));
    fileInput.value = "";
  });
  folderInput.addEventListener("change", () => {
    addFiles(filesOfFolder(folderInput.files));
    folderInput.value = "";
  });
  const carriesFiles = (event) => Array.from(event.dataTransfer?.types ?? []).includes("Files");
  // The whole page takes a drop, so a near miss never opens the file in place of the page.
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropzone.classList.add("dragging");
  });
  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) dropzone.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dropzone.classList.remove("dragging");
    filesOfDrop(event.dataTransfer).then(addFiles, (error) =>
      log(`Could not read what was dropped: ${error.message}`),
    );
  });
}

function start() {
  setUpInputs();
  store.subscribe((state, previous) => {
    if (state.connection !== previous.connection) onConnection(state.connection);
    schedule();
  });
  client.on("event", logEvent);
  window.addEventListener("online", () => {
    online = true;
    paintConnection();
  });
  window.addEventListener("offline", () => {
    online = false;
    paintConnection();
  });
  client.followUser();
  setUpFollowing();
  setUpRecent();
  setInterval(tick, 1_000);
  paintConnection();
  schedule();
}

start();
