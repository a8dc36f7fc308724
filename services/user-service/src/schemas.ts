import { pgText, z } from "@titanium/kit";
import { isEmailAddress } from "./email.js";

/**
 * The original's reserved names (compared case-insensitively), plus the names a public path under
 * `/api/users/` already means: `health` (the gateway routes `GET /api/users/health` to the health check, so
 * such an account's profile could never be reached there).
 */
export const RESERVED_USERNAMES = ["admin", "root", "system", "api", "auth", "user", "blog", "www", "mail", "ftp", "localhost", "health"];
/** The original's accepted special characters. */
const SPECIALS = /[!@#$%^&*(),.?":{}|<>]/;

/** The longest username signup takes (the original's rule). */
export const USERNAME_MAX = 50;

export const Username = z
  .string()
  .min(3)
  .max(USERNAME_MAX)
  .regex(/^[A-Za-z0-9_]+$/, "only letters, digits and underscores")
  .refine((u) => !RESERVED_USERNAMES.includes(u.toLowerCase()), "this username is reserved")
  .openapi({ example: "alice" });

export const Password = z
  .string()
  .min(8)
  .max(200)
  .refine((p) => /[A-Z]/.test(p), "needs an uppercase letter")
  .refine((p) => /[a-z]/.test(p), "needs a lowercase letter")
  .refine((p) => /\d/.test(p), "needs a digit")
  .refine((p) => SPECIALS.test(p), 'needs a special character from !@#$%^&*(),.?":{}|<>')
  .openapi({ format: "password", example: "Str0ng!pass" });

/**
 * An e-mail address as the original's pydantic `EmailStr` took it (python email-validator's rules, see email.ts):
 * RFC 5322 atext local parts (`a=b@example.com`), internationalised local parts and domains (`ü@example.com`,
 * `a@пример.рф`), but no quoted local parts, `[IP]` domains, dotless or special-use domains, over-long parts or
 * invalid IDNA. Kept as sent (the original stored email-validator's normalized form; see email.ts).
 */
export const Email = pgText().max(255).refine(isEmailAddress, "Invalid email address").openapi({ format: "email", example: "alice@example.com" });

export const SignupBody = z.object({ username: Username, email: Email, password: Password }).openapi("Signup");

export const UserOut = z
  .object({ id: z.number().int(), username: z.string(), email: z.string() })
  .openapi("User");

/** The credential check's answer: the account, and the version of the password that was checked (its changes counted). */
export const CredentialsOut = UserOut.extend({ password_version: z.number().int() }).openapi("CheckedCredentials");

export const PublicProfile = z
  .object({
    id: z.number().int(),
    username: z.string(),
    created_at: z.string(),
    email: z.string().optional().openapi({ description: "only when the caller is this user" }),
  })
  .openapi("PublicProfile");

export const MeOut = z
  .object({ id: z.number().int(), username: z.string(), email: z.string(), created_at: z.string() })
  .openapi("Me");

export const PatchMeBody = z
  .object({
    email: Email.optional(),
    password: Password.optional(),
    current_password: z.string().min(1).max(200).optional().openapi({ format: "password" }),
  })
  .refine((b) => b.password === undefined || b.current_password !== undefined, {
    message: "required to change the password",
    path: ["current_password"],
  })
  .openapi("UpdateMe");

/** Login's credential check: no complexity rules, as the original (old passwords must still log in). */
export const CredentialsBody = z
  .object({ username: pgText().min(1).max(100), password: z.string().min(1).max(200) })
  .openapi("Credentials");
