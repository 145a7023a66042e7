import { createHash, timingSafeEqual } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { IncomingMessage } from 'http';
import { peerUid } from './peer-uid';

/**
 * Who may do what with the jobs API (issue 10 §3). The caller is one of:
 *   - `token`: sent the configured bearer token → anything;
 *   - `local`: a process of this host, its uid read from the kernel's socket table (peer-uid.ts):
 *     root → anything; any other uid → register only processes and cgroups it owns, end only the
 *     jobs it registered, read the job list;
 *   - `remote`: anyone else → needs the token, for reads of the job list too (PIDs, cgroups and
 *     labels are nobody else's business).
 * A wrong token is refused (401), never silently treated as "no token" (when none is configured,
 * a bearer header is ignored).
 */

export type Caller = { kind: 'token' } | { kind: 'local'; uid: number } | { kind: 'remote' };

/** An HTTP refusal: status and message. */
export interface Denial {
  status: number;
  message: string;
  /** For 401: the WWW-Authenticate challenge. */
  challenge?: string;
}

export interface JobClaim {
  pids?: number[];
  cgroup?: string;
  gpus?: Array<string | number>;
  /** Seconds since the epoch. */
  start?: number;
}

export interface JobAccessOptions {
  /** Where /proc/PID and net/tcp are read (--path.procfs). */
  procfs: string;
  /** Where /sys/fs/cgroup is read (--path.sysfs). */
  sysfs: string;
  token?: string;
  /** Where the caller's socket is looked up; default `procfs` (tests point it elsewhere). */
  netProcfs?: string;
  clock?: () => number;
}

/** How far ahead of this host's clock a job `start` may be (clock skew between hosts). */
const FUTURE_SLACK_MS = 60_000;
/** Without a readable boot time: the oldest plausible start. */
const MAX_AGE_MS = 366 * 86_400_000;

