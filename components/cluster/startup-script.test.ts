import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../stacks/config";
import { one, ofType, type ProgramRun, configuredRun, readStackConfig, runProgram } from "../../stacks/harness";
import { authenticationConfig, DATA_DISK_DEVICE, renderAgentScript } from "./startup-script";
import { FakeNode, type FakeNodeOptions, type RunResult, withBashShebang } from "./testing/fake-node";

let dev: ProgramRun;
let prod: ProgramRun;
beforeAll(async () => {
  dev = await configuredRun("dev");
  prod = await configuredRun("prod");
});

const nodes: FakeNode[] = [];
afterEach(() => nodes.splice(0).forEach((n) => n.remove()));

/** The startup scripts the program puts into VM metadata, by VM or template name. */
function scripts(run: ProgramRun): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of [...ofType(run, "gcp:compute/instance:Instance"), ...ofType(run, "gcp:compute/instanceTemplate:InstanceTemplate")]) {
    out[r.name] = (r.inputs.metadata as Record<string, string>)["startup-script"]!;
  }
  return out;
}

/** Every generated secret payload of the run, by secret id. */
function secretPayloads(run: ProgramRun): Record<string, string> {
  const ids = new Map(ofType(run, "gcp:secretmanager/secret:Secret").map((s) => [s.urn, s.inputs.secretId as string]));
  const out: Record<string, string> = {};
  for (const v of ofType(run, "gcp:secretmanager/secretVersion:SecretVersion")) {
    const secretUrn = v.dependsOn.find((u) => ids.has(u))!;
    out[ids.get(secretUrn)!] = v.inputs.secretData as string;
  }
  return out;
}

/**
 * The secret strings nothing may show: each payload, each line of a PEM, each file of the CA
 * bundle (encoded and decoded), each token's password.
 */
function secretFragments(run: ProgramRun): string[] {
  const fragments = new Set<string>();
  const addText = (text: string) => {
    fragments.add(text);
    for (const line of text.split("\n")) if (line.length >= 16 && !line.startsWith("-----")) fragments.add(line);
  };
  for (const payload of Object.values(secretPayloads(run))) {
    if (payload.includes("\t")) {
      for (const line of payload.split("\n")) {
        const encoded = line.split("\t")[1]!;
        fragments.add(encoded);
        addText(Buffer.from(encoded, "base64").toString("utf8"));
      }
    } else if (payload.startsWith("K10")) {
      fragments.add(payload);
      fragments.add(payload.split(":").pop()!);
    } else {
      addText(payload);
    }
  }
  return [...fragments];
}

function k3sConfigOf(script: string): Record<string, unknown> {
  const m = /cat <<'TITANIUM_K3S_CONFIG'\n([\s\S]*?)\nTITANIUM_K3S_CONFIG/.exec(script);
  if (!m) throw new Error("no K3s configuration in the script");
  return parse(m[1]!) as Record<string, unknown>;
}

/** The line of a script's header that sets a value. */
const valueLine = (script: string, name: string) => script.split("\n").find((l) => l.startsWith(`readonly ${name}=`));

const serverScript = (run: ProgramRun, i: number) => scripts(run)[`titanium-${run.stack}-server-${i}`]!;
const agentScript = (run: ProgramRun) => scripts(run)[`titanium-${run.stack}-agent-template`]!;
const VERSION = "v1.33.5+k3s1";
/** K3s' registries.yaml: Docker Hub's images from Google's pull-through cache first (containerd falls back to docker.io). */
const DOCKER_HUB_THROUGH_MIRROR = { mirrors: { "docker.io": { endpoint: ["https://mirror.gcr.io"] } } };

/** The fake node's options, the data disk as a switch (its device is the script's). */
type NodeOptions = Omit<FakeNodeOptions, "k3sVersion" | "secrets" | "dataDisk"> & { dataDisk?: boolean };

function newFakeNode(run: ProgramRun, opts: NodeOptions = {}): FakeNode {
  const { dataDisk, ...rest } = opts;
  return new FakeNode({ k3sVersion: VERSION, secrets: secretPayloads(run), dataDisk: dataDisk ? DATA_DISK_DEVICE : undefined, ...rest });
}

/** A fresh node of the stack's secrets, removed after the test. */
function fakeNode(run: ProgramRun, opts: NodeOptions = {}): FakeNode {
  const node = newFakeNode(run, opts);
  nodes.push(node);
  return node;
}

/** A prod server's address, by index (SERVER_IPS: every server's, the same in each server's script). */
const serverIp = (i: number) => /readonly SERVER_IPS=\('([\d.]+)' '([\d.]+)' '([\d.]+)'\)/.exec(serverScript(prod, 0))![i + 1]!;

/**
 * The first boots many tests start from, each on a fresh node: prod's server 0 (data disk, no live peer),
 * prod's server 1 (data disk, server 0 live) and dev's agent template.
 */
const FIRST_BOOTS = {
  "prod server 0": () => ({ node: newFakeNode(prod, { dataDisk: true }), script: serverScript(prod, 0) }),
  "prod server 1": () => ({ node: newFakeNode(prod, { dataDisk: true, liveServerIps: [serverIp(0)] }), script: serverScript(prod, 1) }),
  "dev agent": () => ({ node: newFakeNode(dev), script: agentScript(dev) }),
};
const firstBoots = new Map<keyof typeof FIRST_BOOTS, { node: FakeNode; first: RunResult }>();
afterAll(() => {
  for (const boot of firstBoots.values()) boot.node.remove();
  firstBoots.clear();
});

/**
 * A first boot as {@link fakeNode} and `node.run(script)` would give it, run once for all the tests that
 * start from it: each test gets its own copy of the node as that boot left it ({@link FakeNode.clone}),
 * removed after the test, and the boot's result (frozen: only read).
 */
function booted(which: keyof typeof FIRST_BOOTS): { node: FakeNode; first: RunResult } {
  let boot = firstBoots.get(which);
  if (!boot) {
    const { node, script } = FIRST_BOOTS[which]();
    let first: RunResult;
    try {
      first = node.run(script);
    } catch (err) {
      node.remove(); // neither shared nor a test's: nothing else would remove it
      throw err;
    }
    Object.freeze(first.calls);
    boot = { node, first: Object.freeze(first) };
    firstBoots.set(which, boot);
  }
  const node = boot.node.clone();
  nodes.push(node);
  return { node, first: boot.first };
}

const sha256Of = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const mode = (node: FakeNode, p: string) => (statSync(path.join(node.root, p)).mode & 0o777).toString(8);

/** How the servers' node cleanup lists the nodes: name, pool label, Ready status and its last transition. */
const NODE_LIST_CALL =
  'k3s kubectl get nodes --request-timeout=20s --no-headers -o custom-columns=NAME:.metadata.name,POOL:.metadata.labels.titanium\\.io/pool,READY:.status.conditions[?(@.type=="Ready")].status,SINCE:.status.conditions[?(@.type=="Ready")].lastTransitionTime';
const deleteCall = (name: string) => `k3s kubectl delete node ${name} --ignore-not-found --wait=false --request-timeout=20s`;
/** A Ready condition's lastTransitionTime `seconds` ago, as the API prints it (whole seconds, UTC). */
const agoIso = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
/** What `kubectl get nodes --no-headers -o custom-columns=...` prints ("<none>": missing). */
const nodeTable = (rows: string[][]) => rows.map(([name, pool, ready, since]) => `${name!.padEnd(36)} ${pool!.padEnd(9)} ${ready!.padEnd(9)} ${since ?? "<none>"}\n`).join("");
/** The access token the cleanup's stub metadata server hands out: it must reach Compute Engine in a header only. */
const CLEANUP_TOKEN = "ya29.cleanup-token-0f3c9a";

/**
 * Runs the node cleanup helper a server's script installed, against stubs: K3s' kubectl (the binary the
 * script installed, replaced by one that serves $FAKE/nodes) and a curl that serves the metadata server's
 * token and Compute Engine's instances.get ($FAKE/instances/<name>: an HTTP status, "404-zone" for a 404
 * about the zone rather than the instance, "404-cut" for an answer cut short, or "timeout"), recording every argv it gets.
 */
