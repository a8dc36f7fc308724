export declare const SERVICES: readonly string[];
/** Bundle one service into services/<name>/dist; resolves with the output directory. */
export declare function buildService(name: string): Promise<string>;
/** Bundle the named services (default: all four); resolves with the milliseconds it took. */
export declare function buildAll(names?: readonly string[]): Promise<number>;
/** Bundle the patched PostgreSQL driver alone into `outfile` (default export: `postgres`); resolves with `outfile`. */
export declare function bundlePostgresDriver(outfile: string): Promise<string>;
