/**
 * The hook and component tests once more, on React 18 (`npm run test:react18` installs it into
 * .react18/ first). React 18 and its react-dom sit side by side there, so react-dom's own
 * `require("react")` finds 18 too; the aliases point everything else at them.
 */
import { resolve } from "node:path";

import { defineConfig } from "vitest/config";

const modules = resolve(import.meta.dirname, ".react18", "node_modules");

export default defineConfig({
  resolve: {
    alias: [
      // The ESM build, so that its imports of react and react-dom go through the aliases below.
      {
        find: /^@testing-library\/react$/,
        replacement: resolve(import.meta.dirname, "node_modules/@testing-library/react/dist/@testing-library/react.esm.js"),
      },
      { find: /^react$/, replacement: resolve(modules, "react/index.js") },
      { find: /^react\/(.*)$/, replacement: `${modules}/react/$1` },
      { find: /^react-dom$/, replacement: resolve(modules, "react-dom/index.js") },
      { find: /^react-dom\/(.*)$/, replacement: `${modules}/react-dom/$1` },
    ],
  },
  test: {
    name: "react18",
    environment: "jsdom",
    include: ["test/react/**/*.test.tsx"],
    env: { EXPECT_REACT_MAJOR: "18" },
    server: { deps: { inline: [/@testing-library/, /zustand/] } },
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
