/**
 * Sending files: each file in a `POST /api/upload` of its own, a few at a time, so every file has
 * its own upload progress and can be stopped alone, and a thousand files never make one enormous
 * request. The server answers with the file's job, which a `JobClient` then watches. This is the
 * one uploader: the live page and `tidings-client/compat`'s `liveSystem.uploadFiles` use it.
 *
 * It sends with XMLHttpRequest, the one browser API that reports upload progress.
 */
import type { TokenSource } from "./connection.js";
import { retryAfterSeconds } from "./errors.js";

/** `waiting` → `uploading` → `uploaded` (the job is known), or `failed` / `cancelled`. */
export type UploadState = "waiting" | "uploading" | "uploaded" | "failed" | "cancelled";

/** What the uploader needs of a file: a Blob with a name (a `File`). */
export interface UploadFile extends Blob {
  readonly name: string;
}

export interface Upload {
  /** Unique within the page, until the job id is known. */
  readonly key: string;
  readonly file: UploadFile;
  /** The file's name; the server's display name once uploaded. */
  name: string;
  state: UploadState;
  loaded: number;
  total: number;
  jobId: string | null;
  /** A token for the job alone, when the server mints them. */
  jobToken: string | null;
  /** Why the upload failed. */
  error: string | null;
  /** Waiting for `release()` rather than for its turn. */
  held: boolean;
  /** Client clock (ms) when it was uploaded, failed or cancelled. */
  finishedAt: number | null;
}

export interface UploaderOptions {
  /** The server; the page's own origin when left out. */
  url?: string;
  /** Sent as `Authorization: Bearer`; read for every file. */
  getToken?: TokenSource;
  /** Sent as `?user_id=` when there is no token (a server in open mode). */
  userId?: string;
  /** Uploads in flight at once; the rest wait their turn. 4 by default; may be changed later. */
  concurrency?: number;
  /** Ask the server to extract entities from each file; read when each file is sent. */
  extractEntities?: boolean | (() => boolean);
  /** After every change of an upload's state or progress. */
  onChange?: (upload: Upload) => void;
  /** Replaces `new XMLHttpRequest()`. */
  xhr?: () => XMLHttpRequest;
}

export interface Uploader {
  /** Queues files; returns their uploads at once, in order. Held files wait for `release()`. */
  add(files: Iterable<UploadFile> | ArrayLike<UploadFile>, options?: { hold?: boolean }): Upload[];
  /** Lets every held file go, in turn; returns how many there were. */
  release(): number;
  /** Files held now. */
  readonly held: number;
  /** Stops a waiting or uploading file. */
  cancel(upload: Upload): void;
  /** Uploads in flight at once; raising it starts waiting files. */
  concurrency: number;
  /** Files in flight now. */
  readonly active: number;
}

export const DEFAULT_CONCURRENCY = 4;

let counter = 0;

function newUpload(file: UploadFile, held: boolean): Upload {
  counter += 1;
  return {
    key: `upload-${counter}`,
    file,
    name: file.name,
    state: "waiting",
    loaded: 0,
    total: file.size,
    jobId: null,
    jobToken: null,
    error: null,
    held,
    finishedAt: null,
  };
}

function reasonOf(xhr: XMLHttpRequest): string {
  if (xhr.status === 429) {
    // Too many wrong credentials from this address (or a proxy's limit): say how long to wait.
    const seconds = retryAfterSeconds(xhr.getResponseHeader("Retry-After"));
    return seconds === null
      ? "Too many attempts from this address: the server takes no upload from it for now. Try again later."
      : `Too many attempts from this address: the server takes no upload from it for ${seconds} s. Try again after that.`;
  }
  try {
    const body = JSON.parse(xhr.responseText) as { error?: { message?: unknown } } | null;
    if (typeof body?.error?.message === "string") return body.error.message;
  } catch {
    // not JSON: a proxy's page, say
  }
  return xhr.status === 0
    ? "The upload was cut off. Check your connection and try again."
    : `The server answered ${xhr.status} to the upload.`;
}