function cleanupHelper(node: FakeNode) {
  const helperFile = path.join(node.root, "usr/local/sbin/titanium-k3s-node-cleanup");
  writeFileSync(
    path.join(node.root, "usr/local/bin/k3s"),
    withBashShebang([
      "#!/usr/bin/env bash",
      'echo "k3s $*" >>"$FAKE/calls.log"',
      'case "$1 $2 $3" in',
      '  "kubectl get nodes")',
      '    if [[ -f $FAKE/api-down ]]; then',
      "      echo 'E1207 10:04:40.767660 memcache.go:265] \"Unhandled Error\" err=\"couldn'\"'\"'t get current server API group list\"' >&2",
      "      echo 'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?' >&2",
      "      exit 1",
      "    fi",
      '    cat "$FAKE/nodes" ;;',
      '  "kubectl delete node")',
      '    if [[ -f $FAKE/delete-forbidden ]]; then echo "Error from server (Forbidden): nodes \\"$4\\" is forbidden" >&2; exit 1; fi',
      '    # Deleted already (by another server): --ignore-not-found says nothing.',
      '    [[ -f $FAKE/deleted/$4 ]] && exit 0',
      '    mkdir -p "$FAKE/deleted" && touch "$FAKE/deleted/$4" && echo "node \\"$4\\" deleted" ;;',
      "  *) exit 2 ;;",
      "esac",
      "",
    ].join("\n")),
  );
  const bin = path.join(node.dir, "cleanup-bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    path.join(bin, "curl"),
    withBashShebang([
      "#!/usr/bin/env bash",
      "printf '%s\\n' \"$*\" >>\"$FAKE/curl-argv.log\"",
      "url='' write='' headers=''",
      "while (($#)); do",
      "  case \"$1\" in",
      "    -w) write=$2; shift ;;",
      "    -H) if [[ $2 == @* ]]; then headers+=$(cat \"${2#@}\"); else headers+=$2; fi; headers+=$'\\n'; shift ;;",
      "    -o | --max-time) shift ;;",
      "    http://* | https://*) url=$1 ;;",
      "  esac",
      "  shift",
      "done",
      "echo \"curl $url\" >>\"$FAKE/calls.log\"",
      "case \"$url\" in",
      "  http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token)",
      "    [[ $headers == *'Metadata-Flavor: Google'* && ! -f $FAKE/no-token ]] || exit 22",
      `    printf '{"access_token":"${CLEANUP_TOKEN}","expires_in":3599,"token_type":"Bearer"}' ;;`,
      "  https://compute.googleapis.com/compute/v1/projects/*/zones/*/instances/*)",
      "    resource=${url#https://compute.googleapis.com/compute/v1/}",
      "    answer=$(cat \"$FAKE/instances/${url##*/}\" 2>/dev/null) || { echo \"no answer planned for $url\" >&2; exit 6; }",
      // Compute Engine answers 401 without the metadata server's token.
      `    [[ $headers == *'Authorization: Bearer ${CLEANUP_TOKEN}'* ]] || answer=401`,
      "    if [[ $answer == timeout ]]; then echo 'curl: (28) Operation timed out' >&2; exit 28; fi",
      // An answer cut short after its status line: curl fails (18), though it printed the status.
      "    if [[ $answer == 404-cut ]]; then printf '{ \"error\": { \"code\": 404, \"message\": \"The resource %s was n' \"'$resource'\"; w=${write/'%{http_code}'/404}; printf '%b' \"$w\"; exit 18; fi",
      "    case $answer in",
      "      200) body='{\"kind\": \"compute#instance\", \"status\": \"TERMINATED\"}' ;;",
      "      404) body=$(printf '{ \"error\": { \"code\": 404, \"message\": \"The resource %s was not found\", \"errors\": [ { \"reason\": \"notFound\" } ] } }' \"'$resource'\") ;;",
      "      404-zone) answer=404 body=$(printf '{ \"error\": { \"code\": 404, \"message\": \"The resource %s was not found\" } }' \"'${resource%%/instances/*}'\") ;;",
      "      *) body=$(printf '{ \"error\": { \"code\": %s } }' \"$answer\") ;;",
      "    esac",
      "    printf '%s' \"$body\"",
      "    w=${write/'%{http_code}'/$answer}; printf '%b' \"$w\" ;;",
      "  *) echo \"unexpected URL $url\" >&2; exit 6 ;;",
      "esac",
      "",
    ].join("\n")),
  );
  chmodSync(path.join(bin, "curl"), 0o755);
  return () => {
    const before = node.calls().length;
    const result = spawnSync("bash", [helperFile], {
      encoding: "utf8",
      env: { PATH: `${bin}:${path.join(node.dir, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`, FAKE: node.fake },
    });
    const calls = node.calls().slice(before);
    return {
      status: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
      gets: calls.filter((c) => c.startsWith("k3s kubectl get")),
      deletes: calls.filter((c) => c.startsWith("k3s kubectl delete")),
      compute: calls.filter((c) => c.startsWith("curl https://compute.googleapis.com/")).map((c) => c.slice("curl ".length)),
      tokens: calls.filter((c) => c.includes("/service-accounts/default/token")).length,
    };
  };
}

