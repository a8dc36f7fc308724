/**
 * One way to install a platform chart: a pinned `helm.v3.Release` (ADR 0020) whose chart, version
 * and repository come from `config.charts`, whose workloads carry requests/limits from config,
 * and which waits until its workloads are ready before dependants start.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { TitaniumConfig } from "../../stacks/config";
import { CHARTS, type ChartKey, chartNamespace, withWorkloadResources } from "./chart-workloads";

export type ChartsConfig = TitaniumConfig["charts"];

/** Where a chart's persistent volumes live (`observability.diskType`), and so where their pods may run. */
export interface VolumePlacement {
  /** The volumes' StorageClass; undefined: the cluster's default (K3s' node-local `local-path`). */
  storageClassName?: pulumi.Input<string>;
  /** Node labels the pods with those volumes need (the agents, for Persistent Disks); empty: anywhere. */
  nodeSelector: Record<string, string>;
  /** The StorageClass, when there is one: the releases wait for it. */
  dependsOn: pulumi.Resource[];
}

/** Seconds Helm waits for a release's workloads (Prometheus with a fresh volume is the slowest). */
const RELEASE_TIMEOUT_SECONDS = 900;

/**
 * Text for a chart value the chart runs through Helm's `tpl` (Alloy's `alloy.configMap.content`),
 * escaped so it renders as itself: Helm would otherwise execute any `{{ ... }}` in it as a Helm
 * template (Alloy's own `stage.template` uses the same delimiters) and fail the release. Each
 * backtick-free run becomes one raw-string action, so no brace in the text can pair with a delimiter.
 */
export function helmTplLiteral(text: string): string {
  if (text.includes("\r")) throw new Error("helmTplLiteral: Go raw strings drop carriage returns; use \\n line ends");
  return text
    .split("`")
    .map((run) => `{{\`${run}\`}}`)
    .join('{{"`"}}');
}

export function chartRelease(
  name: string,
  key: ChartKey,
  charts: ChartsConfig,
  values: Record<string, unknown>,
  opts: pulumi.CustomResourceOptions,
): k8s.helm.v3.Release {
  const info = CHARTS[key];
  const pinned = charts[key];
  return new k8s.helm.v3.Release(
    name,
    {
      name: info.release,
      chart: info.chart,
      version: pinned.version,
      repositoryOpts: { repo: pinned.repository },
      namespace: chartNamespace(key),
      // Namespaces are Pulumi's (with their admission labels), never Helm's.
      createNamespace: false,
      values: withWorkloadResources(key, pinned.resources, values),
      timeout: RELEASE_TIMEOUT_SECONDS,
      // A failed install is rolled back rather than left half-applied; history stays small.
      atomic: true,
      cleanupOnFail: true,
      maxHistory: 5,
    },
    opts,
  );
}
