// One-shot migrations: node dist/migrate.js (any service image can run them; they are the same files).
import { runMigrationsCli } from "@titanium/kit";

await runMigrationsCli("auth-service");
