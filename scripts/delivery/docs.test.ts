/**
 * The documentation holds together: every runbook is reachable from the runbook index, every ADR is
 * in the ADR index with the status its file states and has context, options, decision and
 * consequences, the decisions the issues asked for have a record, and every relative link in
 * `docs/` and `README.md` (files and `#anchors`) resolves. Alert runbook sections are checked where
 * the alerts are defined (`components/platform/observability-as-code.test.mts`).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, SCRIPTS_DIR, workflows } from "./workflows";

const read = (rel: string) => readFileSync(path.join(REPO_ROOT, rel), "utf8");

function markdownUnder(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return markdownUnder(rel);
    return e.name.endsWith(".md") ? [rel] : [];
  });
}

/** Markdown links and images outside code blocks and code spans: `[text](target)`. */
export function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/!?\[(?:[^\]]|\][^(])*?\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const prose = markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, "");
  for (const m of prose.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  // Explicit anchors (`<a id="fuzz"></a>`, as docs/reliability.md gives each scenario) are link targets too.
  for (const m of prose.matchAll(/<a\s+(?:id|name)="([^"]+)"\s*>/g)) out.add(m[1]!);
  return out;
}

describe("runbooks", () => {
  const index = read("docs/runbooks/README.md");

  it("every runbook is linked from the runbook index", () => {
    const runbooks = readdirSync(path.join(REPO_ROOT, "docs/runbooks")).filter((f) => f.endsWith(".md") && f !== "README.md");
    expect(runbooks.length).toBeGreaterThanOrEqual(7);
    const linked = new Set(linksOf(index).map((l) => l.split("#")[0]));
    expect(runbooks.filter((r) => !linked.has(r))).toEqual([]);
  });

  it("the index covers what an operator must be able to do", () => {
    for (const topic of ["bootstrap", "deploy", "roll", "JWT", "database", "Redis", "K3s", "CA", "Grafana", "Argo CD", "chart", "alert", "destroy"]) {
      expect(index, topic).toContain(topic);
    }
  });

  it("the README links the runbook index and the ADR index", () => {
    const links = linksOf(read("README.md"));
    expect(links).toContain("docs/runbooks/README.md");
    expect(links).toContain("docs/adr/README.md");
  });
});

