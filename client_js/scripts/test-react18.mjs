// The React tests on React 18: installs react@18 and react-dom@18 into .react18/ (once, from the
// npm registry) and runs vitest with vitest.react18.config.ts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, ".react18");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(join(target, "node_modules", "react-dom", "package.json"))) {
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, "package.json"), '{ "name": "react18-under-test", "private": true }\n');
  run(npm, ["install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error", "react@18", "react-dom@18"], target);
}
run(process.execPath, [join(root, "node_modules", "vitest", "vitest.mjs"), "run", "--config", "vitest.react18.config.ts"], root);
