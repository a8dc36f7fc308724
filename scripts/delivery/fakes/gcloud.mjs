#!/usr/bin/env node
// A stand-in for `gcloud storage ls` and `gcloud compute instances describe` (below) and `gcloud compute start-iap-tunnel <instance> <port> --local-host-port=localhost:<p> ...`:
// listens on the local port until killed, like the real tunnel, unless the instance is listed in
// FAKE_GCLOUD_DEAD (comma-separated), which exits at once as an unreachable server would.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

const args = process.argv.slice(2);
if (process.env.FAKE_LOG) appendFileSync(process.env.FAKE_LOG, `${JSON.stringify(args)}\n`);
// `gcloud storage ls <url>`: the objects in FAKE_GCLOUD_OBJECTS (comma-separated), from the
// FAKE_GCLOUD_OBJECTS_FROM-th listing on (default the first; calls counted in FAKE_GCLOUD_CALLS).
if (args[0] === "storage" && args[1] === "ls") {
  let call = 1;
  if (process.env.FAKE_GCLOUD_CALLS) {
    call = (existsSync(process.env.FAKE_GCLOUD_CALLS) ? Number(readFileSync(process.env.FAKE_GCLOUD_CALLS, "utf8")) : 0) + 1;
    writeFileSync(process.env.FAKE_GCLOUD_CALLS, String(call));
  }
  const objects = (process.env.FAKE_GCLOUD_OBJECTS ?? "").split(",").filter(Boolean);
  if (objects.length === 0 || call < Number(process.env.FAKE_GCLOUD_OBJECTS_FROM ?? 1)) {
    console.error(`ERROR: (gcloud.storage.ls) One or more URLs matched no objects.`);
    process.exit(1);
  }
  for (const o of objects) console.log(`${args[2]}${o}`);
  process.exit(0);
}
// `gcloud compute instances describe <instance> --zone <z> --project <p> --format=value(status)`: the
// instance's status from FAKE_GCLOUD_STATUS ("<instance>=<STATUS>,...", default RUNNING); the status
// DENIED answers as a caller without compute.instances.get does, MISSING as for a deleted instance.
if (args[0] === "compute" && args[1] === "instances" && args[2] === "describe") {
  const instance = args[3];
  const zone = args[args.indexOf("--zone") + 1];
  const project = args[args.indexOf("--project") + 1];
  if (args.indexOf("--zone") < 0 || args.indexOf("--project") < 0 || !args.includes("--format=value(status)")) process.exit(2);
  const statuses = Object.fromEntries((process.env.FAKE_GCLOUD_STATUS ?? "").split(",").filter(Boolean).map((e) => e.split("=")));
  const status = statuses[instance] ?? "RUNNING";
  if (status === "DENIED") {
    console.error(`ERROR: (gcloud.compute.instances.describe) Could not fetch resource:\n - Required 'compute.instances.get' permission for 'projects/${project}/zones/${zone}/instances/${instance}'`);
    process.exit(1);
  }
  if (status === "MISSING") {
    console.error(`ERROR: (gcloud.compute.instances.describe) Could not fetch resource:\n - The resource 'projects/${project}/zones/${zone}/instances/${instance}' was not found`);
    process.exit(1);
  }
  console.log(status);
  process.exit(0);
}
if (args[0] !== "compute" || args[1] !== "start-iap-tunnel") process.exit(2);
const instance = args[2];
if ((process.env.FAKE_GCLOUD_DEAD ?? "").split(",").includes(instance)) {
  console.error(`ERROR: failed to connect to backend ${instance}`);
  process.exit(1);
}
const port = Number(/--local-host-port=localhost:(\d+)/.exec(args.join(" "))[1]);
createServer((socket) => socket.end()).listen(port, "127.0.0.1");
