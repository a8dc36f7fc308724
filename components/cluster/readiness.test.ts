import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiNotReadyError, gateOnReadyz, probeReadyz, shouldWaitForApi, waitForApi, type ProbeResult, type ProbeTls } from "./readiness";

/** A CA, a server certificate for localhost and an admin client certificate, made with openssl. */
function makePki(): { tls: ProbeTls; serverCert: string; serverKey: string; clientCa: string; otherCa: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "readyz-pki-"));
  try {
    return makePkiIn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function makePkiIn(dir: string): ReturnType<typeof makePki> {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ca = (name: string) => {
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.crt`);
  };
  ca("server-ca");
  ca("client-ca");
  ca("other-ca");
  const leaf = (name: string, caName: string, subject: string, ext: string) => {
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    ssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`, "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.crt`);
  };
  leaf("apiserver", "server-ca", "/CN=kube-apiserver", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  leaf("admin", "client-ca", "/O=system:masters/CN=titanium-admin", "extendedKeyUsage=clientAuth\n");
  const read = (f: string) => readFileSync(path.join(dir, f), "utf8");
  return {
    tls: { caCertPem: read("server-ca.crt"), clientCertPem: read("admin.crt"), clientKeyPem: read("admin.key") },
    serverCert: read("apiserver.crt"),
    serverKey: read("apiserver.key"),
    clientCa: read("client-ca.crt"),
    otherCa: read("other-ca.crt"),
  };
}

let pki: ReturnType<typeof makePki>;
let server: Server;
let url: string;
/** Status codes /readyz answers, in order; the last one repeats. */
let answers: number[] = [];
let requests = 0;

beforeAll(async () => {
  pki = makePki();
  // Like kube-apiserver: TLS with the server CA's certificate, client certificates from the client CA.
  server = createServer(
    { cert: pki.serverCert, key: pki.serverKey, ca: pki.clientCa, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const socket = req.socket as import("node:tls").TLSSocket;
      if (!socket.authorized) {
        res.writeHead(401).end("Unauthorized");
        return;
      }
      requests++;
      const code = answers.length > 1 ? answers.shift()! : (answers[0] ?? 200);
      res.writeHead(req.url === "/readyz" ? code : 404).end(code === 200 ? "ok" : "[-]etcd failed: reason withheld\nreadyz check failed");
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://localhost:${(server.address() as AddressInfo).port}/readyz`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const fast = { timeoutMs: 2_000, intervalMs: 10, failFastOnUnresolvedName: true, resolutionHint: "Add it to /etc/hosts." };

describe("API readiness gate", () => {
  it("polls /readyz with the admin certificate until it answers 200", async () => {
    answers = [503, 503, 200];
    requests = 0;
    const result = await waitForApi({ url, tls: pki.tls, ...fast });
    expect(result.attempts).toBe(3);
    expect(requests).toBe(3);
  });

  it("trusts only the cluster's CA and authenticates with the admin certificate", async () => {
    answers = [200];
    expect(await probeReadyz(url, pki.tls)).toEqual({ ready: true });
    const impostor = await probeReadyz(url, { ...pki.tls, caCertPem: pki.otherCa });
    expect(impostor.ready).toBe(false);
    const anonymous = await probeReadyz(url, { ...pki.tls, clientCertPem: pki.serverCert, clientKeyPem: pki.serverKey });
    expect(anonymous).toMatchObject({ ready: false, reason: "HTTP 401: Unauthorized" });
  });

  it("times out with a clear error naming the address, the wait and the last answer", async () => {
    answers = [503];
    let clock = 0;
    const err = await waitForApi({
      url,
      tls: pki.tls,
      ...fast,
      timeoutMs: 60_000,
      intervalMs: 10_000,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiNotReadyError);
    const e = err as ApiNotReadyError;
    // Probes at 0, 10, ..., 60 s: the last one at the deadline.
    expect(e.attempts).toBe(7);
    expect(e.message).toContain(`The K3s API at ${url} was not ready after 60s (7 attempts)`);
    expect(e.message).toContain("HTTP 503: [-]etcd failed");
  });

  it("fails at once, saying how to fix it, when the stable name does not resolve here", async () => {
    const err = await waitForApi({ url: "https://k3s-api.titanium.invalid:6443/readyz", tls: pki.tls, ...fast }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiNotReadyError);
    expect((err as ApiNotReadyError).attempts).toBe(1);
    expect((err as Error).message).toContain("k3s-api.titanium.invalid does not resolve on this machine. Add it to /etc/hosts.");
  });

  it("says who may reach the port when the wait ends without any HTTP answer (a firewall drops the probes)", async () => {
    const run = (answer: ProbeResult) =>
      waitForApi({ url, tls: pki.tls, ...fast, timeoutMs: 0, unreachableHint: "Run it from an admin address.", probe: async () => answer }).then(
        () => new Error("ready"),
        (e: unknown) => e as Error,
      );
    expect((await run({ ready: false, reason: "no answer within 10s", code: "ETIMEDOUT" })).message).toContain("last answer: no answer within 10s. Run it from an admin address.");
    // An HTTP answer came: the port is reachable, the hint would mislead.
    expect((await run({ ready: false, reason: "HTTP 503: [-]etcd failed" })).message).not.toContain("admin address");
  });

  it("waits for a name that a managed DNS record will publish", async () => {
    let clock = 0;
    const err = await waitForApi({
      url: "https://k3s-api.titanium.invalid:6443/readyz",
      tls: pki.tls,
      ...fast,
      failFastOnUnresolvedName: false,
      timeoutMs: 30_000,
      intervalMs: 10_000,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    }).catch((e: unknown) => e);
    expect((err as ApiNotReadyError).attempts).toBe(4);
    expect((err as Error).message).toContain("k3s-api.titanium.invalid does not resolve on this machine");
  });

  it("runs only in a real update: never in a preview, never under mocks", () => {
    expect(shouldWaitForApi({ dryRun: false, engineAttached: true })).toBe(true);
    expect(shouldWaitForApi({ dryRun: true, engineAttached: true })).toBe(false);
    expect(shouldWaitForApi({ dryRun: false, engineAttached: false })).toBe(false);
  });

  it("gates the kubeconfig: released after /readyz in an update, at once (without a request) in a preview", async () => {
    const logged: string[] = [];
    const gate = (dryRun: boolean) =>
      gateOnReadyz("kubeconfig", pki.tls, { url, ...fast, isDryRun: () => dryRun, engineAttached: () => true, log: (m) => void logged.push(m) });
    answers = [503, 200];
    requests = 0;
    expect(await gate(true)).toBe("kubeconfig");
    expect(requests).toBe(0);
    expect(await gate(false)).toBe("kubeconfig");
    expect(requests).toBe(2);
    expect(logged).toEqual([expect.stringMatching(/^K3s API ready at https:\/\/localhost:\d+\/readyz after 2 probe\(s\)/)]);
    answers = [503];
    await expect(gateOnReadyz("kubeconfig", pki.tls, { url, ...fast, timeoutMs: 50, isDryRun: () => false, engineAttached: () => true })).rejects.toThrow(
      ApiNotReadyError,
    );
  });
});