interface UploadAnswer {
  jobs: { job_id: string; filename: string; token?: string }[];
}

function answerOf(xhr: XMLHttpRequest): UploadAnswer["jobs"][number] | undefined {
  try {
    return (JSON.parse(xhr.responseText) as UploadAnswer).jobs[0];
  } catch {
    return undefined;
  }
}

export function createUploader(options: UploaderOptions = {}): Uploader {
  const queue: Upload[] = [];
  const requests = new Map<Upload, XMLHttpRequest>();
  const onChange = options.onChange ?? (() => undefined);
  let concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;

  function pump(): void {
    while (requests.size < concurrency) {
      const next = queue.findIndex((upload) => !upload.held);
      if (next < 0) return;
      const upload = queue.splice(next, 1)[0] as Upload;
      send(upload).catch((error: unknown) => {
        // No XMLHttpRequest here (Node), say: the file fails rather than the page.
        finish(upload, "failed", `The upload could not start: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
  }

  function finish(upload: Upload, state: UploadState, error: string | null = null): void {
    upload.state = state;
    upload.error = error;
    upload.finishedAt = Date.now();
    if (requests.delete(upload)) pump();
    onChange(upload);
  }

  async function send(upload: Upload): Promise<void> {
    const xhr = options.xhr?.() ?? new XMLHttpRequest();
    requests.set(upload, xhr);
    upload.state = "uploading";
    onChange(upload);
    xhr.upload.addEventListener("progress", (event) => {
      upload.loaded = event.loaded;
      if (event.lengthComputable) upload.total = event.total;
      onChange(upload);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status !== 202) {
        finish(upload, "failed", reasonOf(xhr));
        return;
      }
      const job = answerOf(xhr);
      if (job === undefined) {
        finish(upload, "failed", "The server's answer to the upload could not be read.");
        return;
      }
      upload.jobId = job.job_id;
      upload.jobToken = job.token ?? null;
      upload.name = job.filename;
      upload.loaded = upload.total;
      finish(upload, "uploaded");
    });
    xhr.addEventListener("error", () => finish(upload, "failed", reasonOf(xhr)));
    xhr.addEventListener("abort", () => finish(upload, "cancelled"));

    let token: string | null | undefined;
    try {
      token = options.getToken === undefined ? null : await options.getToken();
    } catch (error) {
      finish(upload, "failed", `No token for the upload: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (upload.state !== "uploading") return; // cancelled while the token was fetched
    const base = options.url ?? globalThis.location.origin;
    const target = new URL("/api/upload", base);
    if (!token && options.userId !== undefined) target.searchParams.set("user_id", options.userId);
    xhr.open("POST", target.href);
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    const form = new FormData();
    form.append("files", upload.file, upload.file.name);
    const extract = typeof options.extractEntities === "function" ? options.extractEntities() : options.extractEntities;
    if (extract !== undefined) form.append("extract_entities", String(extract));
    xhr.send(form);
  }

  return {
    add(files, { hold = false } = {}) {
      const uploads = Array.from(files, (file) => newUpload(file, hold));
      queue.push(...uploads);
      for (const upload of uploads) onChange(upload);
      pump();
      return uploads;
    },

    release() {
      const held = queue.filter((upload) => upload.held);
      for (const upload of held) {
        upload.held = false;
        onChange(upload);
      }
      pump();
      return held.length;
    },

    get held() {
      return queue.filter((upload) => upload.held).length;
    },

    cancel(upload) {
      if (upload.state === "waiting") {
        queue.splice(queue.indexOf(upload), 1);
        finish(upload, "cancelled");
        return;
      }
      const xhr = requests.get(upload);
      if (upload.state !== "uploading" || xhr === undefined) return;
      if (xhr.readyState === 0) finish(upload, "cancelled"); // still fetching the token
      else xhr.abort(); // the abort handler finishes it
    },

    get concurrency() {
      return concurrency;
    },

    set concurrency(value) {
      concurrency = Math.max(1, Math.floor(value));
      pump();
    },

    get active() {
      return requests.size;
    },
  };
}
