// Browser-test support: Debian's Chromium through playwright-core with a fresh profile, a watch on every
// page for errors, dialogs and CSP violations, an axe-core scan, and API calls made the way a client would.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Flags that keep Chromium off the (closed) network and quiet on this machine. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-quic",
  "--disable-sync",
  // Tabs of one site share a renderer process instead of each starting its own: every test opens a tab or
  // two, and a renderer's start (V8, Blink, fonts) is a good part of what a new tab costs. Each tab keeps its own
  // document, sessionStorage and history, so the tests see the same browser.
  "--process-per-site",
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** One Chromium with a fresh profile; pages in it keep separate sessionStorage (one signed-in user each). */
export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), "blog-web-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport,
    locale: "en-US",
    timezoneId: "UTC",
  });
  // A wait only lasts this long when it fails; on a loaded 2-core machine a login round trip (Argon2id)
  // alone can take seconds.
  context.setDefaultTimeout(10_000);
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface Watched {
  page: Page;
  /** Uncaught exceptions and console errors. */
  errors: string[];
  /** alert/confirm/prompt dialogs (a payload's favourite). */
  dialogs: string[];
  /** CSP and Trusted Types violations reported by the page. */
  violations: string[];
  /** Requests to any origin but the page's own (the UI must work with the cluster cut off from the internet). */
  offsite: string[];
  /**
   * Failed loads a test causes on purpose outside the API (a chunk a deploy removed), by URL: not errors.
   * A failed API call is never one (the app shows it to the user); any other failed load is.
   */
  expectedFailures: RegExp[];
}

/** The API's paths: a refused or failed call to them is the app's to handle, and the tests provoke many. */
const API_PATH = /^\/(blog\/)?api\//;

/** A new tab whose errors, dialogs and CSP violations are recorded. */
export async function openPage(b: Browser): Promise<Watched> {
  const page = await b.context.newPage();
  const w: Watched = { page, errors: [], dialogs: [], violations: [], offsite: [], expectedFailures: [] };
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.protocol !== "data:" && u.origin !== new URL(page.url() === "about:blank" ? r.url() : page.url()).origin) w.offsite.push(r.url());
  });
  page.on("pageerror", (e) => w.errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // Chromium's console line for a failed load names the resource as its location. Failed API calls the
    // app shows to the user (403 when refused, 404 on a deleted post) are expected; a stylesheet, script or
    // icon that fails to load is not.
    if (/Failed to load resource/.test(m.text())) {
      const url = m.location().url;
      let pathname = "";
      try {
        pathname = new URL(url).pathname;
      } catch {
        // no URL: reported below
      }
      if (API_PATH.test(pathname) || w.expectedFailures.some((p) => p.test(url))) return;
      w.errors.push(`${m.text()}: ${url}`);
      return;
    }
    w.errors.push(m.text());
  });
  page.on("dialog", (d) => {
    w.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.exposeBinding("__reportViolation", (_src, v: string) => {
    w.violations.push(v);
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      const report = (window as unknown as { __reportViolation: (v: string) => void }).__reportViolation;
      report(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`);
    });
  });
  return w;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/** Runs axe-core in the page (WCAG 2.x A/AA rules) and returns the serious and critical violations. */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  // Evaluated over the DevTools protocol, so the page's CSP does not apply to the injection itself. Once per
  // document: after the app's own navigation the page still has it (axe.run can be called again).
  if (await page.evaluate(() => typeof (window as unknown as { axe?: { run?: unknown } }).axe?.run !== "function")) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: AxeViolation[] }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
    return r.violations;
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`);
}

export const PASSWORD = "Str0ng!Passw0rd";

/** A user driven through the public API (to arrange data the browser then looks at). */
export class ApiUser {
  token = "";
  constructor(
    readonly base: string,
    readonly username: string,
  ) {}

  private async call(method: string, p: string, body?: unknown, expect = [200, 201, 204]): Promise<Response> {
    const res = await fetch(`${this.base}${p}`, {
      method,
      headers: {
        "Content-Type": "application/json",
        ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!expect.includes(res.status)) throw new Error(`${method} ${p} → ${res.status} ${await res.text()}`);
    return res;
  }

  async signup(): Promise<this> {
    await this.call("POST", "/api/users", { username: this.username, email: `${this.username}@example.com`, password: PASSWORD });
    return this;
  }

  async login(): Promise<this> {
    const res = await this.call("POST", "/api/login", { username: this.username, password: PASSWORD });
    this.token = ((await res.json()) as { token: string }).token;
    return this;
  }

  async createPost(title: string, content: string, category: string): Promise<number> {
    const res = await this.call("POST", "/blog/api/posts", { title, content, category_name: category });
    return ((await res.json()) as { id: number }).id;
  }

  status(method: string, p: string, body?: unknown): Promise<number> {
    return this.call(method, p, body, Array.from({ length: 500 }, (_, i) => i + 100)).then((r) => r.status);
  }
}

/** A short random suffix so each run's users, posts and categories are its own. */
export function runId(): string {
  return Math.random().toString(36).slice(2, 8);
}

/** Bytes on the wire (headers included) for a cold first visit of `url`, per response, via the DevTools protocol. */
export async function firstLoadTransfer(b: Browser, url: string, ready: string): Promise<{ total: number; files: { url: string; bytes: number; encoding: string }[] }> {
  const page = await b.context.newPage();
  const cdp = await b.context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  const seen = new Map<string, { url: string; encoding: string }>();
  const files: { url: string; bytes: number; encoding: string }[] = [];
  cdp.on("Network.responseReceived", (e) => {
    const enc = Object.entries(e.response.headers).find(([k]) => k.toLowerCase() === "content-encoding")?.[1];
    seen.set(e.requestId, { url: e.response.url, encoding: String(enc ?? "identity") });
  });
  cdp.on("Network.loadingFinished", (e) => {
    const r = seen.get(e.requestId);
    if (r) files.push({ ...r, bytes: e.encodedDataLength });
  });
  await page.goto(url);
  await page.locator(ready).first().waitFor();
  await page.waitForTimeout(200);
  await page.close();
  return { total: files.reduce((n, f) => n + f.bytes, 0), files };
}
