import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** A writable fake procfs tree for tracker tests and benchmarks (same file formats as Linux). */

export interface FakeProcess {
  ppid: number;
  comm?: string;
  /** utime, stime, cutime, cstime in clock ticks. */
  utime?: number;
  stime?: number;
  cutime?: number;
  cstime?: number;
  starttime?: number;
  cgroup?: string;
  environ?: Record<string, string>;
  readBytes?: number;
  writeBytes?: number;
  cancelledWriteBytes?: number;
  netns?: string;
  netDev?: Record<string, { rx: number; tx: number }>;
}

export function statLine(pid: number, p: FakeProcess): string {
  const comm = p.comm ?? 'proc';
  // fields 3.. : state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
  //              priority nice num_threads itrealvalue starttime vsize rss ...
  const f = [
    'S',
    p.ppid,
    pid,
    pid,
    0,
    -1,
    4194304,
    0,
    0,
    0,
    0,
    p.utime ?? 0,
    p.stime ?? 0,
    p.cutime ?? 0,
    p.cstime ?? 0,
    20,
    0,
    1,
    0,
    p.starttime ?? 0,
    1000,
    100,
    0,
  ];
  return `${pid} (${comm}) ${f.join(' ')}\n`;
}

export function netDevText(devs: Record<string, { rx: number; tx: number }>): string {
  const head =
    'Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n';
  return (
    head +
    Object.entries(devs)
      .map(([n, d]) => `${n.padStart(6)}: ${d.rx} 0 0 0 0 0 0 0 ${d.tx} 0 0 0 0 0 0 0\n`)
      .join('')
  );
}

export class FakeProcfs {
  readonly root: string;
  readonly procs = new Map<number, FakeProcess>();

  constructor(root?: string) {
    this.root = root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'jf-fakeproc-'));
    fs.mkdirSync(path.join(this.root, 'self/ns'), { recursive: true });
    this.link(path.join(this.root, 'self/ns/net'), 'net:[4026531833]');
    this.uptime(1000);
  }

  private link(file: string, target: string): void {
    try {
      fs.unlinkSync(file);
    } catch {
      // absent
    }
    fs.symlinkSync(target, file);
  }

  uptime(seconds: number): void {
    fs.writeFileSync(path.join(this.root, 'uptime'), `${seconds.toFixed(2)} 100.00\n`);
  }

  set(pid: number, p: FakeProcess): void {
    this.procs.set(pid, p);
    const dir = path.join(this.root, String(pid));
    fs.mkdirSync(path.join(dir, 'ns'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'net'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'stat'), statLine(pid, p));
    fs.writeFileSync(path.join(dir, 'cgroup'), p.cgroup ?? '0::/\n');
    fs.writeFileSync(
      path.join(dir, 'environ'),
      Object.entries(p.environ ?? { PATH: '/usr/bin' })
        .map(([k, v]) => `${k}=${v}\0`)
        .join(''),
    );
    fs.writeFileSync(
      path.join(dir, 'io'),
      `rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: ${p.readBytes ?? 0}\nwrite_bytes: ${p.writeBytes ?? 0}\ncancelled_write_bytes: ${p.cancelledWriteBytes ?? 0}\n`,
    );
    this.link(path.join(dir, 'ns/net'), p.netns ?? 'net:[4026531833]');
    fs.writeFileSync(path.join(dir, 'net/dev'), netDevText(p.netDev ?? { lo: { rx: 0, tx: 0 } }));
  }

  update(pid: number, patch: Partial<FakeProcess>): void {
    const cur = this.procs.get(pid);
    if (!cur) throw new Error(`no fake process ${pid}`);
    this.set(pid, { ...cur, ...patch });
  }

  remove(pid: number): void {
    this.procs.delete(pid);
    fs.rmSync(path.join(this.root, String(pid)), { recursive: true, force: true });
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
