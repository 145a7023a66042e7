import { execFile, spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import { freePort } from '../helpers/free-port';
import * as os from 'os';
import * as path from 'path';

/**
 * A real single-node Slurm 22.05 cluster (Debian slurm-wlm + munge) in a temp dir, for the
 * integration suite: its own munged socket, ports, state, spool and logs, so it shares nothing
 * with a system Slurm. Recipe: ../shared/notes/cluster-peers.md. Every daemon started is stopped
 * by its PID in stop(), slurmd first (it waits for slurmctld to take the epilog's completion).
 */

export const ROOT = path.resolve(__dirname, '../..');
export const HOOK = path.join(ROOT, 'deploy/slurm/jouleflow-slurm-hook');

export type Proctrack = 'linuxproc' | 'cgroup';

export function slurmAvailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the real-Slurm suite needs root (slurmd runs jobs as their users)';
  for (const bin of ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch']) {
    if (!fs.existsSync(bin)) return `${bin} is missing: apt-get install slurm-wlm munge (see .ci/run)`;
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value; `what` (or its result, computed on failure) names what is awaited. */
export async function until<T>(
  fn: () => T | undefined | Promise<T | undefined>,
  what: string | (() => string),
  timeoutMs: number,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      const name = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${name}${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(200);
  }
}

export class Munge {
  readonly dir: string;
  readonly socket: string;
  private pid: number | undefined;

  constructor(base: string) {
    this.dir = path.join(base, 'munge');
    this.socket = path.join(this.dir, 'munge.socket');
  }

  async start(): Promise<void> {
    // munged insists that every client can reach its socket: the directory is 0755.
    fs.mkdirSync(this.dir, { recursive: true });
    fs.chmodSync(this.dir, 0o755);
    spawnSync('chown', ['munge:munge', this.dir]);
    const key = path.join(this.dir, 'munge.key');
    fs.copyFileSync('/etc/munge/munge.key', key);
    fs.chmodSync(key, 0o400);
    spawnSync('chown', ['munge:munge', key]);
    const pidFile = path.join(this.dir, 'munged.pid');
    // munged daemonizes; runuser waits for the parent, the PID file names the daemon.
    const r = spawnSync('runuser', [
      '-u',
      'munge',
      '--',
      '/usr/sbin/munged',
      `--socket=${this.socket}`,
      `--key-file=${key}`,
      `--pid-file=${pidFile}`,
      `--log-file=${path.join(this.dir, 'munged.log')}`,
      `--seed-file=${path.join(this.dir, 'munged.seed')}`,
    ]);
    if (r.status !== 0) throw new Error(`munged failed: ${r.stderr.toString()}`);
    this.pid = await until(() => Number(fs.readFileSync(pidFile, 'utf8').trim()) || undefined, 'munged pid file', 10_000);
  }

  stop(): void {
    if (this.pid) kill(this.pid);
    this.pid = undefined;
  }
}

function kill(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export interface ClusterOptions {
  base: string;
  munge: Munge;
  proctrack: Proctrack;
  /** Extra environment the prolog/epilog hook runs with (through a wrapper: slurmd clears it). */
  hookConf: string;
}

export class SlurmCluster {
  readonly dir: string;
  readonly conf: string;
  readonly node = os.hostname().split('.')[0];
  readonly env: NodeJS.ProcessEnv;
  private ctld: ChildProcess | undefined;
  private slurmd: ChildProcess | undefined;

  constructor(private readonly opts: ClusterOptions) {
    this.dir = path.join(opts.base, `slurm-${opts.proctrack}`);
    this.conf = path.join(this.dir, 'slurm.conf');
    this.env = { ...process.env, SLURM_CONF: this.conf };
  }

  async start(): Promise<void> {
    const d = this.dir;
    for (const sub of ['state', 'spool', 'log']) fs.mkdirSync(path.join(d, sub), { recursive: true });
    spawnSync('chown', ['-R', 'slurm:slurm', path.join(d, 'state'), path.join(d, 'log')]);
    fs.chmodSync(d, 0o755);
    fs.chmodSync(this.opts.base, 0o755);
    const hook = path.join(d, 'hook.sh');
    fs.writeFileSync(hook, `#!/bin/sh\nJOULEFLOW_SLURM_CONF=${this.opts.hookConf} exec ${HOOK} "$@"\n`, { mode: 0o755 });
    const [ctldPort, dPort] = [await freePort(), await freePort()];
    const cgroup = this.opts.proctrack === 'cgroup';
    const lines = [
      'ClusterName=jftest',
      // Job ids of the two variants never collide (a stray process of one is not a job of the other).
      `FirstJobId=${this.opts.proctrack === 'cgroup' ? 2000 : 1000}`,
      `SlurmctldHost=${this.node}(127.0.0.1)`,
      'SlurmUser=slurm',
      'SlurmdUser=root',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${this.opts.munge.socket}`,
      `StateSaveLocation=${d}/state`,
      `SlurmdSpoolDir=${d}/spool`,
      `SlurmctldPidFile=${d}/slurmctld.pid`,
      `SlurmdPidFile=${d}/slurmd.pid`,
      `SlurmctldLogFile=${d}/log/slurmctld.log`,
      `SlurmdLogFile=${d}/log/slurmd.log`,
      'MailProg=/bin/true',
      'MpiDefault=none',
      'SwitchType=switch/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SchedulerType=sched/backfill',
      'ReturnToService=2',
      'KillWait=5',
      `Prolog=${hook}`,
      `Epilog=${hook}`,
      cgroup ? 'ProctrackType=proctrack/cgroup' : 'ProctrackType=proctrack/linuxproc',
      cgroup ? 'TaskPlugin=task/cgroup,task/affinity' : 'TaskPlugin=task/none',
      cgroup ? 'JobAcctGatherType=jobacct_gather/cgroup' : 'JobAcctGatherType=jobacct_gather/none',
      `NodeName=${this.node} NodeAddr=127.0.0.1 CPUs=${os.cpus().length} RealMemory=2000 State=UNKNOWN`,
      `PartitionName=debug Nodes=${this.node} Default=YES MaxTime=INFINITE State=UP`,
    ];
    fs.writeFileSync(this.conf, lines.join('\n') + '\n');
    if (cgroup) {
      fs.writeFileSync(path.join(d, 'cgroup.conf'), 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=yes\n');
    }
    this.ctld = spawn('/usr/sbin/slurmctld', ['-D', '-i', '-f', this.conf], { env: this.env, stdio: 'ignore' });
    await until(async () => /UP/.test(await this.cmd('scontrol', ['ping']).catch(() => '')) || undefined, 'slurmctld UP', 30_000);
    this.slurmd = spawn('/usr/sbin/slurmd', ['-D', '-f', this.conf], { env: this.env, stdio: 'ignore' });
    await until(async () => (await this.cmd('sinfo', ['-h', '-o', '%t'])).trim() === 'idle' || undefined, 'node idle', 30_000);
  }

  /** Runs a Slurm client command against this cluster (as `user` when given). */
  cmd(bin: string, args: string[], user?: string): Promise<string> {
    const [file, argv] = user ? ['runuser', ['-u', user, '--', bin, ...args]] : [bin, args];
    return new Promise((resolve, reject) => {
      execFile(file, argv, { env: this.env, timeout: 20_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${bin} ${args.join(' ')}: ${stderr || err.message}`));
        else resolve(stdout);
      });
    });
  }

  /** sbatch → the job id. */
  async sbatch(args: string[], user?: string): Promise<string> {
    const out = await this.cmd('sbatch', ['--parsable', '--chdir=/tmp', ...args], user);
    const id = out.trim().split(';')[0];
    if (!/^\d+$/.test(id)) throw new Error(`sbatch: unexpected output ${out}`);
    return id;
  }

  /** The job's state as scontrol reports it (COMPLETED etc.; undefined once slurmctld forgot it). */
  async state(id: string): Promise<string | undefined> {
    const out = await this.cmd('scontrol', ['show', 'job', '-o', id]).catch(() => '');
    return /JobState=(\S+)/.exec(out)?.[1];
  }

  /** Cancels every job still queued or running and waits (bounded) until none is left. */
  async cancelAll(): Promise<void> {
    const ids = (await this.cmd('squeue', ['-h', '-o', '%A']).catch(() => '')).split('\n').filter((s) => /^\d+$/.test(s.trim()));
    if (ids.length === 0) return;
    await this.cmd('scancel', ids).catch(() => '');
    await until(async () => (await this.cmd('squeue', ['-h', '-o', '%A'])).trim() === '' || undefined, 'no job left', 30_000).catch(
      () => undefined,
    );
  }

  logs(): string {
    const read = (f: string) => {
      try {
        return fs
          .readFileSync(path.join(this.dir, 'log', f), 'utf8')
          .split('\n')
          .slice(-30)
          .join('\n');
      } catch {
        return '';
      }
    };
    return `--- slurmctld.log\n${read('slurmctld.log')}\n--- slurmd.log\n${read('slurmd.log')}`;
  }

  /** Stops slurmd, then slurmctld, each by its PID, waiting (bounded) for each to exit. */
  async stop(): Promise<void> {
    for (const child of [this.slurmd, this.ctld]) {
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      kill(child.pid!);
      const timer = setTimeout(() => kill(child.pid!, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    this.slurmd = this.ctld = undefined;
  }
}
