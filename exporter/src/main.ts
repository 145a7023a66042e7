#!/usr/bin/env node
import { Command } from 'commander';
import { addJobsCommand } from './cli/jobs';
import { addRunCommand } from './cli/run';
import { addServeFlags, serve } from './cli/serve';
import { ConfigError } from './config';
import { VERSION } from './version';

/** The `jouleflow` command: subcommands register here. */
export function buildProgram(): Command {
  const program = new Command('jouleflow')
    .description('Energy per ML training job, as Prometheus metrics: compute, transmit, store and cooling.')
    .version(VERSION);
  addServeFlags(program.command('serve').description('run the exporter (sampling in the background, /metrics over HTTP)')).action(
    (opts: Record<string, unknown>) => serve(opts),
  );
  addRunCommand(program);
  addJobsCommand(program);
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
