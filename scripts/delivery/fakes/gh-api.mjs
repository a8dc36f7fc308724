// A stand-in for the `gh api` calls the CI scripts make, backed by a JSON file (env FAKE_GH_STATE):
// pull requests, issues, their comments and labels. Every call is appended to state.calls.
// ghApi(args after `api`, env, cwd) answers one call as gh would: {code, stdout, stderr}. Served by
// gh-server.mjs to the gh.sh stand-in (one node process for every call, not one per call).
import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

class Exit extends Error {
  constructor(stderr, code) {
    super(stderr);
    this.code = code;
  }
}

export function ghApi(argv, env, cwd) {
  const stateFile = env.FAKE_GH_STATE;
  const state = JSON.parse(readFileSync(stateFile, "utf8"));
  state.calls ??= [];
  state.comments ??= [];
  state.issues ??= [];
  state.labels ??= [];
  state.pulls ??= {};
  state.nextId ??= 1000;
  const login = state.login ?? "github-actions[bot]";
  const fail = (message, code = 1) => {
    writeFileSync(stateFile, JSON.stringify(state, null, 2));
    throw new Exit(`${message}\n`, code);
  };
  try {
    const args = argv.slice(1); // after "api" (gh-server.mjs sends only those here)
    let method = "GET";
    let target;
    const fields = {};
    while (args.length > 0) {
      const a = args.shift();
      if (a === "-X") method = args.shift();
      else if (a === "--paginate") continue;
      else if (a === "-F" || a === "-f") {
        const [k, ...rest] = args.shift().split("=");
        let v = rest.join("=");
        if (a === "-F" && v.startsWith("@")) {
          // Read here, in the server: a caller's stdin or process substitution is not this process's to read.
          const file = path.resolve(cwd, v.slice(1));
          if (!statSync(file, { throwIfNoEntry: false })?.isFile()) fail(`fake gh: -F ${k}=@<file> needs a regular file, not ${file}`, 2);
          v = readFileSync(file, "utf8");
        }
        if (k.endsWith("[]")) (fields[k.slice(0, -2)] ??= []).push(v);
        else fields[k] = v;
      } else target = a;
    }
    state.calls.push({ method, path: target, fields });
    // GitHub refuses an issue, pull request or comment body over 65536 characters.
    if (typeof fields.body === "string" && [...fields.body].length > 65536) fail("gh: Validation Failed: body is too long (maximum is 65536 characters) (HTTP 422)");
    const [route, query = ""] = target.split("?");
    const params = new URLSearchParams(query);
    const parts = route.split("/"); // repos/<owner>/<repo>/...
    const rest = parts.slice(3);
    let out;

    if (method === "GET" && rest[0] === "pulls" && rest.length === 1) {
      // Open pull requests, filtered by head ("owner:branch", the pull's head.label) and state.
      out = Object.entries(state.pulls)
        .map(([number, p]) => ({ number: Number(number), state: "open", ...p }))
        .filter((p) => (!params.get("state") || p.state === params.get("state")) && (!params.get("head") || p.head?.label === params.get("head")));
    } else if (method === "GET" && rest[0] === "pulls") {
      out = state.pulls[rest[1]];
      if (!out) fail("gh: Not Found (HTTP 404)");
    } else if (method === "GET" && rest[0] === "issues" && rest[2] === "comments") {
      out = state.comments.filter((c) => String(c.issue) === rest[1]);
    } else if (method === "POST" && rest[0] === "issues" && rest[2] === "comments") {
      out = { id: state.nextId++, issue: Number(rest[1]), body: fields.body, user: { login } };
      state.comments.push(out);
    } else if (method === "PATCH" && rest[0] === "issues" && rest[1] === "comments") {
      out = state.comments.find((c) => String(c.id) === rest[2]);
      if (!out) fail("gh: Not Found (HTTP 404)");
      out.body = fields.body;
    } else if (method === "GET" && rest[0] === "issues" && rest.length === 1) {
      out = state.issues.filter(
        (i) =>
          (!params.get("state") || i.state === params.get("state")) &&
          (!params.get("labels") || i.labels.some((l) => l.name === params.get("labels"))) &&
          (!params.get("creator") || i.user?.login === params.get("creator")),
      );
    } else if (method === "POST" && rest[0] === "labels") {
      if (state.labels.includes(fields.name)) fail("gh: Validation Failed (HTTP 422)");
      state.labels.push(fields.name);
      out = { name: fields.name };
    } else if (method === "POST" && rest[0] === "issues" && rest.length === 1) {
      out = { number: state.nextId++, title: fields.title, body: fields.body, state: "open", labels: (fields.labels ?? []).map((name) => ({ name })), user: { login } };
      state.issues.push(out);
    } else if (method === "POST" && rest[0] === "issues" && rest[2] === "labels") {
      const issue = state.issues.find((i) => String(i.number) === rest[1]);
      if (!issue) fail("gh: Not Found (HTTP 404)");
      for (const name of fields.labels ?? []) if (!issue.labels.some((l) => l.name === name)) issue.labels.push({ name });
      out = issue.labels;
    } else if (method === "PATCH" && rest[0] === "issues" && rest.length === 2) {
      out = state.issues.find((i) => String(i.number) === rest[1]);
      if (!out) fail("gh: Not Found (HTTP 404)");
      Object.assign(out, fields);
    } else {
      fail(`fake gh: unsupported ${method} ${target}`);
    }
    writeFileSync(stateFile, JSON.stringify(state, null, 2));
    return { code: 0, stdout: JSON.stringify(out), stderr: "" };
  } catch (e) {
    if (e instanceof Exit) return { code: e.code, stdout: "", stderr: e.message };
    throw e;
  }
}