const ROOT = 0;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class JobAccess {
  private readonly expected: Buffer | undefined;
  private readonly netProcfs: string;
  private readonly clock: () => number;

  constructor(private readonly opts: JobAccessOptions) {
    this.expected = opts.token ? digest(opts.token) : undefined;
    this.netProcfs = opts.netProcfs ?? opts.procfs;
    this.clock = opts.clock ?? Date.now;
  }

  /** Identifies the caller; a 401 denial for a wrong or malformed bearer token. */
  async identify(req: IncomingMessage): Promise<Caller | Denial> {
    const header = req.headers.authorization;
    const bearer = header !== undefined ? /^Bearer\s+(.+)$/i.exec(header) : null;
    // With no token configured a bearer proves nothing either way: the caller is judged by uid.
    if (bearer && this.expected) {
      if (timingSafeEqual(digest(bearer[1].trim()), this.expected)) return { kind: 'token' };
      return { status: 401, message: 'wrong bearer token (Authorization: Bearer <token>)', challenge: 'Bearer realm="jouleflow"' };
    }
    const s = req.socket;
    const uid = await peerUid(this.netProcfs, {
      localAddress: s.localAddress,
      localPort: s.localPort,
      remoteAddress: s.remoteAddress,
      remotePort: s.remotePort,
    });
    return uid === undefined ? { kind: 'remote' } : { kind: 'local', uid };
  }

  private remoteDenial(what: string): Denial {
    return this.expected
      ? {
          status: 401,
          message: `${what} from another host needs the bearer token (Authorization: Bearer <token>)`,
          challenge: 'Bearer realm="jouleflow"',
        }
      : {
          status: 403,
          message: `${what} from another host needs a bearer token: set --web.jobs-token-file or JOULEFLOW_JOBS_TOKEN on the exporter`,
        };
  }

  /** Reading jobs (their PIDs, cgroups, labels): this host's users and token holders. */
  mayRead(caller: Caller): Denial | undefined {
    return caller.kind === 'remote' ? this.remoteDenial('reading jobs') : undefined;
  }

  /**
   * Registering a job: checks the claim and returns the uid to store as the job's owner
   * (undefined for root and token holders: their jobs are ended by root or the token).
   */
  async admit(caller: Caller, claim: JobClaim): Promise<{ ownerUid?: number } | Denial> {
    if (caller.kind === 'remote') return this.remoteDenial('registering a job');
    const when = await this.checkStart(claim.start);
    if (when) return when;
    if (caller.kind === 'token' || caller.uid === ROOT) return {};
    const uid = caller.uid;
    const deny = (message: string): Denial => ({ status: 403, message: `uid ${uid}: ${message}` });
    if ((claim.gpus?.length ?? 0) > 0)
      return deny('a gpus job claims every process on those GPUs: only root or the token may register one');
    for (const pid of claim.pids ?? []) {
      if (pid === 1) return deny('PID 1 is the init process, not a job');
      const owner = await ownerOf(path.join(this.opts.procfs, String(pid)));
      // A missing process is the registry's "no such process" (400), not a permission question.
      if (owner !== undefined && owner !== uid) return deny(`process ${pid} belongs to uid ${owner}`);
    }
    if (claim.cgroup !== undefined) {
      const why = await this.cgroupRefusal(claim.cgroup, uid);
      if (why) return deny(why);
    }
    return { ownerUid: uid };
  }

  /** Ending a job: root and the token anything; a user the jobs it registered. */
  mayEnd(caller: Caller, job: { exists: boolean; ownerUid?: number }): Denial | undefined {
    if (caller.kind === 'remote') return this.remoteDenial('ending a job');
    if (caller.kind === 'token' || caller.uid === ROOT || !job.exists) return undefined;
    if (job.ownerUid === caller.uid) return undefined;
    return {
      status: 403,
      message:
        job.ownerUid === undefined
          ? `uid ${caller.uid}: this job was not registered by you (only root or the token may end it)`
          : `uid ${caller.uid}: this job belongs to uid ${job.ownerUid}`,
    };
  }

  /** A start in the plausible past: after this host booted (or a year ago) and not in the future. */
  private async checkStart(start: number | undefined): Promise<Denial | undefined> {
    if (start === undefined) return undefined;
    const now = this.clock();
    const ms = start * 1000;
    if (ms > now + FUTURE_SLACK_MS) {
      return { status: 400, message: `invalid job: start: ${start} is in the future (now ${Math.floor(now / 1000)})` };
    }
    const oldest = (await this.bootTimeMs()) ?? now - MAX_AGE_MS;
    if (ms < oldest) {
      return {
        status: 400,
        message: `invalid job: start: ${start} is before this host booted (${Math.floor(oldest / 1000)}); give seconds since the epoch`,
      };
    }
    return undefined;
  }

  private async bootTimeMs(): Promise<number | undefined> {
    try {
      const m = /^btime (\d+)$/m.exec(await fsp.readFile(path.join(this.opts.procfs, 'stat'), 'utf8'));
      return m ? Number(m[1]) * 1000 : undefined;
    } catch {
      return undefined;
    }
  }

  /** Why `uid` may not claim a cgroup (undefined: it may): it must exist and be the uid's, in every hierarchy. */
  private async cgroupRefusal(cgroup: string, uid: number): Promise<string | undefined> {
    const parts = cgroup.split('/').filter((p) => p !== '');
    if (parts.length === 0) return 'cgroup "/" is the whole machine';
    if (parts.some((p) => p === '..' || p === '.')) return `cgroup ${JSON.stringify(cgroup)}: no "." or ".." segments`;
    const base = path.join(this.opts.sysfs, 'fs/cgroup');
    // cgroup v2 (unified) first; on v1 every hierarchy that has the group must be the uid's.
    const unified = await fsp.access(path.join(base, 'cgroup.controllers')).then(
      () => true,
      () => false,
    );
    const hierarchies = unified ? [''] : ['', ...(await listDirs(base))];
    let found = 0;
    for (const h of hierarchies) {
      const owner = await ownerOf(path.join(base, h, ...parts));
      if (owner === undefined) continue;
      if (owner !== uid) return `cgroup ${cgroup} belongs to uid ${owner}`;
      found++;
    }
    return found === 0 ? `cgroup ${cgroup} does not exist under ${base} (only root or the token may claim one ahead of time)` : undefined;
  }
}

async function ownerOf(p: string): Promise<number | undefined> {
  try {
    const st = await fsp.stat(p);
    return st.isDirectory() ? st.uid : undefined;
  } catch {
    return undefined;
  }
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

export function isDenial(x: unknown): x is Denial {
  return typeof x === 'object' && x !== null && 'status' in x && 'message' in x;
}
