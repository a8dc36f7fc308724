/**
 * Titanium's CrossGuard policy pack: `pulumi preview --policy-pack policies
 * --policy-pack-config policies/config.<stack>.json`. This file only constructs the pack; the
 * policies live in `rules/` and are listed in `policies.ts`, which tests and the offline plan use.
 */
import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, policies } from "./policies";

new PolicyPack(PACK_NAME, { policies, enforcementLevel: "advisory" });
