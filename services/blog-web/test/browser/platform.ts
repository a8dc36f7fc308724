// The platform the browser tests drive: the one at BLOG_WEB_BASE_URL when set (e.g. `npm start`'s gateway),
// otherwise the local platform (embedded PostgreSQL, Redis, the four services, the gateway) started here on
// free ports with a throw-away data directory, through the same module `npm start` uses.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startPlatform as startLocalPlatform, testPlatformEnv } from "../../../../scripts/platform.mjs";

export interface Platform {
  /** Origin of the public entry (the gateway), e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** The blog-service itself, when this module started it (for measurements without the gateway). */
  blogServiceUrl?: string;
  stop(): Promise<void>;
}

/**
 * The browser tests exercise the UI, not the rate limits (the gateway's own tests do): one browser from one
 * address makes more requests per second than the original's per-address limits allow, so they are scaled.
 */
const RATE_LIMIT_SCALE = "100";

export async function startPlatform(): Promise<Platform> {
  const url = process.env.BLOG_WEB_BASE_URL;
  if (url) return { baseUrl: url.replace(/\/$/, ""), stop: async () => {} };
  const dataDir = mkdtempSync(path.join(tmpdir(), "blog-web-platform-"));
  chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when the tests run as root
  const lines: string[] = [];
  try {
    const p = await startLocalPlatform({
      dataDir,
      gatewayPort: 0,
      servicePorts: { "user-service": 0, "auth-service": 0, "blog-service": 0 },
      env: testPlatformEnv({ "api-gateway": { RATE_LIMIT_SCALE } }),
      log: (source, line) => {
        lines.push(`[${source}] ${line}`);
        if (lines.length > 200) lines.shift();
      },
    });
    return {
      baseUrl: p.url,
      blogServiceUrl: p.services["blog-service"].url,
      stop: async () => {
        await p.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`local platform did not start: ${(err as Error).message}\n${lines.slice(-30).join("\n")}`);
  }
}
