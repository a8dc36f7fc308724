#!/usr/bin/env node
// A stand-in for a CLI (pulumi, npm): appends its arguments as one JSON line to FAKE_LOG, prints
// FAKE_OUTPUT and exits with FAKE_EXIT (default 0).
import { appendFileSync } from "node:fs";

if (process.env.FAKE_LOG) appendFileSync(process.env.FAKE_LOG, `${JSON.stringify(process.argv.slice(2))}\n`);
if (process.env.FAKE_OUTPUT) process.stdout.write(process.env.FAKE_OUTPUT);
process.exit(Number(process.env.FAKE_EXIT ?? 0));
