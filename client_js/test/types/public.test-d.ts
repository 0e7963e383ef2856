/** The public types, checked by the compiler (vitest --typecheck). */
import type { Socket } from "socket.io-client";
import { describe, expectTypeOf, it } from "vitest";

import {
  createJobClient,
  JobClientError,
  type Ack,
  type ClientToServerEvents,
  type ConnectionStatus,
  type Event,
  type EventSourceLike,
  type JobClient,
  type JobClientErrorCode,
  type JobClientOptions,
  type JobStore,
  type JobEntry,
  type JobEvent,
  type JobStatus,
  type ListedJob,
  type ServerToClientEvents,
  type Snapshot,
  type StepEntry,
  type StepStatus,
  type SubscribeResult,
  type TransportKind,
  type TransportSocket,
  createJobStore,
} from "../../src/index.js";
import { useConnectionStatus, useFileStatusSocket, useJob, useJobs } from "../../src/react/index.js";

describe("protocol types", () => {
  it("spells the statuses as PROTOCOL.md does", () => {
    expectTypeOf<JobStatus>().toEqualTypeOf<"queued" | "processing" | "done" | "error" | "cancelled">();
    expectTypeOf<StepStatus>().toEqualTypeOf<"complete" | "in_progress" | "error">();
    expectTypeOf<StepEntry["status"]>().toEqualTypeOf<StepStatus>();
  });

  it("has every field of an Event and a Snapshot", () => {
    expectTypeOf<keyof Event>().toEqualTypeOf<
      | "job_id"
      | "epoch"
      | "seq"
      | "status"
      | "step"
      | "message"
      | "progress"
      | "eta_seconds"
      | "timestamp"
      | "extra"
      | "result"
      | "error"
    >();
    expectTypeOf<keyof Snapshot>().toEqualTypeOf<
      | Exclude<keyof Event, "timestamp">
      | "owner"
      | "created_at"
      | "updated_at"
      | "cancel_requested"
      | "steps"
    >();
    expectTypeOf<Event["progress"]>().toEqualTypeOf<number | null>();
    expectTypeOf<Event["error"]>().toEqualTypeOf<{ code: string; message: string } | null>();
    expectTypeOf<Snapshot["owner"]>().toEqualTypeOf<string | null>();
    expectTypeOf<JobEvent>().toEqualTypeOf<Event>();
  });

  it("types the Socket.IO event maps", () => {
    expectTypeOf<Parameters<ServerToClientEvents["job_update"]>[0]>().toEqualTypeOf<Event>();
    expectTypeOf<Parameters<ServerToClientEvents["job_batch"]>[0]>().toEqualTypeOf<{ events: Event[] }>();
    expectTypeOf<Parameters<ClientToServerEvents["subscribe"]>[0]>().toEqualTypeOf<{
      job_id: string;
      epoch?: string;
      since?: number;
    }>();
    expectTypeOf<Parameters<Parameters<ClientToServerEvents["subscribe"]>[1]>[0]>().toEqualTypeOf<
      Ack<SubscribeResult>
    >();
    // socket.io-client's own Socket, typed with our maps, is a transport the core accepts.
    expectTypeOf<Socket<ServerToClientEvents, ClientToServerEvents>>().toExtend<TransportSocket>();
  });

  it("rejects a wrong event name at compile time", () => {
    const socket = {} as Socket<ServerToClientEvents, ClientToServerEvents>;
    // @ts-expect-error: not an event the server sends
    socket.on("job_progress", () => undefined);
    // @ts-expect-error: subscribe takes a job_id
    socket.emit("subscribe", { id: "x" }, () => undefined);
  });
});

describe("client types", () => {
  it("returns typed promises and a typed error", () => {
    const client = createJobClient();
    expectTypeOf(client).toEqualTypeOf<JobClient>();
    expectTypeOf(client.subscribe("a")).toEqualTypeOf<() => void>();
    expectTypeOf(client.cancel("a")).resolves.toEqualTypeOf<Snapshot>();
    expectTypeOf(client.listJobs()).resolves.toEqualTypeOf<ListedJob[]>();
    expectTypeOf(client.status).toEqualTypeOf<ConnectionStatus>();
    expectTypeOf<JobClientError["code"]>().toEqualTypeOf<JobClientErrorCode>();
    expectTypeOf<"forbidden">().toExtend<JobClientErrorCode>();
    client.on("event", (event) => expectTypeOf(event).toEqualTypeOf<Event>());
    client.on("error", (error) => expectTypeOf(error).toEqualTypeOf<JobClientError>());
    // @ts-expect-error: no such client event
    client.on("job_update", () => undefined);
  });

  it("types the SSE fallback and a store made with snapshots", () => {
    const client = createJobClient({ fallback: "sse", fallbackAttempts: 2, fallbackTimeout: 5_000, forbiddenGrace: 0 });
    expectTypeOf(client.transport).toEqualTypeOf<TransportKind>();
    expectTypeOf<TransportKind>().toEqualTypeOf<"socket.io" | "sse">();
    expectTypeOf(client.store.getState().connection.transport).toEqualTypeOf<TransportKind>();
    expectTypeOf<ReturnType<NonNullable<JobClientOptions["eventSource"]>>>().toEqualTypeOf<EventSourceLike>();
    // A browser's EventSource is one the fallback can use.
    expectTypeOf<EventSource>().toExtend<EventSourceLike>();
    // @ts-expect-error: the only fallback is SSE
    createJobClient({ fallback: "polling" });
    expectTypeOf(createJobStore({ snapshots: [] as Snapshot[] })).toEqualTypeOf<JobStore>();
  });

  it("types the hooks", () => {
    // Type-level only: the type checker does not run these calls.
    expectTypeOf(useJob("a")).toEqualTypeOf<JobEntry | undefined>();
    expectTypeOf(useJob("a", (entry) => entry?.progress ?? null)).toEqualTypeOf<number | null>();
    expectTypeOf(useJobs).returns.toHaveProperty("aggregate");
    expectTypeOf(useConnectionStatus).returns.toEqualTypeOf<ConnectionStatus>();
    expectTypeOf(useFileStatusSocket).parameter(0).toEqualTypeOf<string | null | undefined>();
    expectTypeOf(useFileStatusSocket).returns.toHaveProperty("error").toEqualTypeOf<{ code: JobClientErrorCode; message: string } | null>();
  });
});
