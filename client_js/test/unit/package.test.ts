/** The package as a consumer gets it: `exports`, ESM output and declarations for `.` and `./react`. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { afterAll, describe, expect, it } from "vitest";

import * as core from "../../src/index.js";
import * as react from "../../src/react/index.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const run = promisify(execFile);
let outDir: string | undefined;

afterAll(async () => {
  if (outDir !== undefined) await rm(outDir, { recursive: true, force: true });
});

describe("package.json", () => {
  it("exports `.` and `./react` as ESM with types, free of side effects", async () => {
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
    expect(pkg.type).toBe("module");
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", import: "./dist/index.js" });
    expect(pkg.exports["./react"]).toEqual({ types: "./dist/react/index.d.ts", import: "./dist/react/index.js" });
    expect(pkg.peerDependencies.react).toBe(">=18");
    expect(pkg.dependencies).not.toHaveProperty("react");
  });

  it("builds to modules that export what the sources do", async () => {
    // Inside the package, so the built files resolve socket.io-client and zustand as a user's would.
    outDir = await mkdtemp(join(root, ".test-dist-"));
    await run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json", "--outDir", outDir], {
      cwd: root,
    });
    for (const file of ["index.js", "index.d.ts", "react/index.js", "react/index.d.ts"]) {
      expect(existsSync(join(outDir, file)), file).toBe(true);
    }
    const builtCore = await import(/* @vite-ignore */ pathToFileURL(join(outDir, "index.js")).href);
    const builtReact = await import(/* @vite-ignore */ pathToFileURL(join(outDir, "react", "index.js")).href);
    expect(Object.keys(builtCore).sort()).toEqual(Object.keys(core).sort());
    expect(Object.keys(builtReact).sort()).toEqual(Object.keys(react).sort());
    // The core does not pull React in.
    const coreText = await readFile(join(outDir, "client.js"), "utf8");
    expect(coreText).not.toMatch(/from "react"/);
    expect(await readFile(join(outDir, "store.js"), "utf8")).toMatch(/from "zustand\/vanilla"/);
  }, 60_000);
});
