import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { asUser, ensureTestUser } from '../../../test/helpers/test-user';
import { isDenial, JobAccess, type Caller, type Denial } from './job-access';

/** Who may register and end what: real processes of two users in the real /proc, cgroup trees on disk. */

jest.setTimeout(60_000);

const me = process.getuid!();
let sysfs: string;
let userProc: ChildProcess | undefined;
const user = ensureTestUser();

beforeAll(() => {
  sysfs = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-access-'));
  // A cgroup v1 layout: the same group in two hierarchies.
  for (const h of ['cpu', 'memory']) fs.mkdirSync(path.join(sysfs, 'fs/cgroup', h, 'train/job1'), { recursive: true });
  fs.mkdirSync(path.join(sysfs, 'fs/cgroup/cpu/other'), { recursive: true });
  if (!('skip' in user)) {
    for (const h of ['cpu', 'memory']) fs.chownSync(path.join(sysfs, 'fs/cgroup', h, 'train/job1'), user.uid, 0);
    const [cmd, ...args] = asUser(user.name, ['sleep', '60']);
    userProc = spawn(cmd, args, { stdio: 'ignore' });
  }
});

afterAll(() => {
  userProc?.kill('SIGKILL');
  fs.rmSync(sysfs, { recursive: true, force: true });
});

function access(token?: string): JobAccess {
  return new JobAccess({ procfs: '/proc', sysfs, token });
}

function denied(x: unknown): Denial {
  if (!isDenial(x)) throw new Error(`expected a denial, got ${JSON.stringify(x)}`);
  return x;
}

/** The PID of the process the test user runs (runuser forks it: the `sleep` child). */
async function userSleepPid(): Promise<number> {
  // Up to 30 s: runuser and sleep start slowly on a loaded machine.
  for (let i = 0; i < 600; i++) {
    for (const d of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8') === 'sleep\u000060\u0000' && fs.statSync(`/proc/${d}`).uid !== me)
          return Number(d);
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the test user’s sleep did not appear');
}

describe('JobAccess', () => {
  it('root and token holders may register anything, and own nothing', async () => {
    const root: Caller = { kind: 'local', uid: 0 };
    expect(await access().admit(root, { pids: [1] })).toEqual({});
    expect(await access().admit(root, { cgroup: '/' })).toEqual({});
    expect(await access().admit({ kind: 'token' }, { gpus: [0] })).toEqual({});
  });

  it('remote callers need the token: 403 when none is configured, 401 when one is', async () => {
    expect(denied(await access().admit({ kind: 'remote' }, { pids: [process.pid] })).status).toBe(403);
    expect(denied(await access('t').admit({ kind: 'remote' }, { pids: [process.pid] })).status).toBe(401);
    expect(access().mayRead({ kind: 'remote' })?.status).toBe(403);
    expect(access().mayRead({ kind: 'local', uid: 4321 })).toBeUndefined();
    expect(access().mayEnd({ kind: 'remote' }, { exists: true })?.status).toBe(403);
  });

  it('a user registers only its own processes and cgroups, never PID 1, "/" or GPUs', async () => {
    if ('skip' in user) return console.warn(`skipped: ${user.skip}`);
    const caller: Caller = { kind: 'local', uid: user.uid };
    const pid = await userSleepPid();
    expect(await access().admit(caller, { pids: [pid] })).toEqual({ ownerUid: user.uid });
    expect(denied(await access().admit(caller, { pids: [process.pid] })).message).toMatch(`belongs to uid ${me}`);
    expect(denied(await access().admit(caller, { pids: [1] })).message).toMatch(/PID 1/);
    expect(await access().admit(caller, { cgroup: '/train/job1/' })).toEqual({ ownerUid: user.uid });
    expect(denied(await access().admit(caller, { cgroup: '/other' })).message).toMatch(`belongs to uid ${me}`);
    expect(denied(await access().admit(caller, { cgroup: '/' })).message).toMatch(/whole machine/);
    expect(denied(await access().admit(caller, { cgroup: '/train/job1/../../other' })).message).toMatch(/\.\./);
    expect(denied(await access().admit(caller, { cgroup: '/nope' })).message).toMatch(/does not exist/);
    expect(denied(await access().admit(caller, { gpus: [0] })).status).toBe(403);
    // A group half the user's (one hierarchy chowned back to root) is not the user's.
    fs.chownSync(path.join(sysfs, 'fs/cgroup/memory/train/job1'), 0, 0);
    expect(denied(await access().admit(caller, { cgroup: '/train/job1' })).message).toMatch(`belongs to uid 0`);
    fs.chownSync(path.join(sysfs, 'fs/cgroup/memory/train/job1'), user.uid, 0);
  });

  it('a user ends only the jobs it registered; root ends any', () => {
    const a = access();
    expect(a.mayEnd({ kind: 'local', uid: 1234 }, { exists: true, ownerUid: 1234 })).toBeUndefined();
    expect(a.mayEnd({ kind: 'local', uid: 1234 }, { exists: true, ownerUid: 999 })?.message).toMatch(/belongs to uid 999/);
    expect(a.mayEnd({ kind: 'local', uid: 1234 }, { exists: true })?.status).toBe(403);
    expect(a.mayEnd({ kind: 'local', uid: 0 }, { exists: true, ownerUid: 999 })).toBeUndefined();
    expect(a.mayEnd({ kind: 'token' }, { exists: true })).toBeUndefined();
    expect(a.mayEnd({ kind: 'local', uid: 1234 }, { exists: false })).toBeUndefined(); // → the registry's 404
  });

  it('a start in the plausible past: not before boot, not in the future', async () => {
    const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))![1]);
    const root: Caller = { kind: 'local', uid: 0 };
    const now = Date.now() / 1000;
    expect(await access().admit(root, { pids: [process.pid], start: now - 1 })).toEqual({});
    expect(await access().admit(root, { pids: [process.pid], start: btime + 1 })).toEqual({});
    expect(denied(await access().admit(root, { pids: [process.pid], start: btime - 10 })).message).toMatch(/before this host booted/);
    expect(denied(await access().admit(root, { pids: [process.pid], start: now + 3600 })).message).toMatch(/in the future/);
    // Milliseconds given as seconds are far in the future.
    expect(denied(await access().admit(root, { pids: [process.pid], start: Date.now() })).status).toBe(400);
  });
});

describe('JobAccess.identify', () => {
  const req = (authorization?: string) =>
    ({
      headers: authorization ? { authorization } : {},
      socket: { localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 2 },
    }) as unknown as import('http').IncomingMessage;
  it('the right token → token; a wrong one → 401; with no token configured a bearer is ignored', async () => {
    const a = new JobAccess({ procfs: '/proc', sysfs, token: 's3cret', netProcfs: sysfs });
    expect(await a.identify(req('Bearer s3cret'))).toEqual({ kind: 'token' });
    expect(denied(await a.identify(req('Bearer nope'))).status).toBe(401);
    expect(await a.identify(req())).toEqual({ kind: 'remote' }); // no socket row under this procfs
    const none = new JobAccess({ procfs: '/proc', sysfs, netProcfs: sysfs });
    expect(await none.identify(req('Bearer whatever'))).toEqual({ kind: 'remote' });
  });
});
