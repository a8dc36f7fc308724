import { chartName, containersOf, describeContainer, HELM_RELEASE_TYPES, objectName, podTemplate, splitPath, type Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";
import { containerSpecsAt, reportOpaqueRelease, walkValues } from "../lib/values";

/** A tag as the distribution spec allows it (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`): anything else is no tag a registry serves. */
const TAG = /^\w[\w.-]{0,127}$/;

/** The last path segment of a reference: its tag follows a ":" there (a registry port sits in the first segment). */
const lastSegment = (image: string): string => image.split("/").pop() ?? "";

/** Whether a reference claims a pin: a digest (`@`) or a tag (a ":" in its last segment, not a registry port's). */
export const claimsPin = (image: string): boolean => image.includes("@") || lastSegment(image).includes(":");

/** Why an image reference is not pinned, or undefined when it is (a tag other than `latest`, or a digest). */
export function imageProblem(image: unknown): string | undefined {
  if (typeof image !== "string" || image.trim() === "") return "has no image";
  // The digest algorithms the OCI image spec registers, each with its own length.
  if (/@(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(image)) return undefined;
  if (image.includes("@")) return `has a malformed digest (${image})`;
  const last = lastSegment(image);
  const colon = last.indexOf(":");
  if (colon < 0) return `is not pinned (${image} has no tag or digest, so it means :latest)`;
  const tag = last.slice(colon + 1);
  // An empty or invalid tag ("nginx:") is no pin: the runtime refuses it, or a chart drops it and pulls latest.
  if (!TAG.test(tag)) return `has a malformed tag (${image})`;
  if (tag === "latest") return `uses the mutable tag latest (${image})`;
  return undefined;
}

/** Whether a values path sits in an image object (`image.tag`, `prometheusOperator.image.version`). */
const inImageObject = (path: string): boolean => /image$/i.test(String(splitPath(path).at(-2) ?? ""));

/**
 * Image references in chart values: `image: "repo:tag"`, or an image object's `repository` (only there: a
 * `repository` elsewhere is a Git URL, `git@host:org/repo`), judged whenever they claim a tag or digest
 * ({@link claimsPin}); untagged they are left alone, since charts compose them with a tag of their own
 * (Istio's `image: pilot` with `global.hub`/`global.tag`).
 */
const isImageKey = (key: string, path: string): boolean => /^image$/i.test(key) || (key === "repository" && inImageObject(path));
/** Tag keys: `tag`, `imageTag`, `global.tag`, and an image object's `version` (`image: { version: latest }`). */
const isTagKey = (key: string, path: string): boolean => key === "tag" || /Tag$/.test(key) || (key === "version" && inImageObject(path));

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
          const tagKey = isTagKey(key, path);
          const imageKey = isImageKey(key, path);
          if (unknown) {
            if (tagKey || imageKey) judge.unknownValue(unknown);
            return;
          }
          if (tagKey && value === "latest") report(`values ${path} is "latest"`);
          if (imageKey && typeof value === "string" && claimsPin(value)) {
            const problem = imageProblem(value);
            if (problem) report(`values ${path} ${problem}`);
          }
          // A container spec in the values is rendered as written: its image is judged like a pod's
          // (untagged means latest; one that claims a pin is judged above, as its `image` key).
          judge.check(() => {
            for (const { path: at, container: c } of containerSpecsAt(path, value)) {
              const problem = imageProblem(c.image);
              if (problem && !claimsPin(c.image)) report(`values ${at} (container "${c.name}") ${problem}`);
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
