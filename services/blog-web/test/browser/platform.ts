// The platform the browser tests drive: the one at BLOG_WEB_BASE_URL when set (e.g. `npm start`'s gateway).
export interface Platform {
  /** Origin of the public entry (the gateway), e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  stop(): Promise<void>;
}

export async function startPlatform(): Promise<Platform> {
  const url = process.env.BLOG_WEB_BASE_URL;
  if (!url) throw new Error("BLOG_WEB_BASE_URL is not set");
  return { baseUrl: url.replace(/\/$/, ""), stop: async () => {} };
}
