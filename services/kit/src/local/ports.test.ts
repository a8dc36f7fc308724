import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "./ports.js";

describe("freePort", () => {
  it("hands out distinct, bindable ports below the kernel's ephemeral range (outgoing connections never take them)", async () => {
    const [firstEphemeral] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 40 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(firstEphemeral!);
    }
    // Each one can really be bound.
    for (const port of ports.slice(0, 5)) {
      const s = createServer();
      await new Promise<void>((resolve, reject) => s.once("error", reject).listen(port, "127.0.0.1", resolve));
      await new Promise((r) => s.close(r));
    }
  });
});
