/**
 * A development server on another origin than tidings, in a real browser (Debian's Chromium through
 * playwright-core; never a downloaded one): when the server's TIDINGS_CORS_ORIGINS leaves that
 * origin out, the client's error names the setting rather than passing on the browser's bare
 * "xhr poll error"; when it lists the origin, the client simply connects (the control).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";

import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { bundlePath } from "../../scripts/bundle.mjs";
import { startServer, type TidingsServer } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";
const PAGE = `<!doctype html><meta charset="utf-8"><title>dev</title>
<script type="module">import * as tidings from "/tidings-client.js"; window.tidings = tidings;</script>`;

describe("a page on another origin, in Chromium", () => {
  let browser: Browser;
  let refusing: TidingsServer;
  let accepting: TidingsServer;
  /** The development server: the page and the bundle, on an origin of its own. */
  let dev: Server;
  let devOrigin: string;

  beforeAll(async () => {
    // Missing Chromium fails the tests rather than skipping them: CI must run them.
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    const bundle = await readFile(bundlePath, "utf8");
    dev = createServer((request, response) => {
      const script = request.url === "/tidings-client.js";
      response.setHeader("Content-Type", script ? "text/javascript" : "text/html");
      response.end(script ? bundle : PAGE);
    });
    await new Promise<void>((listening) => dev.listen(0, "127.0.0.1", listening));
    const address = dev.address();
    devOrigin = `http://localhost:${typeof address === "object" && address !== null ? address.port : 0}`;
    [refusing, accepting, browser] = await Promise.all([
      startServer(),
      startServer({ corsOrigins: devOrigin }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] }),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([refusing?.stop(), accepting?.stop()]);
    await new Promise((closed) => dev?.close(closed));
  });

  async function devPage(): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${devOrigin}/`);
    await page.waitForFunction(() => "tidings" in window);
    return page;
  }

  /** Watches a job from the page; resolves with the first error, or "connected". */
  function firstOutcome(page: Page, url: string): Promise<string> {
    return page.evaluate(
      (serverUrl) =>
        new Promise<string>((resolve) => {
          const { createJobClient } = (window as unknown as { tidings: typeof import("../../src/index.js") }).tidings;
          const client = createJobClient({ url: serverUrl, userId: "dev-user" });
          client.on("error", (error) => resolve(`${error.code}: ${error.message}`));
          client.on("status", (status) => {
            if (status === "connected") resolve("connected");
          });
          client.subscribe("job-1");
        }),
      url,
    );
  }

  it("names TIDINGS_CORS_ORIGINS when the server does not accept the page's origin", async () => {
    const page = await devPage();
    const outcome = await firstOutcome(page, refusing.url);
    expect(outcome).toMatch(/^connection_failed: The server at http:\/\/127\.0\.0\.1:\d+ does not accept pages from /);
    expect(outcome).toContain(`add ${devOrigin} to TIDINGS_CORS_ORIGINS`);
    expect(outcome).toMatch(/the browser said "(xhr poll|websocket) error"/);
    await page.close();
  });

  it("(control: with the origin in TIDINGS_CORS_ORIGINS the same page connects)", async () => {
    const page = await devPage();
    expect(await firstOutcome(page, accepting.url)).toBe("connected");
    await page.close();
  });
});
