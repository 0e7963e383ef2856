// A bare socket.io-client (the one the page bundles) for tests/server/test_shutdown.py: connects
// to the URL in argv[2] with the default transports (polling, then the websocket upgrade), says
// "connected <transport>" once upgraded, and "disconnect <epoch ms> <reason>" when the server
// drops it, then exits. Never reconnects: the test measures when the first disconnect arrives.

import { createRequire } from "node:module";

const require = createRequire(new URL("../../client_js/package.json", import.meta.url));
const { io } = require("socket.io-client");

const socket = io(process.argv[2], { reconnection: false });
socket.on("connect", () => {
  const engine = socket.io.engine;
  const ready = () => console.log(`connected ${engine.transport.name}`);
  if (engine.transport.name === "websocket") ready();
  else engine.once("upgrade", ready);
});
socket.on("disconnect", (reason) => {
  console.log(`disconnect ${Date.now()} ${reason}`);
  process.exit(0);
});
setTimeout(() => {
  console.log("FAIL: no disconnect within 30 s");
  process.exit(1);
}, 30_000);
