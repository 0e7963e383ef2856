/**
 * A client whose address spent its budget of wrong credentials, against a real tidings server that
 * allows 2 (`TIDINGS_AUTH_FAILURE_BURST`) and gives one back every 2 s (`TIDINGS_AUTH_FAILURE_RATE`).
 * Until then the server refuses every connect with a token, right or wrong, so an attempt before
 * `retry_after` is one more `rate_limited` refusal: the count of refusals (the client's and the
 * server's `/metrics`) shows when the client asked again, and the test reads no clock.
 */
import { EventSource } from "eventsource";
import { io } from "socket.io-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { createJobClient, type JobClient } from "../../src/client.js";
import type { JobClientError } from "../../src/errors.js";
import { startServer, waitFor, type TidingsServer } from "./harness.js";

const SECRET = "integration-secret-0123456789abcdef";
const SETTINGS = { TIDINGS_AUTH_FAILURE_BURST: "2", TIDINGS_AUTH_FAILURE_RATE: "0.5" };
const THROTTLED = 'tidings_auth_throttled_total{transport="socketio"}';

let server: TidingsServer | undefined;
let client: JobClient | undefined;

beforeEach(async () => {
  server = await startServer({ secret: SECRET, settings: SETTINGS });
});

afterEach(async () => {
  client?.destroy();
  client = undefined;
  await server?.stop();
});

describe("a connect refused rate_limited", () => {
  it.each([
    ["waits out retry_after, then connects with the right token: refused rate_limited once", false],
    ["(control: a client blind to retry_after is refused rate_limited again before it connects)", true],
  ])("%s", async (_name, blind) => {
    const running = server as TidingsServer;
    let token = "a-wrong-token";
    const refusals: string[] = [];
    const errors: JobClientError[] = [];
    client = createJobClient({
      url: running.url,
      getToken: () => token,
      reconnectionDelay: 100,
      reconnectionDelayMax: 1_000,
      transport: (url, options) => {
        const socket = io(url, options);
        // Heard before the client's own listener: what the server said, and for the control arm
        // the refusal without its retry_after, as the client before this change read it.
        socket.on("connect_error", (error: Error & { data?: unknown }) => {
          refusals.push(error.message);
          if (blind) delete error.data;
        });
        return socket;
      },
    });
    client.on("error", (error) => errors.push(error));
    client.connect();

    await waitFor("the address's budget to be spent", () => refusals.includes("rate_limited"));
    const waiting = client.store.getState().connection;
    token = await running.token("alice");
    await waitFor("a connection with the right token", () => client?.status === "connected", 30_000);

    expect(refusals.slice(0, 3)).toEqual(["unauthorized", "unauthorized", "rate_limited"]);
    const limited = refusals.filter((message) => message === "rate_limited").length;
    expect(await running.metric(THROTTLED)).toBe(limited);
    expect(limited > 1).toBe(blind);
    expect(errors.map((error) => error.code)).toEqual(refusals);
    expect(waiting).toMatchObject({
      status: "reconnecting",
      error: {
        code: "rate_limited",
        message: `The server refuses connections from this address for now (too many wrong credentials from it); trying again ${blind ? "shortly" : "in 2 s"}.`,
      },
    });
    expect(client.store.getState().connection).toEqual({ status: "connected", error: null, attempts: 0, transport: "socket.io" });
  });
});

/** Two wrong credentials over HTTP: the address's budget is spent, for 2 s. */
async function spendBudget(running: TidingsServer): Promise<void> {
  for (let i = 0; i < 2; i += 1) {
    const response = await fetch(`${running.url}/api/jobs`, { headers: { Authorization: "Bearer a-wrong-token" } });
    expect(response.status).toBe(401);
  }
}

describe("the SSE fallback's stream answered 429", () => {
  it.each([
    ["opens it again after Retry-After, once, and says why it waits", false],
    ["(control: a client blind to Retry-After opens it again and again before it is let in)", true],
  ])("%s", async (_name, blind) => {
    const running = server as TidingsServer;
    const token = await running.token("alice");
    const opened: string[] = [];
    client = createJobClient({
      url: running.url,
      getToken: () => token,
      path: "/no-socket-io-here", // Socket.IO cannot connect: the client goes over to the streams
      transports: ["polling"],
      reconnectionDelay: 100,
      reconnectionDelayMax: 1_000,
      fallback: "sse",
      eventSource: (url) => {
        opened.push(new URL(url).pathname);
        return new EventSource(url);
      },
      // The control arm's fetch drops Retry-After, as the client before this change ignored it.
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (!blind) return response;
        const headers = new Headers(response.headers);
        headers.delete("Retry-After");
        return new Response(response.body, { status: response.status, headers });
      },
    });
    client.connect();
    await waitFor("the client over the streams", () => client?.transport === "sse" && client.status === "connected");

    await spendBudget(running);
    client.followUser();
    await waitFor("the refused stream", () => client?.store.getState().connection.error?.code === "rate_limited" || opened.length > 1);
    const waiting = client.store.getState().connection;
    await waitFor("the user's stream open", () => client?.status === "connected", 30_000);

    expect(opened.length > 2).toBe(blind);
    expect(opened.every((path) => path === "/api/stream")).toBe(true);
    expect(waiting).toMatchObject({
      status: "reconnecting",
      error: {
        code: "rate_limited",
        message: `The server refuses connections from this address for now (too many wrong credentials from it); trying again ${blind ? "shortly" : "in 2 s"}.`,
      },
    });
    expect(client.store.getState().connection).toMatchObject({ status: "connected", error: null, transport: "sse" });
  });
});
