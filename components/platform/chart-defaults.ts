import path from "node:path";

/**
 * The pinned charts' real default values (`values.yaml`, `values.schema.json` where shipped), copied
 * verbatim at each chart release's tag into `chart-defaults/<chart>/<version>/` (sources in its README.md,
 * the keys that matter in its NOTES.md). In the repository, so every checkout tests against them (the
 * pull request workflow's too); a chart upgrade adds its new version's folder (upgrades runbook).
 */
const CHART_DEFAULTS_DIR = path.join(__dirname, "chart-defaults");

/** The folder of one chart version's default values. */
export const chartDefaultsDir = (chart: string, version: string): string => path.join(CHART_DEFAULTS_DIR, chart, version);
