import { act, cleanup, render, renderHook, screen } from "@testing-library/react";
import { StrictMode, type ReactNode } from "react";
import { renderToString } from "react-dom/server";
import { afterEach, describe, expect, it } from "vitest";

import { createJobClient, type JobClient, type JobClientOptions } from "../../src/client.js";
import {
  JobClientProvider,
  JobProgress,
  JobTimeline,
  useConnectionStatus,
  useFileStatusSocket,
  useJob,
  useJobs,
} from "../../src/react/index.js";
import type { Snapshot } from "../../src/protocol.js";
import { createJobStore } from "../../src/store.js";
import { ev, fakeTransport, flush, snap, type FakeSocket } from "../fake-socket.js";

const clients: JobClient[] = [];

afterEach(() => {
  cleanup();
  for (const client of clients.splice(0)) client.destroy();
});

function setup(options: JobClientOptions = {}) {
  const transport = fakeTransport();
  const client = createJobClient({ url: "http://tidings.test", transport: transport.factory, ...options });
  clients.push(client);
  const wrapper = ({ children }: { children?: ReactNode }) => (
    <JobClientProvider client={client}>{children}</JobClientProvider>
  );
  const strict = ({ children }: { children?: ReactNode }) => (
    <StrictMode>
      <JobClientProvider client={client}>{children}</JobClientProvider>
    </StrictMode>
  );
  return { client, transport, wrapper, strict };
}

async function server(action: () => unknown | Promise<unknown>): Promise<void> {
  await act(async () => {
    await action();
    await flush();
  });
}

describe("useJob", () => {
  it("watches while mounted and re-renders on each applied event", async () => {
    const { client, transport, wrapper } = setup();
    const { result, unmount } = renderHook(() => useJob("job-1"), { wrapper });
    expect(result.current).toMatchObject({ subscription: "pending", status: "pending" });
    const socket = transport.last();
    await server(() => socket.open());
    await server(() => socket.only("subscribe").answer({ ok: true, job: snap(2), events: [], recovered: false }));
    expect(result.current).toMatchObject({ seq: 2, status: "processing", subscription: "active" });
    await server(() => socket.push("job_update", ev(3)));
    expect(result.current?.seq).toBe(3);
    await server(() => socket.push("job_update", ev(3)));
    expect(result.current?.seq).toBe(3);
    unmount();
    expect(client.watched()).toEqual([]);
    expect(socket.only("unsubscribe").payload).toEqual({ job_id: "job-1" });
  });

  it("takes a selector, and re-renders only when its value changes", async () => {
    const { transport, wrapper } = setup();
    let renders = 0;
    const { result } = renderHook(
      () => {
        renders += 1;
        return useJob("job-1", (entry) => entry?.status);
      },
      { wrapper },
    );
    const socket = transport.last();
    await server(() => socket.open());
    await server(() => socket.only("subscribe").answer({ ok: true, job: snap(2), events: [], recovered: false }));
    const before = renders;
    await server(() => socket.push("job_update", ev(3)));
    await server(() => socket.push("job_update", ev(4)));
    expect(result.current).toBe("processing");
    expect(renders).toBe(before);
    await server(() => socket.push("job_complete", ev(5, { status: "done" })));
    expect(result.current).toBe("done");
  });

  it("is safe under StrictMode's double effects: one watch, then none", async () => {
    const { client, transport, strict } = setup();
    const { result, unmount } = renderHook(() => useJob("job-1"), { wrapper: strict });
    expect(transport.sockets).toHaveLength(1);
    expect(client.watched()).toEqual(["job-1"]);
    const socket = transport.last();
    await server(() => socket.open());
    // Mount, unmount and mount again all happened before the connection: one subscribe goes out.
    expect(socket.pending("subscribe")).toHaveLength(1);
    await server(() => socket.only("subscribe").answer({ ok: true, job: snap(1), events: [], recovered: false }));
    await server(() => socket.push("job_update", ev(2)));
    expect(result.current?.seq).toBe(2);
    unmount();
    expect(client.watched()).toEqual([]);
  });

  it("counts two components watching the same job as two", async () => {
    const { client, transport, wrapper } = setup();
    function Row({ id }: { id: string }) {
      const status = useJob(id, (entry) => entry?.status ?? "none");
      return <li>{status}</li>;
    }
    const view = render(
      <ul>
        <Row id="job-1" />
        <Row id="job-1" />
      </ul>,
      { wrapper },
    );
    const socket = transport.last();
    await server(() => socket.open());
    expect(socket.pending("subscribe")).toHaveLength(1);
    view.rerender(
      <ul>
        <Row id="job-1" />
      </ul>,
    );
    expect(client.watched()).toEqual(["job-1"]);
    view.unmount();
    expect(client.watched()).toEqual([]);
  });
});

