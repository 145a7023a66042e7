#!/usr/bin/env node
import { Command } from 'commander';
import type * as RunCli from './cli/run';
import type * as JobsCli from './cli/jobs';
import { addServeFlags, serve } from './cli/serve';
import { ConfigError } from './config';
import { VERSION } from './version';

/**
 * The other subcommands, loaded only when the command line may need them: `serve` starts faster
 * without the run/jobs client code (and the report's ledger reader) it never calls.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- commander registers subcommands synchronously */
const SUBCOMMANDS: Record<string, (program: Command) => void> = {
  run: (p) => (require('./cli/run') as typeof RunCli).addRunCommand(p),
  jobs: (p) => (require('./cli/jobs') as typeof JobsCli).addJobsCommand(p),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** The `jouleflow` command: subcommands register here. `argv` decides which are loaded (all but for `serve`). */
export function buildProgram(argv: readonly string[] = process.argv): Command {
  const program = new Command('jouleflow')
    .description('Energy per ML training job, as Prometheus metrics: compute, transmit, store and cooling.')
    .version(VERSION);
  addServeFlags(program.command('serve').description('run the exporter (sampling in the background, /metrics over HTTP)')).action(
    (opts: Record<string, unknown>) => serve(opts),
  );
  if (argv.slice(2).find((a) => !a.startsWith('-')) !== 'serve') for (const add of Object.values(SUBCOMMANDS)) add(program);
  return program;
}

export function fatal(err: unknown): never {
  const msg = err instanceof ConfigError ? err.message : `jouleflow: ${(err as Error).message ?? String(err)}`;
  process.stderr.write(`${msg}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}

if (require.main === module) {
  buildProgram().parseAsync(process.argv).catch(fatal);
}
