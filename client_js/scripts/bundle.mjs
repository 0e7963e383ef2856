// The browser bundle: the core and the store with socket.io-client and zustand/vanilla inside,
// one ES module for pages without a build step (the server's live page loads it from
// /static/tidings-client.js). The built file is committed, so `pip install` needs no npm;
// test/unit/bundle.test.ts rebuilds it in memory and fails when the committed file has drifted.
//
//   npm run bundle          write ../server/web/static/tidings-client.js
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const bundlePath = resolve(root, "..", "server", "web", "static", "tidings-client.js");

export async function buildBundle() {
  const { version } = JSON.parse(await readFile(resolve(root, "package.json"), "utf8"));
  const result = await build({
    absWorkingDir: root,
    entryPoints: ["src/index.ts"],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2020",
    minify: true,
    sourcemap: false,
    charset: "utf8",
    legalComments: "eof",
    define: { "process.env.NODE_ENV": '"production"' },
    banner: {
      js: `/* tidings-client ${version}: the core and store of client_js/, built by \`npm run bundle\`. Do not edit. */`,
    },
    logLevel: "silent",
  });
  const [file] = result.outputFiles;
  if (file === undefined) throw new Error("esbuild produced no output");
  return file.text;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = await buildBundle();
  await mkdir(dirname(bundlePath), { recursive: true });
  await writeFile(bundlePath, text);
  console.log(`wrote ${bundlePath} (${text.length} bytes)`);
}