describe("useJobs", () => {
  it("sums many jobs up", async () => {
    const { transport, wrapper } = setup();
    const { result } = renderHook(() => useJobs(["a", "b"]), { wrapper });
    expect(result.current.aggregate).toMatchObject({ total: 2, counts: { pending: 2 } });
    const socket = transport.last();
    await server(() => socket.open());
    const [a, b] = socket.pending("subscribe");
    await server(() => {
      a?.answer({ ok: true, job: snap(3, { job: "a" }), events: [], recovered: false });
      b?.answer({ ok: true, job: snap(9, { job: "b", status: "done" }), events: [], recovered: false });
    });
    expect(result.current.jobs.map((j) => j?.jobId)).toEqual(["a", "b"]);
    expect(result.current.aggregate).toMatchObject({
      total: 2,
      percentage: (30 + 100) / 2,
      completed: 1,
      allCompleted: false,
    });
    await server(() => socket.push("job_complete", ev(4, { job: "a", status: "done" })));
    expect(result.current.aggregate).toMatchObject({ percentage: 100, allCompleted: true, allSettled: true });
  });

  it("does not loop re-rendering on a new array of the same ids", async () => {
    const { transport, wrapper } = setup();
    let renders = 0;
    const { rerender } = renderHook(
      ({ ids }) => {
        renders += 1;
        return useJobs(ids);
      },
      { wrapper, initialProps: { ids: ["a", "b"] } },
    );
    rerender({ ids: ["a", "b"] });
    expect(renders).toBeLessThan(5);
    expect(transport.last().connectCalls).toBe(1);
  });
});

describe("useConnectionStatus", () => {
  it("follows the connection", async () => {
    const { transport, wrapper } = setup();
    const { result } = renderHook(
      () => {
        useJob("job-1");
        return useConnectionStatus();
      },
      { wrapper },
    );
    expect(result.current).toBe("connecting");
    const socket = transport.last();
    await server(() => socket.open());
    expect(result.current).toBe("connected");
    await server(() => socket.drop());
    expect(result.current).toBe("reconnecting");
    await server(() => socket.open());
    expect(result.current).toBe("connected");
  });
});

describe("useFileStatusSocket", () => {
  it("follows every job of the user on a connection of its own, also in StrictMode", async () => {
    const transport = fakeTransport();
    const { result, rerender, unmount } = renderHook(
      ({ token }) => useFileStatusSocket("user-1", token, { url: "http://tidings.test", transport: transport.factory }),
      {
        wrapper: ({ children }) => <StrictMode>{children}</StrictMode>,
        initialProps: { token: "t1" },
      },
    );
    // StrictMode made one, dropped it, and made another: only the last is alive.
    expect(transport.sockets.length).toBeGreaterThanOrEqual(1);
    expect(transport.sockets.slice(0, -1).every((s) => !s.active)).toBe(true);
    const socket: FakeSocket = transport.last();
    expect(result.current.status).toBe("connecting");
    await server(async () => expect(await socket.open()).toEqual({ token: "t1" }));
    await server(() =>
      socket.only("list_jobs").answer({
        ok: true,
        jobs: [snap(2, { job: "b.csv" }), snap(5, { job: "a.csv", status: "done" })],
      }),
    );
    expect(result.current.files.map((f) => f.jobId)).toEqual(["a.csv", "b.csv"]);
    expect(result.current.completedFiles.map((f) => f.jobId)).toEqual(["a.csv"]);
    expect(result.current.activeFiles.map((f) => f.jobId)).toEqual(["b.csv"]);
    await server(() => socket.push("job_update", ev(1, { job: "c.csv" })));
    expect(result.current.aggregate).toMatchObject({ total: 3, completed: 1, active: 2 });

    rerender({ token: "t2" });
    await server(() => socket.drop());
    await server(async () => expect(await socket.open()).toEqual({ token: "t2" }));
    unmount();
    expect(socket.active).toBe(false);
  });

  it("does nothing without a user", () => {
    const transport = fakeTransport();
    const { result } = renderHook(() => useFileStatusSocket(null, null, { transport: transport.factory }));
    expect(transport.sockets).toHaveLength(0);
    expect(result.current.files).toEqual([]);
    expect(result.current.status).toBe("disconnected");
  });
});

