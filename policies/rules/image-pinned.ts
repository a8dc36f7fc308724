import { chartName, containersOf, describeContainer, HELM_RELEASE_TYPES, objectName, podTemplate, type Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";
import { containerSpecsAt, reportOpaqueRelease, walkValues } from "../lib/values";

/** Why an image reference is not pinned, or undefined when it is (a tag other than `latest`, or a digest). */
export function imageProblem(image: unknown): string | undefined {
  if (typeof image !== "string" || image.trim() === "") return "has no image";
  // The digest algorithms the OCI image spec registers, each with its own length.
  if (/@(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(image)) return undefined;
  if (image.includes("@")) return `has a malformed digest (${image})`;
  // The tag follows the last ":" of the last path segment (a registry port sits in the first one).
  const last = image.split("/").pop() ?? "";
  const colon = last.indexOf(":");
  if (colon < 0) return `is not pinned (${image} has no tag or digest, so it means :latest)`;
  if (last.slice(colon + 1) === "latest") return `uses the mutable tag latest (${image})`;
  return undefined;
}

/** Images pinned by tag or digest, never `latest` (containers of every pod-bearing kind, and chart values). */
export const imagePinned = resourcePolicy(
  {
    name: "k8s-image-pinned",
    description: "Every container image is pinned by tag or digest, never `latest` or untagged; Helm values never set an image tag `latest`.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use the immutable tag the image workflow publishes (`main-<sha7>`) or a digest (`titanium:images.digests`); for third-party images pin the exact version (`postgres:18.1-alpine`). In chart values leave `image.tag` to the pinned chart version or set an exact version.",
    configSchema: { properties: {} },
  },
  (args, judge, report) => {
    const props = args.props as Obj;
    if (HELM_RELEASE_TYPES.includes(args.type)) {
      judge.check(() => reportOpaqueRelease(props, chartName(props) ?? "(none)", report));
      judge.check(() => {
        walkValues(props.values, ({ path, key, value, unknown }) => {
          // `image.tag`, `global.tag`, `imageTag`, `image: "repo:tag"`: a chart's image keys.
          const tagKey = key === "tag" || /Tag$/.test(key);
          const imageKey = /^image$/i.test(key);
          if (unknown) {
            if (tagKey || imageKey) judge.unknownValue(unknown);
            return;
          }
          if (tagKey && value === "latest") report(`values ${path} is "latest"`);
          if (imageKey && typeof value === "string" && /:latest$/.test(value)) report(`values ${path} is ${value}`);
          // A container spec in the values is rendered as written: its image is judged like a pod's
          // (untagged means latest; a `:latest` one is reported above).
          judge.check(() => {
            for (const { path: at, container: c } of containerSpecsAt(path, value)) {
              const problem = imageProblem(c.image);
              if (problem && !/:latest$/.test(c.image)) report(`values ${at} (container "${c.name}") ${problem}`);
            }
          });
        });
      });
      return;
    }
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      for (const ref of containersOf(tpl.spec)) {
        judge.check(() => {
          const problem = imageProblem(ref.container.image);
          if (problem) report(`${objectName(props, args.name)} ${describeContainer(ref)} ${problem}`);
        });
      }
    });
  },
);