describe("architecture decision records", () => {
  const adrs = readdirSync(path.join(REPO_ROOT, "docs/adr"))
    .filter((f) => /^\d{4}-.+\.md$/.test(f))
    .sort();
  const index = read("docs/adr/README.md");

  it("every ADR is in the index once, with the status its file states", () => {
    expect(adrs.length).toBeGreaterThanOrEqual(10);
    const numbers = adrs.map((f) => f.slice(0, 4));
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const file of adrs) {
      const status = /^- Status: (\w[\w -]*)$/m.exec(read(`docs/adr/${file}`));
      expect(status, `${file} states its status`).not.toBeNull();
      const row = index.split("\n").filter((l) => l.includes(`](${file})`));
      expect(row, `${file} is in docs/adr/README.md once`).toHaveLength(1);
      expect(row[0]!.split("|").map((c) => c.trim()).at(-2), file).toBe(status![1]);
    }
    const listed = linksOf(index).filter((l) => /^\d{4}-/.test(l));
    expect(listed.sort()).toEqual(adrs);
  });

  it.each(adrs)("%s has context, options, decision and consequences", (file) => {
    const headings = [...read(`docs/adr/${file}`).matchAll(/^## (.+)$/gm)].map((m) => m[1]!.toLowerCase());
    for (const part of [/^context/, /options|alternatives/, /^decisions?\b/, /^consequences/]) {
      expect(headings.some((h) => part.test(h)), `${file}: a "## ${part.source}" section`).toBe(true);
    }
    expect(read(`docs/adr/${file}`)).toMatch(/^# ADR \d{4}: /);
  });

  // The decisions the issues asked for, by record: what each must at least talk about.
  const required: [string, RegExp[]][] = [
    ["0001", [/Pulumi/, /TypeScript/]],
    ["0010", [/load balancer/i, /client/i]],
    ["0011", [/kubeconfig/i, /IAP/, /pipeline/i]],
    ["0020", [/helm\.v3\.Release/, /helm\.v4\.Chart/]],
    ["0021", [/STRICT/, /scrap/i]],
    ["0030", [/NetworkPolic/, /AuthorizationPolic/]],
    ["0040", [/polic/i, /offline plan/i]],
    ["0050", [/workload identity/i, /preview/i, /drift/i]],
    ["0070", [/web UI|UI/, /esbuild/]],
  ];
  it.each(required)("ADR %s exists and covers its decision", (number, topics) => {
    const file = adrs.find((f) => f.startsWith(`${number}-`));
    expect(file, `docs/adr/${number}-*.md`).toBeDefined();
    const text = read(`docs/adr/${file}`);
    for (const t of topics) expect(text, `${file}: ${t}`).toMatch(t);
  });
});

describe("commands", () => {
  it("every gh command in the docs and the CI scripts names a workflow that exists", () => {
    // `gh workflow run Deploy`, `gh workflow enable Drift`, `gh run list --workflow Deploy`: a renamed
    // workflow would leave an operator with a command that fails when it matters (a rollback, a
    // re-enabled drift check).
    const known = new Set(workflows().flatMap((w) => [w.name, path.basename(w.file)]));
    const texts = [
      ...["README.md", ...markdownUnder("docs")].map((file) => ({ file, text: read(file) })),
      ...readdirSync(SCRIPTS_DIR).map((f) => ({ file: `.github/scripts/${f}`, text: readFileSync(path.join(SCRIPTS_DIR, f), "utf8") })),
    ];
    const named: string[] = [];
    const unknown: string[] = [];
    for (const { file, text } of texts) {
      for (const m of text.matchAll(/\bgh workflow (?:run|enable|disable|view)\s+("[^"]+"|[\w.-]+)|\bgh run (?:list|watch|view)\b[^\n`]*?--workflow[ =]("[^"]+"|[\w.-]+)/g)) {
        const name = (m[1] ?? m[2]!).replace(/^"|"$/g, "");
        named.push(name);
        if (!known.has(name)) unknown.push(`${file}: ${m[0]}`);
      }
    }
    expect(unknown).toEqual([]);
    // The ones an operator needs in a hurry are there.
    for (const name of ["Deploy", "Drift", "Images"]) expect(named, name).toContain(name);
  });
});

describe("the delivery ADRs say what the delivery code does", () => {
  it("ADR 0051 gives the base image size docs/images.md estimates (compressed)", () => {
    const table = [...read("docs/images.md").matchAll(/^\| `[\w-]+` \| [\d.]+ MB \| [\d.]+ MB \| ~(\d+) MB \//gm)].map((m) => m[1]);
    expect(table.length).toBeGreaterThanOrEqual(4);
    expect(new Set(table).size).toBe(1);
    const adr = /Images add [^;]*? to a shared ~(\d+) MB base/.exec(read("docs/adr/0051-service-images.md").replace(/\s+/g, " "));
    expect(adr?.[1]).toBe(table[0]);
  });

  it("ADR 0050: the registry walk takes only a set built from the deployed commit's image inputs, as resolve-images.sh does", () => {
    const script = read(".github/scripts/resolve-images.sh");
    expect(script).toMatch(/image_inputs_fingerprint "\$commit"\)" == "\$wanted" \]\] \|\| continue/);
    const adr = read("docs/adr/0050-delivery.md").replace(/\s+/g, " ");
    const walk = /`resolve-images\.sh` walks main's first-parent history.*?and deploys those digests/.exec(adr)?.[0] ?? "";
    expect(walk).toContain("image inputs (`image-inputs.sh`)");
  });
});

describe("links", () => {
  const files = ["README.md", ...markdownUnder("docs")];

  it.each(files)("every relative link in %s resolves", (file) => {
    const broken: string[] = [];
    for (const link of linksOf(read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith("//")) continue; // http(s), mailto: not checked offline
      const [target, anchor] = link.split("#") as [string, string | undefined];
      const resolved = target === "" ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURI(target)));
      const abs = path.join(REPO_ROOT, resolved);
      if (!existsSync(abs)) {
        broken.push(`${link} (no ${resolved})`);
        continue;
      }
      if (anchor && resolved.endsWith(".md") && statSync(abs).isFile() && !anchorsOf(read(resolved)).has(anchor)) {
        broken.push(`${link} (no heading #${anchor} in ${resolved})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("the link check is live: a missing file and a missing anchor are caught", () => {
    expect(linksOf("see [a](missing.md) and `[b](code.md)`\n```\n[c](block.md)\n```")).toEqual(["missing.md"]);
    expect(anchorsOf("# Runbook: rotating secrets\n## JWT signing key\n## Grafana and Argo CD admin passwords\n## JWT signing key")).toEqual(
      new Set(["runbook-rotating-secrets", "jwt-signing-key", "grafana-and-argo-cd-admin-passwords", "jwt-signing-key-1"]),
    );
  });
});
