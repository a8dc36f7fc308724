// Where the UI lives in the URL space: one place for the server (serve.ts), the build (build.ts) and the app.

/** The UI's base path (the blog-service serves it here; `/` redirects to it). */
export const BASE_PATH = "/blog/";
/** Content-hashed assets, cached for a year. */
export const ASSETS_PATH = `${BASE_PATH}assets/`;
/** The blog API, which the UI must never shadow. */
export const BLOG_API_PATH = `${BASE_PATH}api/`;
