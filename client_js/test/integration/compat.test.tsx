// @vitest-environment jsdom
/**
 * `tidings-client/compat` against a real tidings server, through the seed documents' own snippets
 * (../compat/seed-snippets.tsx) rendered in jsdom: the page is put on the server's origin, so the
 * uploader's XMLHttpRequest and the clients reach it as a page's would. Socket.IO, uploads and the
 * pipeline are all real.
 */
import { act, cleanup, fireEvent, render, screen, waitFor as settle } from "@testing-library/react";
import { EventSource } from "eventsource";
import { createHmac } from "node:crypto";
import type { ReactNode } from "react";
import { io } from "socket.io-client";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

import type { JobClient } from "../../src/client.js";
import {
  createFileStatusClient,
  createLiveSystem,
  getUploadProgressManager,
  liveSystem,
  onJobEvent,
  UploadProgressStream,
  useFileStatusSocket,
  type FileProgressEvent,
} from "../../src/compat/react.js";
import type { Event } from "../../src/protocol.js";
import { JobClientProvider } from "../../src/react/index.js";
import { createUploader } from "../../src/upload.js";
import {
  AuthContext,
  chainUpload,
  closeEverything,
  FileManager,
  FileStatusLine,
  MyComponent,
  StoreWalkthrough,
} from "../compat/seed-snippets.js";
import { finish, run, startServer, STEPS, waitFor, type TidingsServer } from "./harness.js";

const SECRET = "compat-test-secret-0123456789abcdef012";
const JSDOM_ORIGIN = "http://localhost:3000";
let open: TidingsServer;
let secured: TidingsServer;
const clients: JobClient[] = [];
let counter = 0;
const fresh = (name: string) => `${name}-${Date.now().toString(36)}-${(counter += 1)}`;

beforeAll(async () => {
  // jsdom's XMLHttpRequest keeps the origin the window was made with (http://localhost:3000), so
  // the server accepts that origin; relative URLs and the default origin are then made the server's.
  [open, secured] = await Promise.all([startServer({ corsOrigins: JSDOM_ORIGIN }), startServer({ secret: SECRET })]);
  (globalThis as unknown as { jsdom: { reconfigure(options: { url: string }): void } }).jsdom.reconfigure({ url: `${open.url}/` });
});

afterAll(async () => {
  liveSystem.client.destroy(); // the documents' singleton, used by chainUpload
  await Promise.all([open?.stop(), secured?.stop()]);
});

afterEach(() => {
  cleanup();
  for (const client of clients.splice(0)) client.destroy();
});

function provider(client: JobClient) {
  clients.push(client);
  return ({ children }: { children?: ReactNode }) => <JobClientProvider client={client}>{children}</JobClientProvider>;
}

