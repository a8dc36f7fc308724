import { pgText, z } from "@titanium/kit";

/** The original's reserved names (compared case-insensitively). */
export const RESERVED_USERNAMES = ["admin", "root", "system", "api", "auth", "user", "blog", "www", "mail", "ftp", "localhost"];
/** The original's accepted special characters. */
const SPECIALS = /[!@#$%^&*(),.?":{}|<>]/;

export const Username = z
  .string()
  .min(3)
  .max(50)
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

export const Email = z.email().max(255).openapi({ example: "alice@example.com" });

export const SignupBody = z.object({ username: Username, email: Email, password: Password }).openapi("Signup");

export const UserOut = z
  .object({ id: z.number().int(), username: z.string(), email: z.string() })
  .openapi("User");

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
