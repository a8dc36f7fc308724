/**
 * The one rule by which two usernames are the same account: usernames are ASCII (signup accepts only
 * `[A-Za-z0-9_]`, as the original did) and case-insensitive by ASCII case only. Every place that compares
 * or keys an account by a name a client typed folds it with this: the user-service's lookups (login's
 * credential check, profiles and their cache keys) and the gateway's per-account login limit. A Unicode
 * case mapping would not do: JavaScript's `toLowerCase()` maps "İ" (U+0130) to "i" + U+0307 while
 * PostgreSQL's `lower()` (C.UTF-8) maps it to "i", so a login name with "İ" matched an account under one
 * rule and was counted under another (the per-account limit multiplied by two per "i" in the name).
 * Here non-ASCII characters are kept as they are, so a name with one can never equal a stored username
 * (all ASCII): it matches no account, whatever either side's Unicode tables say.
 */
export function foldUsername(name: string): string {
  return name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}