/** A user token, signed here: jose refuses jsdom's Uint8Array as a key. */
function hs256(secret: string, claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

const text = (label: string) => screen.getByLabelText(label).textContent;

describe("the documents' store (001, step 2.1)", () => {
  it("runs every action and query on the provider's store; updateProgress(id, 25) moves the file", async () => {
    const client = createFileStatusClient({ url: open.url });
    const Wrapper = provider(client);
    render(
      <Wrapper>
        <StoreWalkthrough fileId="local-1" />
        <FileStatusLine fileId="local-1" />
        <FileStatusLine fileId="local-2" />
      </Wrapper>,
    );
    expect(text("status of local-1")).toBe("unknown");
    act(() => client.store.getState().addStep("local-2", { step: "other", progress: 50 }));
    fireEvent.click(screen.getByText("run"));
    // The step said 15; the 25 is updateProgress's.
    expect(text("status of local-1")).toBe("duplicate_check 25% running");
    expect(client.store.getState().jobs["local-1"]?.progress).toBe(25);
    fireEvent.click(screen.getByText("query"));
    expect(text("queried")).toBe("25 2 2 0");
    fireEvent.click(screen.getByText("complete"));
    expect(text("status of local-1")).toBe("duplicate_check 100% completed");
    fireEvent.click(screen.getByText("query"));
    expect(text("queried")).toBe("100 2 1 1");
    fireEvent.click(screen.getByText("clear"));
    expect(text("status of local-1")).toBe("unknown");
    expect(text("status of local-2")).toBe("other 50% running");
    fireEvent.click(screen.getByText("clear all"));
    expect(text("status of local-2")).toBe("unknown");
  });
});

describe("useFileStatusSocket (001, step 2.2)", () => {
  it("follows the user on the provider's one connection, into the store useFileStatusStore reads", async () => {
    const client = createFileStatusClient({ url: open.url, userId: "compat-user" });
    const Wrapper = provider(client);
    const jobId = fresh("followed");
    render(
      <Wrapper>
        <AuthContext.Provider value={{ user: { id: "compat-user" } }}>
          <MyComponent />
          <FileStatusLine fileId={jobId} />
        </AuthContext.Provider>
      </Wrapper>,
    );
    expect(screen.getByText(/Disconnected/)).toBeTruthy();
    await screen.findByText(/✅ Connected/, undefined, { timeout: 20_000 });
    await run(open, jobId, STEPS, "compat-user");
    await settle(() => expect(text(`status of ${jobId}`)).toBe("field_detection 55% running"), { timeout: 20_000 });
    // One client, one store: what the hook followed is in the provider's store.
    expect(client.store.getState().jobs[jobId]?.progress).toBe(55);
  });

  it("delivers file_progress as an alias of job_update, with fileId, and job_complete apart", async () => {
    const client = createFileStatusClient({ url: open.url, userId: "alias-user" });
    clients.push(client);
    const progress: FileProgressEvent[] = [];
    const updates: Event[] = [];
    const completes: Event[] = [];
    onJobEvent(client, "file_progress", (data) => progress.push(data));
    onJobEvent(client, "job_update", (event) => updates.push(event));
    onJobEvent(client, "job_complete", (event) => completes.push(event));
    const jobId = fresh("alias");
    const stop = client.subscribe(jobId);
    await waitFor("connected", () => client.status === "connected");
    await run(open, jobId, STEPS.slice(0, 2), "alias-user");
    await finish(open, jobId);
    await waitFor("the completion", () => completes.length === 1);
    stop();
    expect(progress.map((data) => [data.fileId, data.step, data.progress])).toEqual([
      [jobId, "initializing_streaming", 5],
      [jobId, "duplicate_check", 15],
    ]);
    expect(progress.map((data) => data.seq)).toEqual(updates.map((event) => event.seq));
    expect(completes[0]?.status).toBe("done");
  });

  it("connects with the getToken option where the session token is refused (control: without it, it does not)", async () => {
    const good = hs256(SECRET, { sub: "token-user", exp: Math.floor(Date.now() / 1000) + 3600 });
    const states: Record<string, boolean> = {};
    function Probe({ name, getToken }: { name: string; getToken?: () => string }) {
      const { isConnected } = useFileStatusSocket("token-user", "not-a-token", getToken === undefined ? {} : { getToken });
      states[name] = isConnected;
      return <p aria-label={name}>{isConnected ? "connected" : "not connected"}</p>;
    }
    const refreshing = createFileStatusClient({ url: secured.url, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    const stale = createFileStatusClient({ url: secured.url, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    const Refreshing = provider(refreshing);
    const Stale = provider(stale);
    render(
      <>
        <Refreshing>
          <Probe name="refreshing" getToken={() => good} />
        </Refreshing>
        <Stale>
          <Probe name="stale" />
        </Stale>
      </>,
    );
    await settle(() => expect(text("refreshing")).toBe("connected"), { timeout: 20_000 });
    await settle(() => expect(stale.store.getState().connection.error?.code).toBe("unauthorized"), { timeout: 20_000 });
    expect(text("stale")).toBe("not connected");
  });
});

describe("the upload modal (002)", () => {
  it("shows each upload and the whole, and closes itself when every upload has completed", async () => {
    const Wrapper = provider(createFileStatusClient({ url: open.url }));
    const [a, b] = [fresh("modal-a"), fresh("modal-b")];
    render(
      <Wrapper>
        <FileManager initial={[a, b]} />
      </Wrapper>,
    );
    const dialog = screen.getByRole("dialog", { name: "Uploading files" });
    expect(document.activeElement).toBe(dialog);
    await run(open, a, STEPS, undefined);
    await settle(() => expect(screen.getByRole("progressbar", { name: `${a}.csv` }).getAttribute("aria-valuenow")).toBe("55"), {
      timeout: 20_000,
    });
    expect(screen.getByRole("progressbar", { name: "Overall progress" }).getAttribute("aria-valuenow")).toBe("27");
    await finish(open, a);
    await run(open, b, STEPS.slice(0, 1), undefined);
    expect(screen.queryByText("modal closed")).toBeNull();
    await finish(open, b);
    await screen.findByText("modal closed", undefined, { timeout: 20_000 });
    expect(screen.queryByRole("dialog")).toBeNull();
  });

  it("(control: a failed upload keeps it open with the reason, until it is closed)", async () => {
    const Wrapper = provider(createFileStatusClient({ url: open.url }));
    const [a, b] = [fresh("modal-ok"), fresh("modal-bad")];
    render(
      <Wrapper>
        <FileManager initial={[a, b]} />
      </Wrapper>,
    );
    await finish(open, a);
    await open.emit(b, { step: "error", status: "error", error: { code: "bad_csv", message: "The CSV has no header." } });
    await screen.findByText("1 of 2 uploads failed.", undefined, { timeout: 20_000 });
    // Tab stays inside the dialog: from the dialog itself to its first control.
    fireEvent.keyDown(screen.getByRole("dialog"), { key: "Tab" });
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Close" }));
    expect(screen.getByText(/The CSV has no header\./)).toBeTruthy();
    expect(screen.queryByText("modal closed")).toBeNull();
    fireEvent.keyDown(screen.getByRole("dialog"), { key: "Escape" });
    expect(screen.getByText("modal closed")).toBeTruthy();
  });
});

describe("liveSystem.uploadFiles (000)", () => {
  function fileInput(files: File[]): void {
    const input = document.createElement("input");
    input.type = "file";
    input.id = "fileInput";
    Object.defineProperty(input, "files", { value: Object.assign([...files], { item: (i: number) => files[i] ?? null }) });
    document.body.replaceChildren(input);
  }

  it("uploads each file, reports its progress to the end and resolves with the results", async () => {
    fileInput([
      new File(["name,email\nAda,ada@example.com\n"], "people.csv", { type: "text/csv" }),
      new File(["when,amount\n2024-01-02,$12.50\n"], "money.csv", { type: "text/csv" }),
    ]);
    const lines: string[] = [];
    const results = await chainUpload((line) => lines.push(line));
    expect(results.map((result) => [result.filename, result.success])).toEqual([
      ["people.csv", true],
      ["money.csv", true],
    ]);
    expect(lines.at(-1)).toBe("Upload complete: 2 success, 0 failed");
    expect(lines).toContain("[0] people.csv: 100% (done)");
    expect(lines).toContain("[1] money.csv: 100% (done)");
    expect(lines.find((line) => line.startsWith("[0] people.csv: 0% (uploading)"))).toBeDefined();
    // extractEntities: true reached the server: the pipeline ran its extraction step.
    const job = await open.snapshot(results[0]?.job_id ?? "");
    expect(job.steps.map((step) => step.step)).toContain("entity_extraction");
  });

  it("(control: without extractEntities there is no extraction; a refused upload calls onError)", async () => {
    const live = createLiveSystem();
    const errors: string[] = [];
    const results = await live.uploadFiles([new File(["a,b\n1,2\n"], "plain.csv"), new File([""], "")], {
      onError: (index, filename, error) => errors.push(`${index} ${error.message}`),
    });
    live.client.destroy();
    expect(results.map((result) => result.success)).toEqual([true, false]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^1 /);
    const job = await open.snapshot(results[0]?.job_id ?? "");
    expect(job.steps.map((step) => step.step)).not.toContain("entity_extraction");
  });
});

describe("UploadProgressStream and its manager (002)", () => {
  it("follows an upload's progress to its end, and closeAll closes every stream", async () => {
    // The documents' code uses the browser's EventSource; Node 20 has none, so the package's.
    Object.assign(globalThis, { EventSource });
    const live = createLiveSystem();
    const [result] = await live.uploadFiles([new File(["a,b\n1,2\n"], "streamed.csv")]);
    live.client.destroy();
    const seen: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      new UploadProgressStream(result?.job_id ?? "", {
        onProgress: (progress) => seen.push(progress.status),
        onComplete: () => resolve(),
        onError: reject,
      });
    });
    await done;
    expect(seen.at(-1)).toBe("completed");
    const manager = getUploadProgressManager();
    manager.track(result?.job_id ?? "");
    expect(manager.active).toHaveLength(1);
    closeEverything();
    expect(manager.active).toEqual([]);
  });
});

describe("an address that spent its budget of wrong credentials (issue 14)", () => {
  // The server allows 2 wrong credentials per address and gives one back every 2 s.
  let throttled: TidingsServer;
  const good = () => hs256(SECRET, { sub: "token-user", exp: Math.floor(Date.now() / 1000) + 3600 });

  beforeEach(async () => {
    throttled = await startServer({
      secret: SECRET,
      corsOrigins: JSDOM_ORIGIN,
      settings: { TIDINGS_AUTH_FAILURE_BURST: "2", TIDINGS_AUTH_FAILURE_RATE: "0.5" },
    });
  });

  afterEach(async () => {
    await throttled?.stop();
  });

  it.each([
    ["useFileStatusSocket shows the rate_limited sentence, and a new session token does not knock before retry_after", false],
    ["(control: a client blind to retry_after, handed the new token, is refused rate_limited again)", true],
  ])("%s", async (_name, blind) => {
    const refusals: string[] = [];
    const client = createFileStatusClient({
      url: throttled.url,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      transport: (url, options) => {
        const socket = io(url, options);
        socket.on("connect_error", (error: Error & { data?: unknown }) => {
          refusals.push(error.message);
          if (blind) delete error.data; // as the client before this change read the refusal
        });
        return socket;
      },
    });
    const Wrapper = provider(client);
    function Probe({ session }: { session: string }) {
      const { isConnected, error } = useFileStatusSocket("token-user", session);
      return <p aria-label="probe">{isConnected ? "connected" : (error?.message ?? "not connected")}</p>;
    }
    const view = render(
      <Wrapper>
        <Probe session="not-a-token" />
      </Wrapper>,
    );
    await settle(() => expect(refusals).toContain("rate_limited"), { timeout: 20_000 });
    const shown = text("probe");
    view.rerender(
      <Wrapper>
        <Probe session={good()} />
      </Wrapper>,
    );
    await settle(() => expect(text("probe")).toBe("connected"), { timeout: 20_000 });

    expect(refusals.slice(0, 3)).toEqual(["unauthorized", "unauthorized", "rate_limited"]);
    const limited = refusals.filter((message) => message === "rate_limited").length;
    expect(await throttled.metric('tidings_auth_throttled_total{transport="socketio"}')).toBe(limited);
    expect(limited > 1).toBe(blind);
    expect(shown).toBe(
      `The server refuses connections from this address for now (too many wrong credentials from it); trying again ${blind ? "shortly" : "in 2 s"}.`,
    );
  });

  it("the uploader says the server takes no upload for a while (control: a wrong token's refusal keeps the server's sentence)", async () => {
    let token = "not-a-token";
    const uploader = createUploader({ url: throttled.url, getToken: () => token, concurrency: 1 });
    const upload = async () => {
      const [sent] = uploader.add([new File(["a,b\n1,2\n"], "throttled.csv")]);
      await waitFor("the upload to end", () => sent?.finishedAt !== null);
      return sent;
    };
    for (let i = 0; i < 2; i += 1) {
      const refused = await upload();
      expect(refused?.state).toBe("failed");
      expect(refused?.error).not.toMatch(/^Too many attempts/);
    }
    token = good();
    const limited = await upload();
    expect(limited?.state).toBe("failed");
    // The page is on another origin, and the server does not expose Retry-After to other origins
    // (no Access-Control-Expose-Headers): the sentence cannot say for how long, until it does.
    expect(limited?.error).toMatch(
      /^Too many attempts from this address: the server takes no upload from it (for now\. Try again later|for [12] s\. Try again after that)\.$/,
    );
    expect(await throttled.metric('tidings_auth_throttled_total{transport="http"}')).toBe(1);
  });
});
