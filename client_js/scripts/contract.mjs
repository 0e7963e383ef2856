// Ships the contract in the package: copies the repository's docs/protocol.md to ./protocol.md
// before `npm pack` and `npm publish` (prepack), and removes the copy after (postpack). Outside
// the repository (no docs/protocol.md above) there is nothing to copy and the package goes without.
//
//   node scripts/contract.mjs          copy it in
//   node scripts/contract.mjs --clean  take the copy out
import { copyFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const source = resolve(root, "..", "docs", "protocol.md");
const copy = resolve(root, "protocol.md");

if (process.argv.includes("--clean")) {
  await rm(copy, { force: true });
} else if (existsSync(source)) {
  await copyFile(source, copy);
}
