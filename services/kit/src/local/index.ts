// Local infrastructure for tests and `npm start` (never imported by a service's production entry).
export * from "./access.js";
export * from "./files.js";
export * from "./ports.js";
export * from "./postgres.js";
export * from "./process.js";
export * from "./redis.js";
