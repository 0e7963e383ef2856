/**
 * The framework-free half of `tidings-client/compat`: the documents' names over the store, and the
 * upload-progress streams. The streams are given a recording EventSource here (the server's
 * `GET /api/files/progress/{upload_id}` is covered in test/integration/compat.test.tsx once it exists).
 * `liveSystem.uploadFiles`' reports, with the fake socket and an XMLHttpRequest that answers at once
 * (Node has none): against a real server in test/integration/compat.test.tsx.
 */
import { afterEach, describe, expect, it, vi } from "vitest";

import { createJobClient } from "../../src/client.js";
import {
  createLiveSystem,
  fileStatusView,
  toUploadProgress,
  UploadProgressManager,
  UploadProgressStream,
  type UploadProgress,
} from "../../src/compat/index.js";
import type { EventSourceLike } from "../../src/event-stream.js";
import { createJobStore } from "../../src/store.js";
import { ev, fakeTransport, flush, snap } from "../fake-socket.js";

class RecordingSource implements EventSourceLike {
  readyState = 1;
  closed = false;
  private readonly listeners = new Map<string, ((message: MessageEvent<string>) => void)[]>();

  constructor(readonly url: string) {}

  addEventListener(type: string, listener: (message: MessageEvent<string>) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
    this.readyState = 2;
  }

  emit(type: string, data = ""): void {
    for (const listener of this.listeners.get(type) ?? []) listener({ data } as MessageEvent<string>);
  }
}

function sources() {
  const made: RecordingSource[] = [];
  return {
    made,
    options: {
      baseUrl: "http://tidings.test",
      eventSource: (url: string) => {
        const source = new RecordingSource(url);
        made.push(source);
        return source;
      },
    },
  };
}

const progress = (status: UploadProgress["status"], percentage: number): string =>
  JSON.stringify({
    upload_id: "u 1",
    filename: "a.csv",
    total_bytes: 100,
    uploaded_bytes: percentage,
    status,
    progress_percentage: percentage,
  });

describe("fileStatusView", () => {
  it("names a job as the documents do, and is the same object for the same state", () => {
    const store = createJobStore();
    const view = () => fileStatusView(store.getState());
    view().addStep("f1", { step: "duplicate_check", message: "Checking...", status: "in_progress", timestamp: 1_700_000_000_000, progress: 15 });
    view().updateProgress("f1", 25);
    expect(view()).toBe(view());
    expect(view().getStatus("f1")).toMatchObject({
      fileId: "f1",
      currentStep: "duplicate_check",
      overallProgress: 25,
      startedAt: 1_700_000_000_000,
      steps: [{ step: "duplicate_check", status: "in_progress", timestamp: 1_700_000_000_000 }],
    });
    expect(view().getStatus("f1")).not.toHaveProperty("completedAt");
    const before = view();
    view().markComplete("f1");
    expect(view()).not.toBe(before);
    expect(view().getStatus("f1")?.completedAt).toEqual(expect.any(Number));
    expect(view().getCompletedFiles().map((file) => file.fileId)).toEqual(["f1"]);
    view().addStep("f2", { step: "read", message: "The file is unreadable.", status: "error", timestamp: 1 });
    expect(view().getStatus("f2")).toMatchObject({ error: "The file is unreadable." });
    expect(view().getActiveFiles()).toEqual([]);
  });

  it("shows a job not heard of as an upload at 0 %, and a done one at 100 %", () => {
    expect(toUploadProgress("u1", undefined)).toEqual({
      upload_id: "u1",
      filename: "u1",
      total_bytes: 0,
      uploaded_bytes: 0,
      status: "uploading",
      progress_percentage: 0,
    });
    const store = createJobStore();
    store.getState().addStep("u2", { step: "read", progress: 40, filename: "b.csv" });
    store.getState().markComplete("u2");
    expect(toUploadProgress("u2", store.getState().jobs["u2"])).toMatchObject({ status: "completed", progress_percentage: 100, filename: "b.csv" });
  });
});

