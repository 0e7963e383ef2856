/**
 * The package as a consumer gets it: `exports`, ESM output and declarations for `.` and `./react`,
 * and the tarball `npm pack` makes (what `npm install --install-links <repo>/client_js` installs).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { afterAll, describe, expect, it } from "vitest";

import * as core from "../../src/index.js";
import * as compat from "../../src/compat/index.js";
import * as compatReact from "../../src/compat/react.js";
import * as react from "../../src/react/index.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const run = promisify(execFile);
let outDir: string | undefined;
let packDir: string | undefined;

afterAll(async () => {
  for (const dir of [outDir, packDir]) if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("package.json", () => {
  it("exports `.`, `./react`, `./compat` and `./compat/react` as ESM with types, free of side effects", async () => {
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
    expect(pkg.type).toBe("module");
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", import: "./dist/index.js" });
    expect(pkg.exports["./react"]).toEqual({ types: "./dist/react/index.d.ts", import: "./dist/react/index.js" });
    expect(pkg.exports["./compat"]).toEqual({ types: "./dist/compat/index.d.ts", import: "./dist/compat/index.js" });
    expect(pkg.exports["./compat/react"]).toEqual({ types: "./dist/compat/react.d.ts", import: "./dist/compat/react.js" });
    expect(pkg.peerDependencies.react).toBe(">=18");
    expect(pkg.dependencies).not.toHaveProperty("react");
  });

  it("builds to modules that export what the sources do", async () => {
    // Inside the package, so the built files resolve socket.io-client and zustand as a user's would.
    outDir = await mkdtemp(join(root, ".test-dist-"));
    await run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json", "--outDir", outDir], {
      cwd: root,
    });
    for (const file of ["index.js", "index.d.ts", "react/index.js", "react/index.d.ts", "compat/index.js", "compat/index.d.ts", "compat/react.js", "compat/react.d.ts"]) {
      expect(existsSync(join(outDir, file)), file).toBe(true);
    }
    const builtCore = await import(/* @vite-ignore */ pathToFileURL(join(outDir, "index.js")).href);
    const builtReact = await import(/* @vite-ignore */ pathToFileURL(join(outDir, "react", "index.js")).href);
    expect(Object.keys(builtCore).sort()).toEqual(Object.keys(core).sort());
    expect(Object.keys(builtReact).sort()).toEqual(Object.keys(react).sort());
    const builtCompat = await import(/* @vite-ignore */ pathToFileURL(join(outDir, "compat", "index.js")).href);
    expect(Object.keys(builtCompat).sort()).toEqual(Object.keys(compat).sort());
    // The framework-free compat module does not pull React in either; its React half does.
    expect(await readFile(join(outDir, "compat", "index.js"), "utf8")).not.toMatch(/from "react"/);
    expect(Object.keys(compatReact)).toEqual(expect.arrayContaining(["useFileStatusStore", "UploadProgressModal", "liveSystem"]));
    // The core does not pull React in.
    const coreText = await readFile(join(outDir, "client.js"), "utf8");
    expect(coreText).not.toMatch(/from "react"/);
    expect(await readFile(join(outDir, "store.js"), "utf8")).toMatch(/from "zustand\/vanilla"/);
  }, 60_000);

  it("packs the contract from docs/protocol.md and a build that works", async () => {
    // Inside the package again, so the unpacked build resolves its dependencies.
    packDir = await mkdtemp(join(root, ".test-pack-"));
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", packDir], { cwd: root });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    const paths = packed.files.map((file) => file.path);
    expect(paths).toEqual(
      expect.arrayContaining(["protocol.md", "README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/react/index.js"]),
    );
    expect(paths.filter((path) => /^(test|node_modules|scripts)\//.test(path))).toEqual([]);
    expect(existsSync(join(root, "protocol.md")), "postpack leaves no copy behind").toBe(false);

    await run("tar", ["-xzf", join(packDir, packed.filename), "-C", packDir]);
    const unpacked = join(packDir, "package");
    expect(await readFile(join(unpacked, "protocol.md"), "utf8")).toBe(await readFile(join(root, "..", "docs", "protocol.md"), "utf8"));
    const built = await import(/* @vite-ignore */ pathToFileURL(join(unpacked, "dist", "index.js")).href);
    expect(Object.keys(built).sort()).toEqual(Object.keys(core).sort());
    const client = built.createJobClient({ url: "http://tidings.test" });
    expect(client.status).toBe("disconnected");
    client.destroy();
  }, 120_000);
});
