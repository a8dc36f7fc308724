// `npm run screenshots -w @titanium/blog-web`: the list, a post and the editor at desktop and phone widths,
// written to docs/screenshots/ (committed and linked from the README), or to SCREENSHOTS_DIR when set (to
// measure the first load without rewriting the committed ones). Not part of `npm test`.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ApiUser, firstLoadTransfer, launchBrowser, PASSWORD, runId } from "./harness.js";
import { startPlatform } from "./platform.js";

const out = process.env.SCREENSHOTS_DIR
  ? path.resolve(process.env.SCREENSHOTS_DIR)
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../docs/screenshots");
mkdirSync(out, { recursive: true });

const platform = await startPlatform();
const base = platform.baseUrl;
const id = runId();
try {
  const writer = await new ApiUser(base, `minji_${id}`).signup().then((u) => u.login());
  const other = await new ApiUser(base, `jun_${id}`).signup().then((u) => u.login());
  await other.createPost("Why the gateway NodePorts live in one place", "The original broke when the firewall and the Istio gateway disagreed.\n\nNow one config key feeds both.", "Troubleshooting");
  await writer.createPost("K3s with a custom CA", "Pre-generate the CA with `@pulumi/tls` so the kubeconfig is known before the VM boots.", "기술 스택");
  await other.createPost("Scraping under STRICT mTLS", "Istio's metrics merge serves app metrics on `:15020/stats/prometheus`.", "Troubleshooting");
  const postId = await writer.createPost(
    "STRICT mTLS without losing your metrics",
    [
      "Titanium runs every service with **STRICT** mutual TLS. The original gave up on scraping because Prometheus could not speak mTLS; Istio's *metrics merge* solves it without weakening the mesh.",
      "",
      "## The policy",
      "",
      "```yaml",
      "apiVersion: security.istio.io/v1",
      "kind: PeerAuthentication",
      "metadata:",
      "  name: default",
      "spec:",
      "  mtls:",
      "    mode: STRICT",
      "```",
      "",
      "## Checking it",
      "",
      "- `istioctl x describe pod` shows the mode",
      "- a plain-text request from outside the mesh is refused",
      "",
      "> One source of truth for ports, versions and names.",
      "",
      "```ts",
      "const mode: string = \"STRICT\"; // a plain literal, so policies can judge it in preview",
      "```",
    ].join("\n"),
    "기술 스택",
  );

  for (const [label, viewport] of [
    ["desktop", { width: 1280, height: 860 }],
    ["phone", { width: 390, height: 844 }],
  ] as const) {
    const browser = await launchBrowser(viewport);
    try {
      const page = await browser.context.newPage();
      await page.goto(`${base}/blog/`);
      await page.locator(".posts > li").first().waitFor();
      await page.screenshot({ path: path.join(out, `list-${label}.png`) });
      await page.goto(`${base}/blog/posts/${postId}`);
      await page.locator(".prose").waitFor();
      await page.screenshot({ path: path.join(out, `post-${label}.png`) });
      await page.goto(`${base}/blog/login`);
      await page.getByLabel("Username").fill(writer.username);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByRole("link", { name: "Write" }).waitFor();
      await page.goto(`${base}/blog/posts/${postId}/edit`);
      await page.getByLabel("Title").waitFor();
      await page.getByRole("button", { name: "Preview" }).click();
      await page.locator(".preview h3").first().waitFor();
      await page.screenshot({ path: path.join(out, `editor-${label}.png`), fullPage: true });
      if (label === "desktop") {
        await page.goto(`${base}/blog/`);
        await page.getByLabel("Language").selectOption("ko");
        await page.getByRole("heading", { level: 1, name: "최신 글" }).waitFor();
        await page.locator(".posts > li").first().waitFor();
        await page.screenshot({ path: path.join(out, `list-ko-${label}.png`) });
      }
    } finally {
      await browser.close();
    }
  }
  console.log(`screenshots written to ${out}`);

  // What a first visit of the list transfers (docs/web-ui.md), through the gateway and from the blog-service.
  const browser = await launchBrowser();
  try {
    for (const [label, origin] of [["gateway", base], ["blog-service", platform.blogServiceUrl]] as const) {
      if (!origin) continue;
      const m = await firstLoadTransfer(browser, `${origin}/blog/`, ".posts > li");
      for (const f of m.files) console.log(`  ${String(f.bytes).padStart(7)}  ${f.encoding.padEnd(8)}  ${new URL(f.url).pathname}`);
      console.log(`first load via ${label}: ${m.total} bytes (${(m.total / 1024).toFixed(1)} KiB) in ${m.files.length} responses`);
    }
  } finally {
    await browser.close();
  }
} finally {
  await platform.stop();
}