describe("components", () => {
  it("JobProgress: a progressbar and a polite live region", async () => {
    const { transport, wrapper } = setup();
    render(<JobProgress jobId="job-1" />, { wrapper });
    const bar = screen.getByRole("progressbar");
    expect(bar.getAttribute("aria-valuenow")).toBeNull();
    expect(screen.getByRole("status").textContent).toBe("Waiting to start...");
    expect(screen.getByRole("status").getAttribute("aria-live")).toBe("polite");
    const socket = transport.last();
    await server(() => socket.open());
    await server(() => socket.only("subscribe").answer({ ok: true, job: null, events: [], recovered: false }));
    await server(() => socket.push("job_update", { ...ev(1, { progress: 45 }), eta_seconds: 12.5 }));
    expect(screen.getByRole("progressbar", { name: "a.csv" })).toBe(bar);
    expect(bar.getAttribute("aria-valuenow")).toBe("45");
    expect(bar.getAttribute("aria-valuetext")).toBe("45%, about 15 seconds left");
    expect(screen.getByRole("status").textContent).toBe("message 1");
    await server(() => socket.push("job_error", ev(2, { status: "error" })));
    expect(screen.getByRole("status").textContent).toBe("broken");
  });

  it("JobProgress: a tick of progress changes the bar, not the live region", async () => {
    const { transport, wrapper } = setup();
    render(<JobProgress jobId="job-1" />, { wrapper });
    const bar = screen.getByRole("progressbar");
    const region = screen.getByRole("status");
    const socket = transport.last();
    await server(() => socket.open());
    await server(() => socket.only("subscribe").answer({ ok: true, job: null, events: [], recovered: false }));
    await server(() => socket.push("job_update", { ...ev(1, { progress: 40 }), message: "Reading rows...", eta_seconds: 30 }));
    expect(bar.getAttribute("aria-busy")).toBeNull(); // a busy element's changes may go unsaid
    const said: string[] = [];
    const observer = new MutationObserver(() => said.push(region.textContent ?? ""));
    observer.observe(region, { childList: true, characterData: true, subtree: true });
    for (const [seq, progress] of [[2, 55], [3, 70], [4, 99.5]] as const) {
      await server(() => socket.push("job_update", { ...ev(seq, { progress }), message: "Reading rows...", eta_seconds: 30 - seq }));
    }
    expect(bar.getAttribute("aria-valuenow")).toBe("99"); // rounded down like the text: 99.5 % is not done
    expect(bar.getAttribute("aria-valuetext")).toBe("99%, about 25 seconds left");
    expect(region.textContent).toBe("Reading rows...");
    await server(() => socket.push("job_complete", { ...ev(5, { status: "done", progress: 100 }), message: "Done: 3 rows." }));
    observer.disconnect();
    expect(said).toEqual(["Done: 3 rows."]); // said once, at the end, and never a percentage
    expect(bar.getAttribute("aria-valuenow")).toBe("100");
  });

  it("JobProgress says when a job cannot be watched", async () => {
    const { transport, wrapper } = setup({ forbiddenGrace: 0 }); // refused for good at the first answer
    render(<JobProgress jobId="secret" label="Upload" />, { wrapper });
    const socket = transport.last();
    await server(() => socket.open());
    await server(() => socket.only("subscribe").answer({ ok: false, error: { code: "forbidden", message: "You may not watch this job." } }));
    expect(screen.getByRole("progressbar", { name: "Upload" })).toBeTruthy();
    expect(screen.getByRole("status").textContent).toBe("You may not watch this job.");
  });

  it("JobTimeline: the steps with their state", async () => {
    const { transport, wrapper } = setup();
    render(<JobTimeline jobId="job-1" />, { wrapper });
    const socket = transport.last();
    await server(() => socket.open());
    await server(() => socket.only("subscribe").answer({ ok: true, job: null, events: [], recovered: false }));
    await server(() => {
      socket.push("job_update", ev(1, { step: "initializing_streaming" }));
      socket.push("job_update", ev(2, { step: "duplicate_check" }));
    });
    const list = screen.getByRole("list", { name: "Steps" });
    const items = screen.getAllByRole("listitem");
    expect(list.children).toHaveLength(2);
    expect(items.map((item) => item.textContent)).toEqual(["message 1 (done)", "message 2 (in progress)"]);
    expect(items[1]?.getAttribute("aria-current")).toBe("step");
    expect(items[0]?.getAttribute("aria-current")).toBeNull();
    await server(() => socket.push("job_error", ev(3, { step: "duplicate_check", status: "error" })));
    expect(screen.getAllByRole("listitem").map((item) => item.getAttribute("data-status"))).toEqual(["complete", "error"]);
  });
});

