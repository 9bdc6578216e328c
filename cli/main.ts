#!/usr/bin/env node
/**
 * The `lambda-ecs-worker` command (package.json `bin`). One command so far:
 *   lambda-ecs-worker local [--stack DIR] [--out DIR] [--json] [--config k=v] FILE...
 * runs a stack's worker offline (cli/local.ts). `npm run local` in this repository is an alias of it.
 */
import * as fs from "fs";
import * as path from "path";

import { PACKAGE_ROOT } from "../components/lambda-ecs-worker/package-root";

export const HELP = `usage: lambda-ecs-worker <command> [options]

commands:
  local [--stack DIR] [--out DIR] [--json] [--config KEY=VALUE]... FILE...
          run the stack's worker end to end on this machine, on an embedded AWS emulator (moto_server): each FILE is
          uploaded to the stack's bucket as a job; outputs land in --out (default ./out). No AWS account needed.
          \`lambda-ecs-worker local --help\` lists every option.

options:
  -h, --help     this help
  -v, --version  the package's version

Docs: the README of the lambda-ecs-worker package ("Use it from your own project").
`;

/** Runs the command line `argv` (after the program name); resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
    const [command, ...rest] = argv;
    switch (command) {
        case "local":
            return require("./local").main(rest);
        case "-v":
        case "--version":
            process.stdout.write(`${JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")).version}\n`);
            return 0;
        case undefined:
        case "-h":
        case "--help":
        case "help":
            process.stdout.write(HELP);
            return command === undefined ? 2 : 0;
        default:
            process.stderr.write(`lambda-ecs-worker: unknown command "${command}"\n\n${HELP}`);
            return 2;
    }
}

if (require.main === module) {
    run(process.argv.slice(2)).then((code) => process.exit(code));
}