describe("UploadProgressStream", () => {
  it("follows GET /api/files/progress/{id} until the upload completes, then closes", () => {
    const { made, options } = sources();
    const seen: string[] = [];
    const ended: string[] = [];
    const stream = new UploadProgressStream("u 1", { onProgress: (p) => seen.push(`${p.status} ${p.progress_percentage}`), onComplete: (p) => ended.push(p.status) }, options);
    const [source] = made;
    expect(source?.url).toBe("http://tidings.test/api/files/progress/u%201");
    source?.emit("progress", progress("uploading", 40));
    expect(stream.closed).toBe(false);
    source?.emit("progress", progress("completed", 100));
    expect(seen).toEqual(["uploading 40", "completed 100"]);
    expect(ended).toEqual(["completed"]);
    expect(source?.closed).toBe(true);
    expect(stream.latest?.progress_percentage).toBe(100);
  });

  it("reports a lost stream once and closes it (control: a closed stream reports nothing)", () => {
    const { made, options } = sources();
    const errors: string[] = [];
    new UploadProgressStream("u1", { onError: (error) => errors.push(error.message) }, options);
    made[0]?.emit("error");
    made[0]?.emit("error");
    expect(errors).toEqual(["The progress stream of upload u1 was lost."]);
    const quiet: string[] = [];
    const closed = new UploadProgressStream("u2", { onError: (error) => quiet.push(error.message) }, options);
    closed.close();
    made[1]?.emit("error");
    expect(quiet).toEqual([]);
  });
});

describe("UploadProgressManager", () => {
  it("keeps one stream per upload, forgets finished ones, and closeAll closes the rest", () => {
    const { made, options } = sources();
    const manager = new UploadProgressManager(options);
    manager.track("a");
    manager.track("b");
    manager.track("a"); // replaces the first stream of a
    expect(made.map((source) => source.closed)).toEqual([true, false, false]);
    expect(manager.active.sort()).toEqual(["a", "b"]);
    made[1]?.emit("progress", progress("failed", 10));
    expect(manager.active).toEqual(["a"]);
    manager.closeAll();
    expect(manager.active).toEqual([]);
    expect(made.every((source) => source.closed)).toBe(true);
  });
});

/** An XMLHttpRequest that takes every upload as job-1: its progress at 0 bytes, at all of them, then 202. */
class AcceptingRequest {
  readyState = 0;
  status = 0;
  responseText = "";
  private readonly listeners = new Map<string, (event?: unknown) => void>();
  private readonly progress: ((event: unknown) => void)[] = [];
  readonly upload = { addEventListener: (_type: string, listener: (event: unknown) => void) => this.progress.push(listener) };

  addEventListener(type: string, listener: () => void): void {
    this.listeners.set(type, listener);
  }

  open(): void {
    this.readyState = 1;
  }

  setRequestHeader(): void {}

  getResponseHeader(): null {
    return null;
  }

  send(body: FormData): void {
    const size = (body.get("files") as File).size;
    for (const loaded of [0, size]) for (const listener of this.progress) listener({ loaded, total: size, lengthComputable: true });
    this.status = 202;
    this.responseText = JSON.stringify({ jobs: [{ job_id: "job-1", filename: "a.csv" }] });
    this.listeners.get("load")?.();
  }
}

describe("liveSystem.uploadFiles' onProgress", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("reports a state only when its index, name, percent or status changed", async () => {
    vi.stubGlobal("XMLHttpRequest", AcceptingRequest);
    const transport = fakeTransport();
    const client = createJobClient({ url: "http://tidings.test", transport: transport.factory });
    const live = createLiveSystem({ url: "http://tidings.test", client });
    const reports: string[] = [];
    const finished = live.uploadFiles([new File(["a,b\n1,2\n"], "a.csv")], {
      onProgress: (index, filename, progress) => reports.push(`[${index}] ${filename}: ${progress.progress}% (${progress.status})`),
    });
    await flush(); // uploaded: the job is followed
    const socket = transport.last();
    await socket.open();
    await flush();
    socket.only("subscribe").answer({ ok: true, job: snap(1), events: [], recovered: false });
    // A new step and message at the same percent and status: the store changes, the report would not.
    socket.push("job_update", ev(2, { progress: 70 }));
    socket.push("job_update", ev(3, { progress: 70 }));
    // The control: the same percent with another status is reported, and so is the end.
    socket.push("job_update", ev(4, { progress: 70, step: "entity_extraction" }));
    socket.push("job_complete", ev(5, { status: "done" }));
    const [result] = await finished;
    client.destroy();
    expect(result).toMatchObject({ index: 0, filename: "a.csv", success: true, job_id: "job-1", status: "done" });
    // Every update was applied: the second at 70 % added a step of its own.
    expect(client.store.getState().jobs["job-1"]?.steps.map((step) => step.step)).toContain("field_detection");
    expect(reports).toEqual([
      "[0] a.csv: 0% (uploading)", // once, though the upload's progress was told at 0 bytes too
      "[0] a.csv: 10% (processing)",
      "[0] a.csv: 70% (processing)", // once, though two updates made it
      "[0] a.csv: 70% (extracting)",
      "[0] a.csv: 100% (done)",
    ]);
  });
});
