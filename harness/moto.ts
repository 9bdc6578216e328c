/** Starts `moto_server` for tests and benchmarks: the CLI's own (`cli/local/moto.ts`), which `local` runs on. */
export * from "../cli/local/moto";
