/** The committed browser bundle is exactly what the source builds to, and it works. */
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

import { describe, expect, it } from "vitest";

import { buildBundle, bundlePath } from "../../scripts/bundle.mjs";

describe("server/web/static/tidings-client.js", () => {
  it("matches a fresh build of the source (run `npm run bundle` after changing src/)", async () => {
    const built = await buildBundle();
    const committed = await readFile(bundlePath, "utf8");
    expect(committed.length).toBe(built.length);
    expect(committed === built).toBe(true);
  });

  it("builds the same bytes twice", async () => {
    expect(await buildBundle()).toBe(await buildBundle());
  });

  it("exports the core and the store, and they work without a bundler", async () => {
    const bundle = await import(/* @vite-ignore */ pathToFileURL(bundlePath).href);
    expect(Object.keys(bundle).sort()).toEqual([
      "DEFAULT_CONCURRENCY",
      "JOB_ID_PATTERN",
      "JobClientError",
      "TERMINAL_STATUSES",
      "aggregate",
      "createJobClient",
      "createJobStore",
      "createUploader",
      "emptyEntry",
      "formatAgo",
      "formatEta",
      "formatPercent",
      "isJobClientError",
      "isTerminal",
    ]);
    const client = bundle.createJobClient({ url: "http://127.0.0.1:9" });
    expect(client.status).toBe("disconnected");
    client.store.getState().addStep("a", { step: "upload", progress: 40 });
    expect(client.store.getState().getAggregate()).toMatchObject({ total: 1, percentage: 40 });
    client.destroy();
  });
});
