#!/usr/bin/env node
// The `gcloud compute start-iap-tunnel <instance> <port> --local-host-port=localhost:<p> ...` of
// gcloud.sh (which has logged the call): listens on the local port until killed, like the real tunnel,
// unless the instance is listed in FAKE_GCLOUD_DEAD (comma-separated), which exits at once as an
// unreachable server would.
import { createServer } from "node:net";

const args = process.argv.slice(2);
const instance = args[2];
if ((process.env.FAKE_GCLOUD_DEAD ?? "").split(",").includes(instance)) {
  console.error(`ERROR: failed to connect to backend ${instance}`);
  process.exit(1);
}
const port = Number(/--local-host-port=localhost:(\d+)/.exec(args.join(" "))[1]);
createServer((socket) => socket.end()).listen(port, "127.0.0.1");
