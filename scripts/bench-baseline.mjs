// The benchmark's baseline: a bare Hono endpoint on @hono/node-server, in its own process.
import { serve } from "@hono/node-server";
import { Hono } from "hono";

const app = new Hono().get("/", (c) => c.json({ ok: true }));
const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: "127.0.0.1" }, (info) =>
  console.log(JSON.stringify({ listening: info.port })),
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
