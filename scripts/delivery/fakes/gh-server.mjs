// One long-lived process answering every call of the gh.sh stand-in, instead of a node start-up
// (tens of milliseconds) per call: the CI scripts call gh over a hundred times in the tests.
// Listens on 127.0.0.1 (a free port, printed as the first line of stdout) and exits when its stdin
// closes (the test process that started it is gone). A request is one JSON line {args, env, cwd} (the
// FAKE_* environment of the call); the answer `<exit code> <stderr bytes>\n<stderr><stdout>`.
import { createServer } from "node:net";
import { ghApi } from "./gh-api.mjs";
import { ghAttestation } from "./gh-attestation.mjs";

function answer({ args, env, cwd }) {
  if (args[0] === "api") return ghApi(args, env, cwd);
  if (args[0] === "attestation") return ghAttestation(args, env);
  return { code: 2, stdout: "", stderr: `fake gh: only \`gh api\` and \`gh attestation verify\` are supported, not ${args.join(" ")}\n` };
}

const server = createServer((socket) => {
  const chunks = [];
  socket.on("data", (chunk) => {
    chunks.push(chunk);
    const request = Buffer.concat(chunks);
    const end = request.indexOf("\n");
    if (end < 0) return;
    socket.removeAllListeners("data"); // one request a connection: what follows its line is not read
    let result;
    try {
      result = answer(JSON.parse(request.subarray(0, end).toString("utf8")));
    } catch (e) {
      result = { code: 70, stdout: "", stderr: `fake gh crashed: ${e instanceof Error ? e.stack : e}\n` };
    }
    socket.end(`${result.code} ${Buffer.byteLength(result.stderr)}\n${result.stderr}${result.stdout}`);
  });
  socket.on("error", () => socket.destroy());
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
