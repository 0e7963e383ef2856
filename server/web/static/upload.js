/**
 * Sending files: each file in a POST /api/upload of its own, a few at a time, so every file has
 * its own upload progress and can be stopped alone, and a thousand files never make one
 * enormous request. Dropped folders are walked with the drag-and-drop entry API.
 */
import { apiUrl, authHeaders } from "./identity.js";

/** Uploads in flight at once; the rest wait their turn. */
export const CONCURRENCY = 4;

let counter = 0;

/**
 * One file on its way to the server. `state`: waiting, uploading, uploaded (`jobId` is known),
 * failed (`error` says why) or cancelled.
 */
function newUpload(file) {
  counter += 1;
  return {
    key: `upload-${counter}`,
    file,
    name: file.name,
    state: "waiting",
    loaded: 0,
    total: file.size,
    jobId: null,
    error: null,
    xhr: null,
  };
}

function reasonOf(xhr) {
  try {
    const body = JSON.parse(xhr.responseText);
    if (body && body.error && typeof body.error.message === "string") return body.error.message;
  } catch {
    // not JSON: a proxy's page, say
  }
  return xhr.status === 0
    ? "The upload was cut off. Check your connection and try again."
    : `The server answered ${xhr.status} to the upload.`;
}

export class Uploader {
  /** `onChange(upload)` after every change of an upload's state or progress. */
  constructor(onChange) {
    this.onChange = onChange;
    this.queue = [];
    this.active = 0;
  }

  /** Queue files; returns their uploads at once, in order. */
  add(files) {
    const uploads = Array.from(files, newUpload);
    this.queue.push(...uploads);
    this.pump();
    return uploads;
  }

  cancel(upload) {
    if (upload.state === "waiting") {
      this.queue.splice(this.queue.indexOf(upload), 1);
      this.finish(upload, "cancelled");
    } else if (upload.state === "uploading") {
      upload.xhr.abort(); // the abort handler finishes it
    }
  }

  pump() {
    while (this.active < CONCURRENCY && this.queue.length > 0) {
      this.send(this.queue.shift());
    }
  }

  finish(upload, state, error = null) {
    upload.state = state;
    upload.error = error;
    upload.xhr = null;
    this.onChange(upload);
  }

  send(upload) {
    const xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    upload.state = "uploading";
    this.active += 1;
    const done = (state, error = null) => {
      this.active -= 1;
      this.finish(upload, state, error);
      this.pump();
    };
    xhr.upload.addEventListener("progress", (event) => {
      upload.loaded = event.loaded;
      if (event.lengthComputable) upload.total = event.total;
      this.onChange(upload);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status !== 202) {
        done("failed", reasonOf(xhr));
        return;
      }
      try {
        const [job] = JSON.parse(xhr.responseText).jobs;
        upload.jobId = job.job_id;
        upload.name = job.filename;
        upload.loaded = upload.total;
        done("uploaded");
      } catch {
        done("failed", "The server's answer to the upload could not be read.");
      }
    });
    xhr.addEventListener("error", () => done("failed", reasonOf(xhr)));
    xhr.addEventListener("abort", () => done("cancelled"));
    xhr.open("POST", apiUrl("/api/upload"));
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    const form = new FormData();
    form.append("files", upload.file, upload.file.name);
    xhr.send(form);
    this.onChange(upload);
  }
}

/** Whether a name is one a folder walk skips (.DS_Store, .git, editors' files). */
function hidden(name) {
  return name.startsWith(".");
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, into) {
  if (hidden(entry.name)) return;
  if (entry.isFile) {
    into.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    return;
  }
  const reader = entry.createReader();
  // readEntries answers in batches (100 in Chromium) until an empty one.
  for (let batch = await readBatch(reader); batch.length > 0; batch = await readBatch(reader)) {
    for (const child of batch) await walk(child, into);
  }
}

/** Every file of a drop, folders walked; the items must be read before the drop handler returns. */
export async function filesOfDrop(dataTransfer) {
  const items = Array.from(dataTransfer.items ?? []).filter((item) => item.kind === "file");
  if (items.length === 0) return Array.from(dataTransfer.files ?? []);
  const dropped = items.map((item) => ({
    entry: typeof item.webkitGetAsEntry === "function" ? item.webkitGetAsEntry() : null,
    file: item.getAsFile(),
  }));
  const files = [];
  for (const { entry, file } of dropped) {
    if (entry !== null && entry.isDirectory) {
      await walk(entry, files);
    } else if (file !== null) {
      files.push(file);
    }
  }
  return files;
}

/** The files of a folder picker, hidden ones left out as a dropped folder leaves them out. */
export function filesOfFolder(fileList) {
  return Array.from(fileList).filter(
    (file) => !(file.webkitRelativePath || file.name).split("/").some(hidden),
  );
}