describe("startup scripts", () => {
  it("render from the templates and pass shellcheck (every server and the agent template, both stacks)", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "scripts-"));
    try {
      const files = [dev, prod].flatMap((run) =>
        Object.entries(scripts(run)).map(([name, script]) => {
          const file = path.join(dir, `${name}.sh`);
          writeFileSync(file, script);
          return file;
        }),
      );
      expect(files).toHaveLength(2 + 4);
      // Any finding fails the test, with shellcheck's report as the message.
      const check = spawnSync("shellcheck", ["--shell=bash", "--severity=style", ...files], { encoding: "utf8" });
      expect(check.stdout + check.stderr).toBe("");
      expect(check.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("log in UTC whatever time zone the node has (the log's times are compared with the cloud's)", () => {
    const root = mkdtempSync(path.join(tmpdir(), "titanium-log-"));
    try {
      const r = spawnSync("bash", ["-c", `ROLE=server; . "$1"; log "hello 100%"`, "bash", path.join(__dirname, "scripts/k3s-common.sh")], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"], // a socket on stdin would make bash read ~/.bashrc
        // A POSIX zone (no tzdata needed) 8 hours from UTC, as a node's own could be.
        env: { PATH: process.env.PATH, TITANIUM_ROOT: root, TZ: "PST8" },
      });
      expect(r.status, r.stderr).toBe(0);
      const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) titanium-bootstrap\[server\]: hello 100%$/.exec(r.stderr.trim());
      expect(m, r.stderr).not.toBeNull();
      expect(Math.abs(Date.parse(m![1]!) - Date.now()), m![1]).toBeLessThan(120_000);
      expect(readFileSync(path.join(root, "var/log/titanium-bootstrap.log"), "utf8")).toBe(`${r.stderr.trim()}\n`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("contain no generated secret: only names, addresses and Secret Manager resource names", () => {
    for (const run of [dev, prod]) {
      const fragments = secretFragments(run);
      expect(fragments.length).toBeGreaterThan(10);
      for (const [name, script] of Object.entries(scripts(run))) {
        for (const fragment of fragments) expect(script.includes(fragment), `${name} contains a secret`).toBe(false);
        expect(script).not.toMatch(/PRIVATE KEY|K10[0-9a-f]{8}/);
        expect(script).toContain(`secrets/titanium-${run.stack}-k3s-agent-token`);
      }
    }
  });

  it("leave no generated secret in a plain stack output (the kubeconfig is a secret output)", () => {
    for (const run of [dev, prod]) {
      const fragments = secretFragments(run);
      expect(run.secretOutputs).toContain("kubeconfig");
      const plain = Object.entries(run.outputs).filter(([key]) => !run.secretOutputs.includes(key));
      expect(plain.length).toBeGreaterThan(5);
      for (const [key, value] of plain) {
        const text = JSON.stringify(value);
        for (const fragment of fragments) expect(text.includes(fragment), `output ${key} contains a secret`).toBe(false);
      }
    }
  });

  it("pin the K3s version and configure the servers as the issue asks", () => {
    const script = serverScript(prod, 0);
    expect(script).toContain(`readonly K3S_VERSION='${VERSION}'`);
    const config = k3sConfigOf(script);
    expect(config.disable).toEqual(["traefik", "servicelb"]);
    expect(config["secrets-encryption"]).toBe(true);
    expect(config["write-kubeconfig-mode"]).toBe("0600");
    expect(config["tls-san"]).toEqual(["k3s-api.prod.titanium.example.org", expect.stringMatching(/^10\.128\./), prod.outputs.apiPublicIp]);
    expect(config["node-taint"]).toEqual(["CriticalAddonsOnly=true:NoExecute"]);
    // dev's single server takes workloads too.
    expect(k3sConfigOf(serverScript(dev, 0))["node-taint"]).toBeUndefined();
    // Embedded etcd on every server of both stacks (server 0 starts it with cluster-init), its metrics
    // on the node address too, where Prometheus scrapes them (kubeEtcd in components/platform/monitoring.ts).
    for (const run of [dev, prod]) {
      const count = loadConfig(run.stack, readStackConfig(run.stack)).cluster.servers.count;
      for (let i = 0; i < count; i++) expect(k3sConfigOf(serverScript(run, i))["etcd-expose-metrics"], `${run.stack} server ${i}`).toBe(true);
    }
    expect(k3sConfigOf(agentScript(prod))["etcd-expose-metrics"]).toBeUndefined();
    const agent = k3sConfigOf(agentScript(prod));
    expect(agent["with-node-id"]).toBe(true);
    expect(agent.server).toBe("https://k3s-api.prod.titanium.example.org:6443");
  });

  it("expose the controller manager's and scheduler's metrics on each server's own internal address, and kube-proxy's on every node", () => {
    // Where Prometheus scrapes them (kubeControllerManager, kubeScheduler and kubeProxy in components/platform/monitoring.ts);
    // K3s binds all three to 127.0.0.1 by default.
    for (const run of [dev, prod]) {
      const vms = ofType(run, "gcp:compute/instance:Instance").filter((vm) => new RegExp(`^titanium-${run.stack}-server-\\d+$`).test(String(vm.inputs.name)));
      expect(vms).toHaveLength(loadConfig(run.stack, readStackConfig(run.stack)).cluster.servers.count);
      for (const vm of vms) {
        const ip = String((vm.inputs.networkInterfaces as Record<string, unknown>[])[0]!.networkIp);
        expect(ip).toMatch(/^10\.\d+\.\d+\.\d+$/);
        const config = k3sConfigOf(serverScript(run, Number(/(\d+)$/.exec(String(vm.inputs.name))![1])));
        expect(config["node-ip"], String(vm.inputs.name)).toBe(ip);
        // Its own address, not 0.0.0.0: the controller manager's and the scheduler's HTTPS ports (10257, 10259).
        expect(config["kube-controller-manager-arg"], String(vm.inputs.name)).toEqual([`bind-address=${ip}`]);
        expect(config["kube-scheduler-arg"], String(vm.inputs.name)).toEqual([`bind-address=${ip}`]);
        // kube-proxy's health endpoint stays where the agents' autohealing probes it; its metrics in plain HTTP on 10249.
        expect(config["kube-proxy-arg"], String(vm.inputs.name)).toEqual(["healthz-bind-address=0.0.0.0:10256", `metrics-bind-address=${ip}:10249`]);
      }
      // An agent's address is not known to its (shared) instance template: every address, the firewall admits the subnet only.
      const agent = k3sConfigOf(agentScript(run));
      expect(agent["kube-proxy-arg"]).toEqual(["healthz-bind-address=0.0.0.0:10256", "metrics-bind-address=0.0.0.0:10249"]);
      expect(agent["kube-controller-manager-arg"]).toBeUndefined();
      expect(agent["kube-scheduler-arg"]).toBeUndefined();
    }
  });

  it("bootstrap a server idempotently: a second boot downloads, formats, writes and restarts nothing", () => {
    const { node, first } = booted("prod server 0");
    const script = serverScript(prod, 0);
    expect(first.status, first.stderr).toBe(0);
    expect(first.calls.filter((c) => c.startsWith("mkfs.ext4"))).toHaveLength(1);
    expect(first.calls.filter((c) => c.startsWith("mount "))).toHaveLength(1);
    expect(first.calls.filter((c) => c.includes("/releases/download/v1.33.5%2Bk3s1/"))).toHaveLength(2);
    expect(first.calls).toContain("systemctl start --no-block k3s.service");
    // logind lets the kubelet's shutdown inhibitor hold the whole grace period (its default is 5 s), set before K3s starts.
    expect(node.file("etc/systemd/logind.conf.d/90-titanium-node-shutdown.conf")).toBe("[Login]\nInhibitDelayMaxSec=30\n");
    expect(first.calls.indexOf("systemctl restart systemd-logind")).toBeGreaterThanOrEqual(0);
    expect(first.calls.indexOf("systemctl restart systemd-logind")).toBeLessThan(first.calls.indexOf("systemctl start --no-block k3s.service"));
    // Pods on a server are refused the metadata server (its token reads the CA keys), before K3s starts any.
    const podCidr = k3sConfigOf(script)["cluster-cidr"] as string;
    expect(podCidr).toMatch(/^10\.\d+\.0\.0\/16$/);
    // DNS only: the address is also the VPC's resolver, which CoreDNS (on the servers in prod) forwards to.
    expect(node.ipRules()).toEqual([
      `89:\tfrom ${podCidr} to 169.254.169.254 ipproto udp dport 53 lookup main`,
      `89:\tfrom ${podCidr} to 169.254.169.254 ipproto tcp dport 53 lookup main`,
      `90:\tfrom ${podCidr} to 169.254.169.254 prohibit`,
    ]);
    const lastRule = first.calls.findLastIndex((c) => c.startsWith("ip rule add"));
    expect(lastRule).toBeLessThan(first.calls.indexOf("systemctl start --no-block k3s.service"));
    // systemd-networkd would delete rules it did not make when it restarts (its default).
    expect(node.file("etc/systemd/networkd.conf.d/90-titanium-keep-rules.conf")).toBe("[Network]\nManageForeignRoutingPolicyRules=no\n");
    expect(node.file("etc/rancher/k3s/config.yaml")).toContain("secrets-encryption: true");
    expect(parse(node.file("etc/rancher/k3s/registries.yaml"))).toEqual(DOCKER_HUB_THROUGH_MIRROR);
    expect(node.file("etc/rancher/k3s/config.yaml.d/10-join.yaml")).toBe("cluster-init: true\n");
    expect(node.file("etc/hosts")).toMatch(/^10\.128\.\d+\.\d+ k3s-api\.prod\.titanium\.example\.org # titanium: K3s API$/m);
    expect(node.file("etc/fstab")).toMatch(/^UUID=\S+ \/var\/lib\/rancher\/k3s ext4 defaults,nofail,discard 0 2$/m);
    for (const ca of ["server-ca", "client-ca", "request-header-ca", "etcd/peer-ca", "etcd/server-ca"]) {
      expect(node.file(`var/lib/rancher/k3s/server/tls/${ca}.crt`)).toContain("BEGIN CERTIFICATE");
      expect(mode(node, `var/lib/rancher/k3s/server/tls/${ca}.key`)).toBe("600");
    }
    // The tokens pin the CA a joining node fetches from /cacerts: the SHA-256 of the very bytes this
    // server wrote to server-ca.crt (K3s' hashCA), computed here by coreutils, not by the program.
    const written = spawnSync("sha256sum", [path.join(node.root, "var/lib/rancher/k3s/server/tls/server-ca.crt")], { encoding: "utf8" }).stdout.split(" ")[0];
    expect(written).toMatch(/^[0-9a-f]{64}$/);
    for (const token of ["k3s-server-token", "k3s-agent-token"]) expect(secretPayloads(prod)[`titanium-prod-${token}`]).toMatch(new RegExp(`^K10${written}::`));
    expect(node.file("usr/local/bin/k3s")).toContain(VERSION);

    const snapshot = () =>
      ["etc/hosts", "etc/fstab", "etc/rancher/k3s/config.yaml", "etc/rancher/k3s/registries.yaml", "etc/rancher/k3s/token", "etc/systemd/system/k3s.service"].map(
        (p) => [p, node.file(p), statSync(path.join(node.root, p)).mtimeMs],
      );
    const before = snapshot();
    const second = node.run(script);
    expect(second.status, second.stderr).toBe(0);
    expect(second.calls.filter((c) => /^(mkfs|mount |systemctl (start|restart|daemon-reload)|ip rule add)/.test(c) || c.includes("/releases/"))).toEqual([]);
    expect(second.stderr).toContain("k3s.service is running and up to date");
    const after = snapshot();
    for (const [i, entry] of before.entries()) expect(after[i], String(entry[0])).toEqual(entry);

    // Half the rules gone (a reboot keeps none; here one survived): the next boot restores all three, once each.
    const rules = node.ipRules();
    node.setIpRules(rules.slice(2));
    const third = node.run(script);
    expect(third.status, third.stderr).toBe(0);
    expect(node.ipRules()).toEqual(rules);
  });

  it("refuse pods on a rebooted server the metadata server before K3s starts them, even when the boot cannot read its secrets", () => {
    const script = serverScript(prod, 0);
    const { node, first } = booted("prod server 0");
    expect(first.status).toBe(0);
    const rules = node.ipRules();
    expect(rules).toHaveLength(3);
    // systemd starts the enabled k3s.service at boot, long before the startup script runs: the unit it
    // requires and is ordered after puts the rules back first.
    const k3sUnit = node.file("etc/systemd/system/k3s.service");
    expect(k3sUnit).toMatch(/^Requires=titanium-metadata-rules\.service$/m);
    expect(k3sUnit).toMatch(/^After=titanium-metadata-rules\.service$/m);
    expect(k3sUnit).toMatch(/^RequiresMountsFor=\/var\/lib\/rancher\/k3s$/m);
    const rulesUnit = node.file("etc/systemd/system/titanium-metadata-rules.service");
    expect(rulesUnit).toMatch(/^ExecStart=\/usr\/local\/sbin\/titanium-metadata-rules$/m);
    expect(rulesUnit).toMatch(/^Type=oneshot$/m);
    expect(rulesUnit).toMatch(/^Before=k3s\.service$/m);
    expect(mode(node, "usr/local/sbin/titanium-metadata-rules")).toBe("755");
    const helper = node.file("usr/local/sbin/titanium-metadata-rules");
    const check = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], { input: helper, encoding: "utf8" });
    expect(check.stdout + check.stderr).toBe("");
    // A reboot: no rule survives; the unit's script restores them all, once each, and then does nothing.
    node.setIpRules([]);
    const boot = node.run(helper);
    expect(boot.status, boot.stderr).toBe(0);
    expect(node.ipRules()).toEqual(rules);
    const again = node.run(helper);
    expect(again.calls.filter((c) => c.startsWith("ip rule add"))).toEqual([]);
    expect(node.ipRules()).toEqual(rules);
    // The agents keep the metadata server, and their unit requires nothing of the sort.
    const { node: agent, first: agentFirst } = booted("dev agent");
    expect(agentFirst.status).toBe(0);
    expect(agent.file("etc/systemd/system/k3s-agent.service")).not.toContain("titanium-metadata-rules");

    // A boot whose secrets cannot be read (IAM not yet applied, Secret Manager away) waits for them (a server
    // retries without limit; bounded here to end the test), but not before the rules are in place.
    const early = new FakeNode({ k3sVersion: VERSION, secrets: {}, dataDisk: DATA_DISK_DEVICE });
    nodes.push(early);
    const failed = early.run(script, { TITANIUM_SERVER_RETRY_ATTEMPTS: "3" });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain("read secret titanium-prod-k3s-ca-bundle: gave up after 3 attempts");
    expect(early.ipRules()).toEqual(rules);
  });

  it("formats the data disk only when it is provably empty: a failed probe or stray data stops the boot instead", () => {
    const script = serverScript(prod, 0);
    const disk = (node: FakeNode) => path.join(node.root, DATA_DISK_DEVICE);
    const unreadable = fakeNode(prod, { dataDisk: true });
    writeFileSync(`${disk(unreadable)}.probe-error`, "");
    const failed = unreadable.run(script);
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain(`blkid could not probe the data disk ${DATA_DISK_DEVICE} (exit 8): not formatting it`);
    expect(failed.calls.filter((c) => c.startsWith("mkfs") || c.startsWith("systemctl start"))).toEqual([]);

    const stray = fakeNode(prod, { dataDisk: true });
    writeFileSync(disk(stray), Buffer.concat([Buffer.alloc(4096), Buffer.from("etcd member data")]));
    const refused = stray.run(script);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("has no filesystem signature but does not read back as blank");
    expect(refused.calls.filter((c) => c.startsWith("mkfs"))).toEqual([]);

    // A device that cannot be read: blkid says 2 ("no signature") for that too; the read-back catches it.
    const unopenable = fakeNode(prod, { dataDisk: true });
    rmSync(disk(unopenable));
    mkdirSync(disk(unopenable));
    const stopped = unopenable.run(script);
    expect(stopped.status).not.toBe(0);
    expect(stopped.stderr).toContain("does not read back as blank");
    expect(stopped.calls.filter((c) => c.startsWith("mkfs"))).toEqual([]);

    const blank = fakeNode(prod, { dataDisk: true });
    writeFileSync(disk(blank), Buffer.alloc(1024 * 1024 + 1, 0));
    const formatted = blank.run(script);
    expect(formatted.status, formatted.stderr).toBe(0);
    expect(formatted.calls.filter((c) => c.startsWith("mkfs.ext4"))).toEqual([`mkfs.ext4 -q -F -m 0 -L k3s-data ${disk(blank)}`]);
  });

  it("keeps one /etc/fstab entry for the data disk, the current disk's, when the disk is replaced (bootstrap runbook)", () => {
    const { node, first: boot } = booted("prod server 0");
    const script = serverScript(prod, 0);
    expect(boot.status).toBe(0);
    const entries = () => node.file("etc/fstab").split("\n").filter((line) => line.includes(" /var/lib/rancher/k3s "));
    const [first] = entries();
    expect(entries()).toHaveLength(1);
    // "prod server whose data disk was lost": a new, blank disk under the same device name, then a restart.
    const disk = path.join(node.root, DATA_DISK_DEVICE);
    rmSync(`${disk}.fs`);
    writeFileSync(disk, Buffer.alloc(1024 * 1024));
    rmSync(path.join(node.fake, "mounted"), { recursive: true, force: true });
    const restarted = node.run(script);
    expect(restarted.status, restarted.stderr).toBe(0);
    expect(restarted.calls.filter((c) => c.startsWith("mkfs.ext4"))).toHaveLength(1);
    // systemd mounts a mount point's first entry: the old disk's, gone, would keep K3s (RequiresMountsFor) down at every boot.
    const uuid = readFileSync(`${disk}.fs`, "utf8").trim();
    expect(entries()).toEqual([`UUID=${uuid} /var/lib/rancher/k3s ext4 defaults,nofail,discard 0 2`]);
    expect(entries()[0]).not.toBe(first);
    expect(node.file("etc/fstab")).toContain("LABEL=root / ext4 rw,discard,errors=remount-ro 0 1");
    const again = node.run(script);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("/etc/fstab");
  });

  it("keeps the node password on the data disk, so a replaced server (new boot disk, same name) is let back in", () => {
    const { node, first: boot } = booted("prod server 0");
    const script = serverScript(prod, 0);
    expect(boot.status).toBe(0);
    // K3s writes the password it registers with through the link.
    writeFileSync(path.join(node.root, "etc/rancher/node/password"), "first-registration\n");
    expect(node.file("var/lib/rancher/k3s/node/password")).toBe("first-registration\n");
    expect(mode(node, "var/lib/rancher/k3s/node")).toBe("700");

    node.replaceBootDisk();
    expect(node.exists("etc/rancher/node")).toBe(false);
    const rebuilt = node.run(script);
    expect(rebuilt.status, rebuilt.stderr).toBe(0);
    expect(node.file("etc/rancher/node/password")).toBe("first-registration\n");

    // A server bootstrapped before this kept it on the boot disk: it moves to the data disk once.
    const older = fakeNode(prod, { dataDisk: true });
    mkdirSync(path.join(older.root, "etc/rancher/node"), { recursive: true });
    writeFileSync(path.join(older.root, "etc/rancher/node/password"), "older\n");
    expect(older.run(script).status).toBe(0);
    expect(older.file("var/lib/rancher/k3s/node/password")).toBe("older\n");
    expect(lstatSync(path.join(older.root, "etc/rancher/node")).isSymbolicLink()).toBe(true);
    const again = older.run(script);
    expect(again.stderr).not.toContain("keeping the node password");
  });

  it("writes secrets only into 0600 files, never into its log, its configuration or the console", () => {
    const { node, first: result } = booted("prod server 0");
    expect(result.status, result.stderr).toBe(0);
    const payloads = secretPayloads(prod);
    const serverToken = payloads["titanium-prod-k3s-server-token"]!;
    const agentToken = payloads["titanium-prod-k3s-agent-token"]!;
    expect(serverToken).toMatch(/^K10[0-9a-f]{64}::server:\w+$/);
    expect(node.file("etc/rancher/k3s/token").trim()).toBe(serverToken);
    expect(node.file("etc/rancher/k3s/agent-token").trim()).toBe(agentToken.split(":").pop());
    for (const p of ["etc/rancher/k3s/token", "etc/rancher/k3s/agent-token", "etc/rancher/k3s/config.yaml"]) expect(mode(node, p)).toBe("600");
    const visible = [result.stderr, node.file("var/log/titanium-bootstrap.log"), node.file("etc/rancher/k3s/config.yaml")].join("\n");
    for (const fragment of secretFragments(prod)) expect(visible.includes(fragment), `shows ${fragment.slice(0, 12)}…`).toBe(false);
  });

  it("joins a live peer directly, and waits for one however long it takes", () => {
    const serverIps = (prod.outputs.pipelineAccess as { tunnelTargets: unknown[] }).tunnelTargets.length;
    expect(serverIps).toBe(3);
    const script = serverScript(prod, 1);
    const ips = /readonly SERVER_IPS=\('([\d.]+)' '([\d.]+)' '([\d.]+)'\)/.exec(script)!;
    // Server 0 comes up long after the other retries (3 attempts here) would have given up.
    const patient = fakeNode(prod, { dataDisk: true, laterServerIps: { [ips[1]!]: 35 } });
    const waited = patient.run(script, { TITANIUM_RETRY_ATTEMPTS: "3" });
    expect(waited.status, waited.stderr).toBe(0);
    expect(patient.file("etc/rancher/k3s/config.yaml.d/10-join.yaml")).toBe(`server: https://${ips[1]}:6443\n`);
    expect(waited.stderr).toContain("a live K3s server to join: not yet (attempt 31), retrying every 0s until it answers");
    // Bounded (as the tests run it), it fails clearly.
    const lonely = fakeNode(prod, { dataDisk: true });
    const failed = lonely.run(script, { TITANIUM_PEER_WAIT_ATTEMPTS: "3" });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain("a live K3s server to join: gave up after 3 attempts");

    // The peer that ended the wait is the one joined, even if it stops answering right after (a K3s
    // restart): probing again would find none and end the boot with K3s never started.
    const brief = fakeNode(prod, { dataDisk: true, laterServerIps: { [ips[1]!]: 2 }, peerAnswers: { [ips[1]!]: 1 } });
    const caught = brief.run(script);
    expect(caught.status, caught.stderr).toBe(0);
    expect(brief.file("etc/rancher/k3s/config.yaml.d/10-join.yaml")).toBe(`server: https://${ips[1]}:6443\n`);
    expect(caught.calls).toContain("systemctl start --no-block k3s.service");

    // Server 0 (ips[1]) live: the boot of "prod server 1".
    expect(ips[1]).toBe(serverIp(0));
    const { node, first: joined } = booted("prod server 1");
    expect(joined.status, joined.stderr).toBe(0);
    expect(node.file("etc/rancher/k3s/config.yaml.d/10-join.yaml")).toBe(`server: https://${ips[1]}:6443\n`);
  });

  it("bootstrap an agent idempotently, and restart it only when its configuration changes", () => {
    const { node, first } = booted("dev agent");
    const script = agentScript(dev);
    expect(first.status, first.stderr).toBe(0);
    expect(first.calls).toContain("systemctl start --no-block k3s-agent.service");
    expect(node.file("etc/rancher/k3s/token").trim()).toBe(secretPayloads(dev)["titanium-dev-k3s-agent-token"]);
    expect(node.exists("var/lib/rancher/k3s/server/tls")).toBe(false);
    // Every node pulls Docker Hub's images through Google's cache first (one NAT address for the whole cluster).
    expect(parse(node.file("etc/rancher/k3s/registries.yaml"))).toEqual(DOCKER_HUB_THROUGH_MIRROR);
    expect(mode(node, "etc/rancher/k3s/registries.yaml")).toBe("644");
    // Agents keep the metadata server: External Secrets, the PD CSI driver and the backup authenticate through it.
    expect(first.calls.filter((c) => c.startsWith("ip "))).toEqual([]);

    const second = node.run(script);
    expect(second.status, second.stderr).toBe(0);
    expect(second.calls.filter((c) => /systemctl (start|restart)/.test(c) || c.includes("/releases/"))).toEqual([]);
    expect(node.file("etc/systemd/logind.conf.d/90-titanium-node-shutdown.conf")).toContain("InhibitDelayMaxSec=30");

    const moved = renderAgentScript({
      k3sVersion: VERSION,
      apiDnsName: "api.k3s.example.org",
      apiInternalIp: "10.128.0.77",
      agentTokenSecret: "projects/123456789012/secrets/titanium-dev-k3s-agent-token",
    });
    const third = node.run(moved);
    expect(third.status, third.stderr).toBe(0);
    expect(third.calls).toContain("systemctl restart --no-block k3s-agent.service");
    expect(node.file("etc/hosts")).toContain("10.128.0.77 api.k3s.example.org # titanium: K3s API");
    expect(node.file("etc/hosts")).not.toContain("k3s-api.dev.titanium.example.org");
    expect(node.file("etc/hosts")).toContain("127.0.0.1 localhost");
  });

  it("renews K3s' one-year certificates before they expire: a daily timer restarts K3s when a leaf certificate nears expiry", () => {
    // K3s renews its leaf certificates only when it starts; a node a year without a restart would find them expired.
    const cert = (node: FakeNode, file: string, days: number) => {
      const target = path.join(node.root, file);
      mkdirSync(path.dirname(target), { recursive: true });
      const made = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${target}.key`, "-out", target, "-days", String(days), "-subj", "/CN=leaf"], { encoding: "utf8" });
      expect(made.status, made.stderr).toBe(0);
    };
    const check = (node: FakeNode) => {
      const before = node.calls().length;
      const result = spawnSync("bash", [path.join(node.root, "usr/local/sbin/titanium-k3s-cert-renewal")], {
        encoding: "utf8",
        env: { PATH: `${path.join(node.dir, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`, FAKE: node.fake },
      });
      expect(result.status, result.stderr).toBe(0);
      return node.calls().slice(before).filter((c) => c.startsWith("systemctl restart"));
    };
    for (const [role, boot, script, unit, dir] of [
      // Server 1, server 0 live.
      ["server", "prod server 1", serverScript(prod, 1), "k3s.service", "var/lib/rancher/k3s/server/tls"],
      ["agent", "dev agent", agentScript(dev), "k3s-agent.service", "var/lib/rancher/k3s/agent"],
    ] as const) {
      const { node, first } = booted(boot);
      expect(first.status, first.stderr).toBe(0);
      expect(first.calls).toContain("systemctl enable --now --quiet titanium-k3s-cert-renewal.timer");
      expect(first.calls.indexOf("systemctl daemon-reload")).toBeLessThan(first.calls.indexOf("systemctl enable --now --quiet titanium-k3s-cert-renewal.timer"));
      expect(node.file("etc/systemd/system/titanium-k3s-cert-renewal.timer")).toContain("[Timer]\nOnCalendar=*-*-* ");
      expect(node.file("etc/systemd/system/titanium-k3s-cert-renewal.service")).toContain("ExecStart=/usr/local/sbin/titanium-k3s-cert-renewal");
      // Fresh leaf certificates, and CAs near expiry (rotated on purpose, never by a restart): nothing to do.
      cert(node, `${dir}/client-kubelet.crt`, 365);
      cert(node, `${dir}/etcd/client-ca.crt`, 30);
      cert(node, `${dir}/client-ca.nochain.crt`, 30);
      expect(check(node), role).toEqual([]);
      // A leaf certificate within 100 days of expiry (K3s renews those within 120 when it starts): restart once.
      cert(node, `${dir}/client-kubelet.crt`, 99);
      expect(check(node), role).toEqual([`systemctl restart ${unit}`]);
      // A second boot leaves the timer as it is.
      const second = node.run(script);
      expect(second.status, second.stderr).toBe(0);
      expect(second.calls.filter((c) => /systemctl (start|restart|daemon-reload)/.test(c))).toEqual([]);
    }
    // Each server checks at an hour of its own, so no two restart (and leave etcd) together.
    const hours = [0, 1, 2].map((i) => /OnCalendar=\*-\*-\* (\S+) UTC/.exec(
      (() => {
        if (i < 2) {
          const { node, first } = booted(i === 0 ? "prod server 0" : "prod server 1");
          expect(first.status).toBe(0);
          return node.file("etc/systemd/system/titanium-k3s-cert-renewal.timer");
        }
        const node = fakeNode(prod, { dataDisk: true, liveServerIps: [serverIp(0)] });
        expect(node.run(serverScript(prod, i)).status).toBe(0);
        return node.file("etc/systemd/system/titanium-k3s-cert-renewal.timer");
      })(),
    )?.[1]);
    expect(new Set(hours).size).toBe(3);
  });

  it("deletes from the servers the Node object of an agent that registered again (a recreated VM), and nothing else", () => {
    const timer = "titanium-k3s-node-cleanup.timer";
    const enable = `systemctl enable --now --quiet ${timer}`;
    const { node, first } = booted("prod server 0");
    expect(first.status, first.stderr).toBe(0);
    expect(first.calls).toContain(enable);
    // After systemd read the new units, and after K3s (the helper's kubectl) was started.
    expect(first.calls.indexOf("systemctl daemon-reload")).toBeLessThan(first.calls.indexOf(enable));
    expect(first.calls.indexOf("systemctl start --no-block k3s.service")).toBeLessThan(first.calls.indexOf(enable));
    const timerUnit = node.file(`etc/systemd/system/${timer}`);
    expect(timerUnit).toMatch(/^OnCalendar=minutely$/m);
    // Each server draws its own delay at every run: the three prod servers seldom act at the same instant.
    expect(timerUnit).toMatch(/^RandomizedDelaySec=30s$/m);
    expect(timerUnit).toMatch(/^WantedBy=timers\.target$/m);
    const service = node.file("etc/systemd/system/titanium-k3s-node-cleanup.service");
    expect(service).toMatch(/^Type=oneshot$/m);
    expect(service).toMatch(/^ExecStart=\/usr\/local\/sbin\/titanium-k3s-node-cleanup$/m);
    expect(mode(node, "usr/local/sbin/titanium-k3s-node-cleanup")).toBe("755");
    const helperFile = path.join(node.root, "usr/local/sbin/titanium-k3s-node-cleanup");
    const lint = spawnSync("shellcheck", ["--shell=bash", "--severity=style", helperFile], { encoding: "utf8" });
    expect(lint.stdout + lint.stderr).toBe("");
    // A second boot leaves the units as they are.
    const second = node.run(serverScript(prod, 0));
    expect(second.status, second.stderr).toBe(0);
    expect(second.calls.filter((c) => /systemctl (start|restart|daemon-reload)/.test(c))).toEqual([]);

    const cleanup = cleanupHelper(node);
    // What `kubectl get nodes --no-headers -o custom-columns=...` prints: name, pool label, Ready status and its last
    // transition ("<none>": missing). Every NotReady node here turned so a minute ago: Compute Engine is not asked yet.
    const recent = agoIso(60);
    writeFileSync(
      path.join(node.fake, "nodes"),
      nodeTable([
        ["titanium-prod-server-0", "servers", "True", agoIso(3600)],
        // A NotReady server: an operator's matter (bootstrap runbook), whatever its name.
        ["titanium-prod-server-1", "servers", "Unknown", recent],
        ["titanium-prod-server-0badcafe", "servers", "False", recent],
        // Servers are never touched, even a pair that looks like an agent and its twin.
        ["titanium-prod-cp-11111111", "servers", "Unknown", recent],
        ["titanium-prod-cp-22222222", "servers", "True", agoIso(3600)],
        // Recreated by the group: the old object goes, the Ready twin stays.
        ["titanium-prod-agent-a1b2-a3c61eb3", "agents", "False", recent],
        ["titanium-prod-agent-a1b2-0f0f0f0f", "agents", "True", agoIso(3600)],
        // Two stale generations of one instance (the second unknown since its VM vanished), one Ready twin.
        ["titanium-prod-agent-c3d4-11111111", "agents", "Unknown", recent],
        ["titanium-prod-agent-c3d4-22222222", "agents", "False", recent],
        ["titanium-prod-agent-c3d4-33333333", "agents", "True", agoIso(3600)],
        // The replacement not Ready yet (or a scale-in, a VM rebooting): no Ready twin, nothing proven.
        ["titanium-prod-agent-e5f6-44444444", "agents", "False", recent],
        ["titanium-prod-agent-e5f6-55555555", "agents", "Unknown", recent],
        // Ready nodes stay, alone or beside a Ready node of the same instance name.
        ["titanium-prod-agent-g7h8-66666666", "agents", "True", agoIso(3600)],
        ["titanium-prod-agent-u3v4-12121212", "agents", "True", agoIso(3600)],
        ["titanium-prod-agent-u3v4-34343434", "agents", "True", agoIso(3600)],
        // Not `<base>-<8 hex>` (7 digits), or another base (a prefix of it): no twin.
        ["titanium-prod-agent-m3n4-1234567", "agents", "False", recent],
        ["titanium-prod-agent-m3n4-89abcdef", "agents", "True", agoIso(3600)],
        ["titanium-prod-agent-p5q6-aaaaaaaa", "agents", "False", recent],
        ["titanium-prod-agent-p5q-bbbbbbbb", "agents", "True", agoIso(3600)],
        // Without the pool label: not known as an agent.
        ["titanium-prod-agent-w5x6-77777777", "<none>", "False", recent],
        ["titanium-prod-agent-w5x6-88888888", "agents", "True", agoIso(3600)],
        // No Ready condition at all is not "True" either.
        ["titanium-prod-agent-s1t2-99999999", "agents", "<none>"],
        ["titanium-prod-agent-s1t2-aaaabbbb", "agents", "True", agoIso(3600)],
      ]),
    );
    const run = cleanup();
    expect(run.status, run.stderr).toBe(0);
    // kubectl prints the columns the helper reads, in that order, with no jq.
    expect(run.gets).toEqual([NODE_LIST_CALL]);
    expect(run.deletes).toEqual(
      ["titanium-prod-agent-a1b2-a3c61eb3", "titanium-prod-agent-c3d4-11111111", "titanium-prod-agent-c3d4-22222222", "titanium-prod-agent-s1t2-99999999"].map(deleteCall),
    );
    // The journal names both nodes.
    expect(run.stdout).toContain("deleted node titanium-prod-agent-a1b2-a3c61eb3: not Ready, superseded by titanium-prod-agent-a1b2-0f0f0f0f (Ready)");
    expect(run.stdout).toContain("deleted node titanium-prod-agent-c3d4-22222222: not Ready, superseded by titanium-prod-agent-c3d4-33333333 (Ready)");
    const lines = run.stdout.trim().split("\n");
    expect(lines.filter((l) => !l.startsWith("keeping "))).toHaveLength(4);
    // NotReady for a minute without a Ready twin: kept, Compute Engine not asked (that waits five minutes).
    expect(lines.filter((l) => l.startsWith("keeping ")).map((l) => l.split(":")[0])).toEqual(
      ["titanium-prod-agent-e5f6-44444444", "titanium-prod-agent-e5f6-55555555", "titanium-prod-agent-p5q6-aaaaaaaa"].map((n) => `keeping node ${n}`),
    );
    expect(run.compute).toEqual([]);
    expect(run.tokens).toBe(0);

    // Another server's run that listed the nodes before this one deleted them: nothing left to delete, no failure.
    const late = cleanup();
    expect(late.status, late.stderr).toBe(0);
    expect(late.deletes).toHaveLength(4);
    expect(late.stdout).toContain("node titanium-prod-agent-a1b2-a3c61eb3 (superseded by titanium-prod-agent-a1b2-0f0f0f0f) is already gone: another server deleted it");
    expect(late.stdout).not.toContain("deleted node");

    // A delete the API refuses fails the unit (the journal says why), after trying the others.
    rmSync(path.join(node.fake, "deleted"), { recursive: true });
    writeFileSync(path.join(node.fake, "delete-forbidden"), "");
    const refused = cleanup();
    expect(refused.status).toBe(1);
    expect(refused.deletes).toHaveLength(4);
    expect(refused.stdout).toContain('could not delete node titanium-prod-agent-a1b2-a3c61eb3 (superseded by titanium-prod-agent-a1b2-0f0f0f0f): Error from server (Forbidden): nodes "titanium-prod-agent-a1b2-a3c61eb3" is forbidden');
    rmSync(path.join(node.fake, "delete-forbidden"));

    // The API does not answer (K3s starting, etcd without quorum): no delete, no failed unit, one clear line.
    writeFileSync(path.join(node.fake, "api-down"), "");
    const down = cleanup();
    expect(down.status, down.stderr).toBe(0);
    expect(down.gets).toHaveLength(1);
    expect(down.deletes).toEqual([]);
    expect(down.stdout).toBe("the K3s API did not answer (The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?): trying again at the next run\n");
    rmSync(path.join(node.fake, "api-down"));

    // K3s not running on this server (stopped, or still activating at boot): not even asked.
    rmSync(path.join(node.fake, "active", "k3s.service"));
    const stopped = cleanup();
    expect(stopped.status, stopped.stderr).toBe(0);
    expect([...stopped.gets, ...stopped.deletes]).toEqual([]);
    expect(stopped.stdout).toBe("k3s.service is not running: no node to check\n");

    // dev's one server has it too; the agents (which have no admin kubeconfig) do not.
    const devServer = fakeNode(dev);
    const devRun = devServer.run(serverScript(dev, 0));
    expect(devRun.status, devRun.stderr).toBe(0);
    expect(devRun.calls).toContain(enable);
    expect(devServer.exists(`etc/systemd/system/${timer}`)).toBe(true);
    const { node: agent, first: agentRun } = booted("dev agent");
    expect(agentRun.status, agentRun.stderr).toBe(0);
    expect(agentRun.calls.filter((c) => c.includes("node-cleanup"))).toEqual([]);
    expect(agent.exists(`etc/systemd/system/${timer}`)).toBe(false);
    expect(agent.exists("usr/local/sbin/titanium-k3s-node-cleanup")).toBe(false);
  });

  it("deletes from the servers the Node object of an agent whose VM Compute Engine no longer has, after five minutes NotReady, and keeps it on any other answer", () => {
    // The group replaces agents under new instance names (SUBSTITUTE: a new template) and deletes them at a scale-in: no twin ever.
    const script = serverScript(prod, 0);
    // Compute Engine is asked in the project and the zone of the agents' (zonal) group: values of the script, not secrets.
    const group = one(prod, "gcp:compute/instanceGroupManager:InstanceGroupManager", "titanium-prod-agent-group");
    expect(group.inputs.zone).toBe("us-central1-a");
    expect(valueLine(script, "PROJECT")).toBe("readonly PROJECT='titanium-prod-4821'");
    expect(valueLine(script, "AGENT_ZONE")).toBe(`readonly AGENT_ZONE='${String(group.inputs.zone)}'`);
    for (const i of [1, 2]) expect(valueLine(serverScript(prod, i), "AGENT_ZONE")).toBe(valueLine(script, "AGENT_ZONE"));
    expect(valueLine(serverScript(dev, 0), "PROJECT")).toBe("readonly PROJECT='titanium-dev-4821'");
    expect(valueLine(serverScript(dev, 0), "AGENT_ZONE")).toBe(
      `readonly AGENT_ZONE='${String(one(dev, "gcp:compute/instanceGroupManager:InstanceGroupManager", "titanium-dev-agent-group").inputs.zone)}'`,
    );
    expect(valueLine(agentScript(prod), "AGENT_ZONE")).toBeUndefined();

    const { node, first: boot } = booted("prod server 0");
    expect(boot.status, boot.stderr).toBe(0);
    const cleanup = cleanupHelper(node);
    const agent = (id: string) => `titanium-prod-agent-${id}`;
    const answers: Record<string, string> = {
      g0n3: "404",
      r3c3: "404",
      st0p: "200",
      d3ny: "403",
      f41l: "500",
      sl0w: "timeout",
      z0n3: "404-zone",
      cu7x: "404-cut",
    };
    mkdirSync(path.join(node.fake, "instances"), { recursive: true });
    for (const [id, answer] of Object.entries(answers)) writeFileSync(path.join(node.fake, "instances", agent(id)), answer);
    writeFileSync(
      path.join(node.fake, "nodes"),
      nodeTable([
        // Replaced under a new name six minutes ago: Compute Engine has no such VM. Deleted.
        [`${agent("g0n3")}-1a2b3c4d`, "agents", "Unknown", agoIso(360)],
        // Gone too, but NotReady for four minutes only: kept, Compute Engine not even asked yet.
        [`${agent("r3c3")}-2b3c4d5e`, "agents", "False", agoIso(240)],
        // The VM exists (stopped, rebooting): kept however long.
        [`${agent("st0p")}-3c4d5e6f`, "agents", "False", agoIso(7200)],
        // Compute Engine cannot tell: kept, with the reason.
        [`${agent("d3ny")}-4d5e6f70`, "agents", "Unknown", agoIso(900)],
        [`${agent("f41l")}-5e6f7081`, "agents", "Unknown", agoIso(900)],
        [`${agent("sl0w")}-6f708192`, "agents", "Unknown", agoIso(900)],
        // A 404 that is not about the instance (a zone or project Compute Engine does not know) proves nothing.
        [`${agent("z0n3")}-708192a3`, "agents", "Unknown", agoIso(900)],
        // An answer cut short is no answer, whatever its status line said.
        [`${agent("cu7x")}-c5d6e7f8`, "agents", "Unknown", agoIso(900)],
        // No transition time to measure: kept.
        [`${agent("n0t1")}-8192a3b4`, "agents", "<none>"],
        // The twin rule still acts first, with no wait and no question to Compute Engine.
        [`${agent("a1b2")}-a3c61eb3`, "agents", "False", agoIso(30)],
        [`${agent("a1b2")}-0f0f0f0f`, "agents", "True", agoIso(3600)],
        // Ready agents and servers, however long ago their condition changed: never asked about, never touched.
        [`${agent("k1k1")}-92a3b4c5`, "agents", "True", agoIso(86400)],
        ["titanium-prod-server-2", "servers", "Unknown", agoIso(86400)],
        ["titanium-prod-cp-a3b4c5d6", "servers", "Unknown", agoIso(86400)],
        // Not an agent by its label: not touched.
        [`${agent("w5x6")}-b4c5d6e7`, "<none>", "Unknown", agoIso(86400)],
      ]),
    );
    const run = cleanup();
    expect(run.status, run.stderr).toBe(0);
    expect(run.deletes).toEqual([`${agent("g0n3")}-1a2b3c4d`, `${agent("a1b2")}-a3c61eb3`].map(deleteCall));
    // instances.get of each candidate's instance (its node name without "-<8 hex>") in the agents' zone, one token for the run.
    expect(run.tokens).toBe(1);
    expect(run.compute).toEqual(
      ["g0n3", "st0p", "d3ny", "f41l", "sl0w", "z0n3", "cu7x"].map((id) => `https://compute.googleapis.com/compute/v1/projects/titanium-prod-4821/zones/us-central1-a/instances/${agent(id)}`),
    );
    const said = (name: string) => run.stdout.split("\n").find((l) => l.includes(`node ${name}:`));
    expect(said(`${agent("g0n3")}-1a2b3c4d`)).toMatch(
      new RegExp(`^deleted node ${agent("g0n3")}-1a2b3c4d: not Ready for 3[56]\\ds, and Compute Engine has no instance ${agent("g0n3")} in us-central1-a \\(HTTP 404\\): the VM is gone$`),
    );
    expect(said(`${agent("r3c3")}-2b3c4d5e`)).toMatch(/^keeping node \S+: not Ready for 2[45]\ds, under 300s: asking Compute Engine whether its VM exists after that$/);
    expect(said(`${agent("st0p")}-3c4d5e6f`)).toContain(`but Compute Engine has instance ${agent("st0p")} in us-central1-a (HTTP 200: the VM exists, stopped or rebooting)`);
    expect(said(`${agent("d3ny")}-4d5e6f70`)).toContain(`Compute Engine refused to say whether instance ${agent("d3ny")} exists (HTTP 403: the servers' account needs compute.instances.get`);
    expect(said(`${agent("f41l")}-5e6f7081`)).toContain(`Compute Engine answered HTTP 500 about instance ${agent("f41l")}: trying again at the next run`);
    expect(said(`${agent("sl0w")}-6f708192`)).toContain(`Compute Engine did not answer about instance ${agent("sl0w")} (curl exit 28): trying again at the next run`);
    expect(said(`${agent("z0n3")}-708192a3`)).toContain("Compute Engine answered HTTP 404, but not about instance");
    expect(said(`${agent("cu7x")}-c5d6e7f8`)).toContain(`Compute Engine did not answer about instance ${agent("cu7x")} (curl exit 18): trying again at the next run`);
    expect(said(`${agent("n0t1")}-8192a3b4`)).toContain("its Ready condition has no transition time (<none>)");
    expect(said(`${agent("a1b2")}-a3c61eb3`)).toContain(`superseded by ${agent("a1b2")}-0f0f0f0f (Ready)`);
    for (const untouched of [`${agent("k1k1")}-92a3b4c5`, "titanium-prod-server-2", "titanium-prod-cp-a3b4c5d6", `${agent("w5x6")}-b4c5d6e7`]) {
      expect(run.stdout).not.toContain(untouched);
    }
    // The token went to Compute Engine in a header file (the stub answers 401 without it), never on a command line.
    const argv = readFileSync(path.join(node.fake, "curl-argv.log"), "utf8");
    expect(argv).toContain("-H @/dev/fd/");
    expect(argv).not.toContain("cleanup-token");
    expect(run.stdout + run.stderr).not.toContain("cleanup-token");
    // Without the servers' permission Compute Engine would answer 403 for every instance: nothing deleted then (above).

    // No token from the metadata server: nothing deleted by the second rule, nothing asked, the reason said.
    rmSync(path.join(node.fake, "deleted"), { recursive: true });
    writeFileSync(path.join(node.fake, "no-token"), "");
    const tokenless = cleanup();
    expect(tokenless.status, tokenless.stderr).toBe(0);
    expect(tokenless.deletes).toEqual([deleteCall(`${agent("a1b2")}-a3c61eb3`)]);
    expect(tokenless.compute).toEqual([]);
    expect(tokenless.stdout).toContain(`keeping node ${agent("g0n3")}-1a2b3c4d: not Ready for`);
    expect(tokenless.stdout).toContain("but no access token from the metadata server to ask Compute Engine: trying again at the next run");
  });

  it("retries a server's secret reads and K3s download until they answer (nothing replaces a server); an agent gives up (its group replaces it)", () => {
    // An outage longer than the bounded retries (3 here, 60 on a VM): the release and the secrets come back after 35 and 70 sleeps.
    const outage = (node: FakeNode, what: { release?: number; secrets?: number }) => {
      const held = path.join(node.fake, "held");
      mkdirSync(path.join(held, "secrets"), { recursive: true });
      if (what.release) rmSync(path.join(node.fake, "release", "k3s"));
      if (what.secrets) for (const id of readdirSync(path.join(node.fake, "secrets"))) renameSync(path.join(node.fake, "secrets", id), path.join(held, "secrets", id));
      writeFileSync(
        path.join(node.dir, "bin", "sleep"),
        withBashShebang([
          "#!/usr/bin/env bash",
          // Builtins only (this runs 70 times a boot): the count of sleeps so far, plus one.
          'n=0; [[ -f $FAKE/sleeps ]] && read -r n <"$FAKE/sleeps"; n=$((n + 1))',
          'echo "$n" >"$FAKE/sleeps"',
          ...(what.release ? [`((n == ${what.release})) && cp "$FAKE/release-k3s" "$FAKE/release/k3s"`] : []),
          ...(what.secrets ? [`((n == ${what.secrets})) && mv "$FAKE/held/secrets/"* "$FAKE/secrets/"`] : []),
          "exit 0",
          "",
        ].join("\n")),
      );
    };
    const server = fakeNode(prod, { dataDisk: true });
    copyFileSync(path.join(server.fake, "release", "k3s"), path.join(server.fake, "release-k3s"));
    outage(server, { release: 35, secrets: 70 });
    const patient = server.run(serverScript(prod, 0));
    expect(patient.status, patient.stderr).toBe(0);
    expect(patient.stderr).toContain("download k3s: not yet (attempt 31), retrying every 0s until it answers");
    expect(patient.stderr).toContain("read secret titanium-prod-k3s-ca-bundle: not yet (attempt 31), retrying every 0s until it answers");
    expect(patient.stderr).not.toContain("gave up");
    expect(server.file("usr/local/bin/k3s")).toContain(VERSION);
    expect(server.file("etc/rancher/k3s/token").trim()).toBe(secretPayloads(prod)["titanium-prod-k3s-server-token"]);
    expect(patient.calls).toContain("systemctl start --no-block k3s.service");
    // The data disk keeps the bound: attached with the VM, one still missing will not come by waiting.
    const diskless = fakeNode(prod);
    const noDisk = diskless.run(serverScript(prod, 0));
    expect(noDisk.status).not.toBe(0);
    expect(noDisk.stderr).toContain(`data disk ${DATA_DISK_DEVICE} attached: gave up after 3 attempts`);
    // Only the servers' script says so: the agents' (their instance template) is left as it was.
    expect(serverScript(prod, 0)).toContain('RETRY_ATTEMPTS="${TITANIUM_SERVER_RETRY_ATTEMPTS:-0}"');
    expect(agentScript(prod)).not.toContain("TITANIUM_SERVER_RETRY_ATTEMPTS");

    // An agent keeps the bounded retry: it stops, and autohealing replaces the VM that never turned healthy.
    for (const what of [{ release: 35 }, { secrets: 35 }]) {
      const agentNode = fakeNode(dev);
      copyFileSync(path.join(agentNode.fake, "release", "k3s"), path.join(agentNode.fake, "release-k3s"));
      outage(agentNode, what);
      const stopped = agentNode.run(agentScript(dev));
      expect(stopped.status).not.toBe(0);
      expect(stopped.stderr).toContain(what.release ? "download k3s: gave up after 3 attempts" : "read secret titanium-dev-k3s-agent-token: gave up after 3 attempts");
      expect(stopped.calls.filter((c) => c.startsWith("systemctl start"))).toEqual([]);
    }
  });

  it("restarts a unit systemd started at boot that is not ready yet, when the boot changed its configuration", () => {
    // A reboot with new metadata: systemd started the enabled unit (Type=notify) before the startup script, and
    // it is still activating (an agent waiting for the API, a server for its etcd peers) on the old configuration.
    const { node, first } = booted("dev agent");
    expect(first.status).toBe(0);
    const unit = "k3s-agent.service";
    rmSync(path.join(node.fake, "active", unit));
    mkdirSync(path.join(node.fake, "activating"), { recursive: true });
    writeFileSync(path.join(node.fake, "activating", unit), "");
    const unchanged = node.run(agentScript(dev));
    expect(unchanged.status, unchanged.stderr).toBe(0);
    expect(unchanged.calls.filter((c) => /systemctl (start|restart)/.test(c))).toEqual([]);
    const moved = renderAgentScript({
      k3sVersion: VERSION,
      apiDnsName: "api.k3s.example.org",
      apiInternalIp: "10.128.0.77",
      agentTokenSecret: "projects/123456789012/secrets/titanium-dev-k3s-agent-token",
    });
    const changed = node.run(moved);
    expect(changed.status, changed.stderr).toBe(0);
    expect(changed.calls).toContain(`systemctl restart --no-block ${unit}`);
    expect(changed.calls).not.toContain(`systemctl start --no-block ${unit}`);
  });

  it("refuses to render a value that could break out of its quotes", () => {
    const values = { k3sVersion: VERSION, apiDnsName: "k3s-api.titanium.internal", apiInternalIp: "10.128.0.9", agentTokenSecret: "projects/p/secrets/a" };
    expect(() => renderAgentScript({ ...values, apiInternalIp: "10.128.0.9'; reboot; '" })).toThrow("startup script value API_INTERNAL_IP=");
    expect(renderAgentScript(values)).toContain("readonly API_INTERNAL_IP='10.128.0.9'");
  });

  it("refuses a K3s binary that does not match the release's checksum", () => {
    const node = fakeNode(dev, { tamperChecksum: true });
    const result = node.run(agentScript(dev));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`checksum mismatch for k3s ${VERSION}`);
    expect(node.exists("usr/local/bin/k3s")).toBe(false);
  });
  it("lets anonymous requests reach the API server's /readyz and /livez only: the file the servers write, and the K3s flag naming it", () => {
    const script = serverScript(prod, 0);
    const authnFile = "/etc/rancher/k3s/authentication-config.yaml";
    // K3s leaves out its --anonymous-auth=false when it sees this argument (k3s-io/k3s#12245), which the file's anonymous field requires.
    expect(k3sConfigOf(script)["kube-apiserver-arg"]).toEqual([`authentication-config=${authnFile}`]);
    expect(valueLine(script, "AUTHENTICATION_CONFIG_FILE")).toBe(`readonly AUTHENTICATION_CONFIG_FILE='${authnFile}'`);
    const { node, first } = booted("prod server 0");
    expect(first.status, first.stderr).toBe(0);
    // Exactly the anonymous authenticator, on exactly the two health paths: no JWT issuer, nothing else anonymous.
    const written = parse(node.file(authnFile.slice(1))) as Record<string, unknown>;
    expect(written).toEqual({
      apiVersion: "apiserver.config.k8s.io/v1beta1",
      kind: "AuthenticationConfiguration",
      anonymous: { enabled: true, conditions: [{ path: "/readyz" }, { path: "/livez" }] },
    });
    expect(mode(node, authnFile.slice(1))).toBe("600");
    // In place before K3s first starts (the API server reads it when it starts).
    const log = first.stderr;
    expect(log.indexOf(`wrote ${authnFile}`)).toBeGreaterThanOrEqual(0);
    expect(log.indexOf(`wrote ${authnFile}`)).toBeLessThan(log.indexOf("starting k3s.service"));
    // What the API load balancers' health check asks is one of those paths.
    for (const run of [dev, prod]) {
      const hc = one(run, "gcp:compute/regionHealthCheck:RegionHealthCheck", `titanium-${run.stack}-api-hc`).inputs.httpsHealthCheck as { requestPath: string };
      const conditions = (authenticationConfig(VERSION).anonymous as { conditions: { path: string }[] }).conditions;
      expect(conditions.map((c) => c.path)).toContain(hc.requestPath);
      expect(k3sConfigOf(serverScript(run, 0))["kube-apiserver-arg"]).toEqual([`authentication-config=${authnFile}`]);
    }

    // Unchanged: nothing restarts. Changed on the node: put back, and K3s restarted to read it.
    const second = node.run(script);
    expect(second.stderr).toContain("k3s.service is running and up to date");
    writeFileSync(path.join(node.root, authnFile), "apiVersion: apiserver.config.k8s.io/v1beta1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n");
    const third = node.run(script);
    expect(third.status, third.stderr).toBe(0);
    expect(parse(node.file(authnFile.slice(1)))).toEqual(written);
    expect(third.calls).toContain("systemctl restart --no-block k3s.service");

    // Agents run no API server: no such file, no such flag.
    const { node: agent, first: agentFirst } = booted("dev agent");
    expect(agentFirst.status).toBe(0);
    expect(agent.exists(authnFile.slice(1))).toBe(false);
    expect(k3sConfigOf(agentScript(dev))["kube-apiserver-arg"]).toBeUndefined();
  });

  it("writes the authentication config in the API version the K3s release's Kubernetes reads the anonymous field in", () => {
    expect(authenticationConfig("v1.32.5+k3s1").apiVersion).toBe("apiserver.config.k8s.io/v1beta1");
    expect(authenticationConfig("v1.33.5+k3s1").apiVersion).toBe("apiserver.config.k8s.io/v1beta1");
    expect(authenticationConfig("v1.34.1+k3s1").apiVersion).toBe("apiserver.config.k8s.io/v1");
    // 1.31 has the field only in v1alpha1, behind a feature gate that is off: the config refuses such a version first.
    expect(() => authenticationConfig("v1.31.9+k3s1")).toThrow("titanium:cluster.k3sVersion");
  });

  it("stops with a FATAL line on a machine K3s publishes no binary for, downloading nothing", () => {
    for (const script of [agentScript(dev), serverScript(dev, 0)]) {
      const node = fakeNode(dev, { machine: "riscv64" });
      const r = node.run(script);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("FATAL: unsupported architecture riscv64");
      expect(r.calls.filter((c) => c.includes("/releases/"))).toEqual([]);
      expect(node.exists("usr/local/bin/k3s")).toBe(false);
    }
  });

  it("installs a pinned K3s binary only when it matches both the release's checksum file and the pin (cluster.k3sSha256)", async () => {
    const probe = fakeNode(dev);
    const pin = probe.releaseSha256;
    const cluster = JSON.parse(readStackConfig("dev")["titanium:cluster"]!) as Record<string, unknown>;
    const pinned = await runProgram({ stack: "dev", config: { cluster: { ...cluster, k3sSha256: pin } } });
    // The stack's pin reaches both roles; without one, the scripts carry an empty pin.
    expect(valueLine(agentScript(pinned), "K3S_SHA256")).toBe(`readonly K3S_SHA256='${pin}'`);
    expect(valueLine(serverScript(pinned, 0), "K3S_SHA256")).toBe(`readonly K3S_SHA256='${pin}'`);
    for (const run of [dev, prod]) for (const script of Object.values(scripts(run))) expect(valueLine(script, "K3S_SHA256")).toBe("readonly K3S_SHA256=''");

    // The pin matches: installed, once; the next boot downloads nothing.
    for (const script of [agentScript(pinned), serverScript(pinned, 0)]) {
      const node = fakeNode(dev);
      const first = node.run(script);
      expect(first.status, first.stderr).toBe(0);
      expect(first.stderr).toContain(`installed k3s ${VERSION} (sha256 ${pin}, the pinned digest)`);
      expect(sha256Of(path.join(node.root, "usr/local/bin/k3s"))).toBe(pin);
      const again = node.run(script);
      expect(again.calls.filter((c) => c.includes("/releases/"))).toEqual([]);
    }

    // A replaced release (binary and checksum file both changed): without a pin it installs, as get.k3s.io
    // would (the release's own checksum file is the only check); with the pin the boot stops, naming both digests.
    const replaced = fakeNode(dev, { tamperRelease: true });
    const served = sha256Of(path.join(replaced.fake, "release", "k3s"));
    expect(served).not.toBe(pin);
    const unpinned = replaced.run(agentScript(dev));
    expect(unpinned.status, unpinned.stderr).toBe(0);
    expect(sha256Of(path.join(replaced.root, "usr/local/bin/k3s"))).toBe(served);
    const fresh = fakeNode(dev, { tamperRelease: true });
    const refused = fresh.run(agentScript(pinned));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`pinned checksum mismatch for k3s ${VERSION}: the download has sha256 ${served}`);
    expect(refused.stderr).toContain(`titanium:cluster.k3sSha256 pins ${pin}`);
    expect(fresh.exists("usr/local/bin/k3s")).toBe(false);
    expect(refused.calls.filter((c) => c.startsWith("systemctl start"))).toEqual([]);

    // A binary installed before the pin was set is checked too: the same version, but not the pinned bytes.
    const later = replaced.run(agentScript(pinned));
    expect(later.status).not.toBe(0);
    expect(later.stderr).toContain(`k3s ${VERSION} is installed but is not the pinned binary`);
    expect(later.stderr).toContain("pinned checksum mismatch");
    // Once the release serves the genuine binary again, it replaces the other one and K3s restarts.
    replaced.publishRelease({ replaced: false });
    const fixed = replaced.run(agentScript(pinned));
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(sha256Of(path.join(replaced.root, "usr/local/bin/k3s"))).toBe(pin);
    expect(fixed.calls).toContain("systemctl restart --no-block k3s-agent.service");
  });
});
