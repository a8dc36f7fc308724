// What every view gets from the app shell.
import { ApiError, type ApiClient } from "./api.js";
import type { Translator } from "./i18n.js";
import type { Route } from "./router.js";
import type { Session } from "./session.js";

export type ToastKind = "success" | "error" | "info";

export interface ViewContext {
  api: ApiClient;
  session: Session;
  tr: Translator;
  /** Aborted when the user navigates away: a view ignores late responses once it is. */
  signal: AbortSignal;
  /**
   * Shows `to`: a new history entry, or in place of the current one (`replace`). `back`: when the entry
   * before this one is `to` (the page this one was opened from), go back to it instead, so leaving a form
   * returns to the page it came from rather than stacking a second copy of that page in the history.
   */
  navigate(to: Route | string, opts?: { replace?: boolean; back?: boolean }): void;
  toast(message: string, kind?: ToastKind): void;
  /** Sets the document title and the view's heading text for screen readers. */
  setTitle(title: string): void;
}

/**
 * The server speaks English: the sentences the UI knows (by status, field and wording) are said in the UI's
 * language instead; anything else is the server's own text.
 */
function knownServerText(err: ApiError, field: string | null, text: string, tr: Translator): string | null {
  if (field === "username" && (err.status === 409 || /already (exists|taken)/i.test(text))) return tr.t("error.usernameTaken");
  if (field === "username" && /reserved/i.test(text)) return tr.t("error.usernameReserved");
  // An address the UI's shape check let through (`a@b.c`) and the user-service's stricter one refused.
  if (field === "email" && /invalid email/i.test(text)) return tr.t("auth.emailInvalid");
  if (field === null && err.status === 409 && /already (exists|taken)/i.test(text)) return tr.t("error.usernameTaken");
  if (field === null && err.status === 401 && /not signed in/i.test(text)) return tr.t("error.notSignedIn");
  return null;
}

/** What the server said about one field (its name prefix removed), in the UI's language where known. */
export function describeFieldError(err: ApiError, field: string, text: string, tr: Translator): string {
  return knownServerText(err, field, text, tr) ?? tr.t("error.fieldInvalid", { message: text });
}

/**
 * Whether a write failed because this tab is no longer signed in: its session expired (the shell has said so)
 * or is gone from storage (cleared or unreadable: said here). The view then sends the author to log in.
 */
export function signedOut(ctx: ViewContext, err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  if (err.kind === "session_expired") return true;
  if (err.kind !== "unauthorized" || ctx.session.get() !== null) return false;
  ctx.toast(ctx.tr.t("error.notSignedIn"), "error");
  return true;
}

/**
 * Why a change to the author's own post was refused with a 403. The blog-service says "Forbidden or post not
 * found" for both, so a post deleted meanwhile (in another tab, through the API) looked like someone else's:
 * "You are not allowed to do that". Asked again, the post tells which: "gone" when it no longer exists,
 * "refused" when it is still there (or the question failed); null when `err` is no 403.
 */
export async function refusedOwnPost(ctx: ViewContext, err: unknown, id: number): Promise<"gone" | "refused" | null> {
  if (!(err instanceof ApiError) || err.kind !== "forbidden") return null;
  try {
    await ctx.api.getPost(id);
    return "refused";
  } catch (again) {
    return again instanceof ApiError && again.kind === "not_found" ? "gone" : "refused";
  }
}

/** A user-facing sentence for any error a request can throw. */
export function describeError(err: unknown, tr: Translator): string {
  if (!(err instanceof ApiError)) return tr.t("error.server");
  if (err.status === 413) return tr.t("error.tooLarge");
  switch (err.kind) {
    case "network":
      return tr.t("error.network");
    case "rate_limited":
      return err.retryAfter !== null
        ? tr.t("error.rateLimited", { seconds: err.retryAfter })
        : tr.t("error.rateLimitedSoon");
    case "session_expired":
      return tr.t("error.sessionExpired");
    case "forbidden":
      return tr.t("error.forbidden");
    case "not_found":
      return tr.t("error.notFound");
    case "validation":
    case "conflict":
    case "unauthorized":
      // The server's own sentence names the problem (e.g. "Username already exists"), translated when known.
      return knownServerText(err, null, err.message, tr) ?? (err.message || tr.t("error.validation"));
    case "unavailable":
      return tr.t("error.unavailable", { seconds: err.retryAfter ?? 1 });
    case "in_doubt":
      // No "try again": the change may have been made, and sending it again could make it twice.
      return tr.t("error.inDoubt");
    case "server":
      return tr.t("error.server");
  }
}
