// `prepare`: builds dist/, so that the package installs from a checkout of the repository
// (`npm install --install-links <repo>/client_js`) as it would from a registry. npm runs it after
// `npm install` here, before `npm pack`, and in the folder it installs from, where the build tools
// may not be installed yet: then they are first installed from the lockfile.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const npm = (...args) => execFileSync("npm", args, { cwd: root, stdio: "inherit" });

if (!existsSync(resolve(root, "node_modules", "typescript"))) {
  npm("ci", "--ignore-scripts", "--no-audit", "--no-fund", "--include=dev");
}
npm("run", "build");
