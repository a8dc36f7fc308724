import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics, createPostgres, type Sql } from "@titanium/kit";
import { memoryLogger, startTestPostgres, testTokens, type TestPostgres } from "@titanium/kit/testing";
import { createApp } from "./app.js";

// Writes that race each other on one category, against a real PostgreSQL. The empty-category clean-up
// after a delete (or a move) and a create into that category used to fail one side with
// `violates foreign key constraint "posts_category_id_fkey"`: a 500, and a rolled-back delete.

let pg: TestPostgres;
let pool: Sql;
let tokens: Awaited<ReturnType<typeof testTokens>>;
let app: ReturnType<typeof createApp>;
let alice: string;
let bob: string;

beforeAll(async () => {
  [pg, tokens] = await Promise.all([startTestPostgres(), testTokens()]);
  // More connections than the shared helper's 5, so the racing transactions really run side by side.
  pool = createPostgres({ url: pg.urlAs("blog_service"), max: 24 }); // the service's own role
  app = createApp({ sql: pool, verifier: tokens.verifier, logger: memoryLogger().logger, metrics: new Metrics("blog-service", { processMetrics: false }) });
  alice = await tokens.sign({ id: 1, username: "alice" });
  bob = await tokens.sign({ id: 2, username: "bob" });
});
afterAll(async () => {
  await pool?.end({ timeout: 1 });
  await pg?.stop();
});

type PostT = { id: number; author: string; category: { id: number; name: string; slug: string } };
type Cat = { id: number; name: string; slug: string; post_count: number };
const send = (method: string, path: string, token: string, body?: unknown) =>
  app.request(path, {
    method,
    ...(body !== undefined && { body: JSON.stringify(body) }),
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
  });
async function create(token: string, category_name: string): Promise<PostT> {
  const res = await send("POST", "/blog/api/posts", token, { title: "t", content: "c", category_name });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as PostT;
}
const categories = async () => (await (await app.request("/blog/api/categories")).json()) as Cat[];
const getPost = async (id: number) => app.request(`/blog/api/posts/${id}`);

/** Waits until some session waits for a lock (the request under test is parked behind the open transaction). */
async function someoneWaitsForALock(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const [row] = await pg.sql<{ n: number }[]>`select count(*)::int as n from pg_locks where not granted`;
    if (row!.n > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no session ever waited for a lock");
}

/** Runs `work` in a transaction that stays open until the returned `commit` is called. */
function openTransaction(work: (tx: Sql) => Promise<unknown>) {
  let commit!: () => void;
  const gate = new Promise<void>((r) => (commit = r));
  let ready!: () => void;
  const started = new Promise<void>((r) => (ready = r));
  const done = pool.begin(async (tx) => {
    await work(tx as unknown as Sql);
    ready();
    await gate;
  });
  return { started, commit, done };
}

describe("a delete or move that empties a category, racing a create into it", () => {
  it("a create waiting on a clean-up that removes its category makes the category again (201, not 500)", async () => {
    const only = await create(alice, "Parked create");
    // What a delete of the last post does, held open: the post and the emptied category are gone, uncommitted.
    const cleanup = openTransaction(async (tx) => {
      await tx`delete from posts where id = ${only.id}`;
      await tx`delete from categories where id = ${only.category.id}`;
    });
    await cleanup.started;
    const creating = send("POST", "/blog/api/posts", bob, { title: "t", content: "c", category_name: "Parked create" });
    await someoneWaitsForALock();
    cleanup.commit();
    await cleanup.done;
    const res = await creating;
    expect(res.status, await res.clone().text()).toBe(201);
    const post = (await res.json()) as PostT;
    expect(post.category.name).toBe("Parked create");
    expect(post.category.id).not.toBe(only.category.id);
    expect((await categories()).find((c) => c.name === "Parked create")).toMatchObject({ id: post.category.id, post_count: 1 });
  });

  it("a delete whose clean-up meets a create in flight keeps the category and still deletes (204, not 500)", async () => {
    const only = await create(alice, "Parked delete");
    // A create into the category, held open: its post references the category (and locks it for that).
    let arrived = 0;
    const creating = openTransaction(async (tx) => {
      const [row] = await tx<{ id: number }[]>`
        insert into posts (title, content, author, category_id) values ('t', 'c', 'bob', ${only.category.id}) returning id`;
      arrived = row!.id;
    });
    await creating.started;
    const deleting = Promise.resolve(send("DELETE", `/blog/api/posts/${only.id}`, alice));
    // Without the fix the clean-up waits for the create and then fails; with it, it never waits.
    const first = await Promise.race([deleting.then(() => "answered"), new Promise((r) => setTimeout(() => r("waiting"), 5000))]);
    creating.commit();
    await creating.done;
    const res = await deleting;
    expect(res.status, await res.clone().text()).toBe(204);
    expect(first).toBe("answered");
    expect((await getPost(only.id)).status).toBe(404);
    expect(((await (await getPost(arrived)).json()) as PostT).category).toMatchObject({ id: only.category.id, name: "Parked delete" });
  });

  it("survives many concurrent delete/create and move/create pairs: no 5xx, every delete and move done, every new post in its category", async () => {
    const ROUNDS = 24;
    const pair = async (round: number) => {
      const name = `Race ${round}`;
      const own = await create(alice, name);
      const move = round % 3 === 0; // every third round moves the only post away instead of deleting it
      const [away, created] = await Promise.all([
        move ? send("PATCH", `/blog/api/posts/${own.id}`, alice, { category_name: "Race target" }) : send("DELETE", `/blog/api/posts/${own.id}`, alice),
        send("POST", "/blog/api/posts", bob, { title: "t", content: "c", category_name: name }),
      ]);
      return { round, name, own, move, away: away.status, awayBody: await away.text(), created: created.status, post: (await created.json()) as PostT };
    };
    const results = [];
    // Eight pairs at a time, each pair racing on its own category.
    for (let i = 0; i < ROUNDS; i += 8) results.push(...(await Promise.all(Array.from({ length: 8 }, (_, k) => pair(i + k)))));
    for (const r of results) {
      expect(r.away, `${r.name}: ${r.awayBody}`).toBe(r.move ? 200 : 204);
      expect(r.created, `${r.name}: ${JSON.stringify(r.post)}`).toBe(201);
    }
    const cats = await categories();
    for (const r of results) {
      const own = await getPost(r.own.id);
      if (r.move) expect(((await own.json()) as PostT).category.name, r.name).toBe("Race target");
      else expect(own.status, r.name).toBe(404);
      const post = (await (await getPost(r.post.id)).json()) as PostT;
      expect(post.category, r.name).toEqual(r.post.category);
      expect(post.category.name, r.name).toBe(r.name);
      expect(cats.find((c) => c.id === post.category.id), r.name).toMatchObject({ name: r.name, post_count: 1 });
    }
    // Nothing references a category that is gone.
    const [orphans] = await pool<{ n: number }[]>`select count(*)::int as n from posts p where not exists (select 1 from categories c where c.id = p.category_id)`;
    expect(orphans!.n).toBe(0);
  });
});
