/**
 * Real processes for the integration tests: a tidings server (`python -m tidings serve`) and, for
 * the Redis store, a private `redis-server` on a free port. Each is stopped by its own pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { SignJWT } from "jose";

import type { Event, Snapshot } from "../../src/protocol.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export function pythonExecutable(): string {
  if (process.env["PYTHON"]) return process.env["PYTHON"];
  const venv = resolve(repoRoot, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Polls until `check` is truthy; throws after `timeout` ms with `what` and the last value. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeout = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let last: T | undefined;
  for (;;) {
    try {
      last = await check();
      if (last) return last as NonNullable<T>;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

class Process {
  private output = "";
  private exited: Promise<number | null>;

  constructor(readonly name: string, readonly child: ChildProcess) {
    child.stdout?.on("data", (chunk: Buffer) => this.append(chunk));
    child.stderr?.on("data", (chunk: Buffer) => this.append(chunk));
    this.exited = new Promise((done) => child.on("exit", (code) => done(code)));
  }

  private append(chunk: Buffer): void {
    this.output = (this.output + chunk.toString()).slice(-20_000);
  }

  get log(): string {
    return this.output;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM by pid, then SIGKILL if it has not gone within 10 s. */
  async stop(): Promise<void> {
    if (!this.alive || this.child.pid === undefined) return;
    process.kill(this.child.pid, "SIGTERM");
    const timer = setTimeout(() => {
      if (this.alive && this.child.pid !== undefined) process.kill(this.child.pid, "SIGKILL");
    }, 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// ---- redis -------------------------------------------------------------------------------------

export interface Redis {
  url: string;
  port: number;
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function respCommand(port: number, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    socket.setTimeout(5_000, () => socket.destroy(new Error("redis did not answer")));
    socket.on("error", fail);
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.endsWith("\r\n")) {
        socket.end();
        done(reply.trim());
      }
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
  });
}

export async function startRedis(): Promise<Redis> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const proc = new Process("redis", child);
  await waitFor("redis to answer PING", async () => proc.alive && (await respCommand(port, ["PING"])) === "+PONG", 15_000).catch(
    async (error: unknown) => {
      await proc.stop();
      throw new Error(`${String(error)}\n${proc.log}`);
    },
  );
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    command: (...args) => respCommand(port, args),
    stop: () => proc.stop(),
  };
}

// ---- tidings -----------------------------------------------------------------------------------

export interface ServerOptions {
  /** Tokens required when set; open mode when not. */
  secret?: string;
  redisUrl?: string;
  /** TIDINGS_CORS_ORIGINS: the browser origins besides the server's own it accepts. */
  corsOrigins?: string;
  /** Further settings, e.g. `{ TIDINGS_AUTH_FAILURE_BURST: "2" }`. */
  settings?: Record<string, string>;
}

export interface TidingsServer {
  url: string;
  apiKey: string;
  secret: string | undefined;
  log(): string;
  stop(): Promise<void>;
  /** `POST /api/jobs/{id}/progress` with the API key. */
  emit(jobId: string, body: Record<string, unknown>): Promise<Event | null>;
  /** `GET /api/jobs/{id}` with a token. */
  snapshot(jobId: string, token?: string): Promise<Snapshot>;
  /** A JWT signed with the server's secret (HS256: sub, exp, jobs). */
  token(user: string, options?: { jobs?: string[]; ttlSeconds?: number }): Promise<string>;
  /** A counter of `GET /metrics`, e.g. `tidings_auth_throttled_total{transport="socketio"}`. */
  metric(sample: string): Promise<number>;
}

export async function startServer(options: ServerOptions = {}): Promise<TidingsServer> {
  const port = await freePort();
  const apiKey = "test-api-key";
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("TIDINGS_") && key !== "GROQ_API_KEY") env[key] = value;
  }
  env["TIDINGS_API_KEY"] = apiKey;
  if (options.secret !== undefined) env["TIDINGS_SECRET"] = options.secret;
  if (options.redisUrl !== undefined) env["TIDINGS_REDIS_URL"] = options.redisUrl;
  if (options.corsOrigins !== undefined) env["TIDINGS_CORS_ORIGINS"] = options.corsOrigins;
  Object.assign(env, options.settings);
  const child = spawn(pythonExecutable(), ["-m", "tidings", "serve", "--host", "127.0.0.1", "--port", String(port)], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const proc = new Process("tidings", child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!proc.alive) {
      throw new Error(`the tidings server exited at start (code ${proc.child.exitCode}):\n${proc.log}`);
    }
    const ok = await fetch(`${url}/healthz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`the tidings server did not answer GET /healthz with 200 in 30 s:\n${proc.log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const secretKey = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret);
  return {
    url,
    apiKey,
    secret: options.secret,
    log: () => proc.log,
    stop: () => proc.stop(),
    async emit(jobId, body) {
      const response = await fetch(`${url}/api/jobs/${encodeURIComponent(jobId)}/progress`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      if (response.status !== 202) throw new Error(`POST progress ${jobId} → ${response.status} ${text}`);
      return (JSON.parse(text) as { event: Event | null }).event;
    },
    async snapshot(jobId, token) {
      const response = await fetch(`${url}/api/jobs/${encodeURIComponent(jobId)}`, {
        headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`GET job ${jobId} → ${response.status} ${text}`);
      return JSON.parse(text) as Snapshot;
    },
    async metric(sample) {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split("\n").find((candidate) => candidate.startsWith(`${sample} `));
      if (line === undefined) throw new Error(`GET /metrics has no ${sample}`);
      return Number(line.slice(sample.length + 1));
    },
    async token(user, { jobs, ttlSeconds = 3600 } = {}) {
      if (secretKey === undefined) throw new Error("an open server takes no tokens");
      const claims = jobs === undefined ? {} : { jobs };
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(user)
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(secretKey);
    },
  };
}

// ---- a worker ----------------------------------------------------------------------------------

/** Emits a worker's run of a job and returns the seqs the server gave the events. */
export async function run(server: TidingsServer, jobId: string, steps: [string, number][], owner?: string): Promise<string[]> {
  const seqs: string[] = [];
  for (const [step, progress] of steps) {
    const event = await server.emit(jobId, {
      step,
      progress,
      context: { filename: `${jobId}.csv` },
      extra: { filename: `${jobId}.csv` },
      ...(owner === undefined ? {} : { owner }),
    });
    if (event !== null) seqs.push(`${jobId}@${event.seq}`);
  }
  return seqs;
}

export async function finish(server: TidingsServer, jobId: string): Promise<string> {
  const event = await server.emit(jobId, { step: "complete", status: "done", result: { rows: 3 } });
  if (event === null) throw new Error("complete produced no event");
  return `${jobId}@${event.seq}`;
}

export const STEPS: [string, number][] = [
  ["initializing_streaming", 5],
  ["duplicate_check", 15],
  ["duplicate_check", 20],
  ["field_detection", 40],
  ["field_detection", 55],
];