describe("server-side rendering", () => {
  it("renders without opening a socket", () => {
    const transport = fakeTransport();
    const client = createJobClient({ url: "http://tidings.test", transport: transport.factory });
    clients.push(client);
    function Page() {
      const status = useConnectionStatus();
      const files = useFileStatusSocket("user-1", "token", { transport: transport.factory });
      return (
        <main>
          <p>{status}</p>
          <p>{`${files.files.length} files`}</p>
          <JobProgress jobId="job-1" />
          <JobTimeline jobId="job-1" />
        </main>
      );
    }
    const html = renderToString(
      <JobClientProvider client={client}>
        <Page />
      </JobClientProvider>,
    );
    expect(html).toContain('role="progressbar"');
    expect(html).toContain("disconnected");
    expect(html).toContain("0 files");
    expect(transport.sockets).toHaveLength(0);
  });

  it("renders the jobs a store was made with, filled, on the server and again in the browser", async () => {
    const snapshots = [snap(3, { job: "job-1" })];
    const page = (client: JobClient) => (
      <JobClientProvider client={client}>
        <JobProgress jobId="job-1" label="Upload" />
        <JobTimeline jobId="job-1" />
      </JobClientProvider>
    );
    const transport = fakeTransport();
    const serverSide = createJobClient({ transport: transport.factory, store: createJobStore({ snapshots }) });
    clients.push(serverSide);
    const html = renderToString(page(serverSide));
    expect(html).toContain("message 3");
    expect(html).toContain('aria-valuenow="30"');
    // The control: the same page with an empty store shows nothing of the job.
    const empty = createJobClient({ transport: transport.factory });
    clients.push(empty);
    expect(renderToString(page(empty))).not.toContain("message 3");
    expect(transport.sockets).toHaveLength(0);

    // In the browser, a store made from the same snapshots hydrates to the same markup.
    const container = document.createElement("div");
    container.innerHTML = html;
    document.body.append(container);
    const browser = setup({ store: createJobStore({ snapshots }) });
    const errors: unknown[] = [];
    const { hydrateRoot } = await import("react-dom/client");
    await act(async () => {
      hydrateRoot(container, page(browser.client), { onRecoverableError: (error) => errors.push(error) });
    });
    expect(errors).toEqual([]);
    expect(container.innerHTML).toContain("message 3");
    container.remove();
  });

  it("useFileStatusSocket renders the user's jobs it was given, before any connection", () => {
    const transport = fakeTransport();
    function Files({ initialJobs }: { initialJobs?: Snapshot[] }) {
      const { files } = useFileStatusSocket("user-1", "token", {
        transport: transport.factory,
        ...(initialJobs === undefined ? {} : { initialJobs }),
      });
      return <ul>{files.map((file) => <li key={file.jobId}>{`${file.jobId}: ${file.status}`}</li>)}</ul>;
    }
    const jobs = [snap(3, { job: "a", status: "done" }), snap(2, { job: "b" })];
    expect(renderToString(<Files initialJobs={jobs} />)).toBe("<ul><li>a: done</li><li>b: processing</li></ul>");
    expect(renderToString(<Files />)).toBe("<ul></ul>"); // the control
    expect(transport.sockets).toHaveLength(0);
  });
});
