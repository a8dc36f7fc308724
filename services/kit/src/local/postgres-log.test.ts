import { describe, expect, it } from "vitest";
import { lineBuffered } from "./postgres.js";

describe("PostgreSQL's output as log lines (lineBuffered)", () => {
  const collect = () => {
    const lines: string[] = [];
    return { lines, feed: lineBuffered((l) => lines.push(l)) };
  };

  it("logs each line whole and once, however the chunks split it, and skips blank lines", () => {
    const { lines, feed } = collect();
    feed("LOG:  database sys");
    feed("tem is ready\n\nLOG:  checkpoint start");
    feed("ing\nLOG:  two\nLOG:  three  \n");
    expect(lines).toEqual(["LOG:  database system is ready", "LOG:  checkpoint starting", "LOG:  two", "LOG:  three"]);
  });

  it("drops initdb's closing advice (pg_ctl on a template folder deleted right after) and nothing else", () => {
    const { lines, feed } = collect();
    feed("syncing data to disk ... ok\n\nSuccess. You can now start the database server using:\n\n");
    feed("    '/x/bin/pg_ctl' -D /tmp/titanium-pg-template-1/cluster -l logfile start\n\n");
    feed("LOG:  starting PostgreSQL 18.1\nLOG:  pg_ctl is named here but is not initdb's advice\n");
    expect(lines).toEqual(["syncing data to disk ... ok", "LOG:  starting PostgreSQL 18.1", "LOG:  pg_ctl is named here but is not initdb's advice"]);
  });
});
