#!/usr/bin/env node
// A stand-in for the docker CLI of image-node-version.sh: `load -i <tar>` names the image the tarball
// holds (its first line, written by the test); `run ...` prints FAKE_NODE_VERSION as that image's
// `node --version`, or fails like a missing binary with FAKE_DOCKER_RUN_FAIL=1. Every call is appended
// to FAKE_LOG as one JSON line.
import { appendFileSync, readFileSync } from "node:fs";

const args = process.argv.slice(2);
if (process.env.FAKE_LOG) appendFileSync(process.env.FAKE_LOG, `${JSON.stringify(args)}\n`);
if (args[0] === "load" && args[1] === "-i") {
  const image = readFileSync(args[2], "utf8").split("\n")[0];
  console.log(`Loaded image: ${image}`);
  process.exit(0);
}
if (args[0] === "run") {
  if (process.env.FAKE_DOCKER_RUN_FAIL === "1") {
    console.error("docker: Error response from daemon: exec: \"/nodejs/bin/node\": stat /nodejs/bin/node: no such file or directory");
    process.exit(127);
  }
  console.log(process.env.FAKE_NODE_VERSION ?? "");
  process.exit(0);
}
process.exit(2);
