// One-shot migrations (Kubernetes Job / `npm start`): node dist/migrate.js
import { runMigrationsCli } from "@titanium/kit";

await runMigrationsCli("user-service");
