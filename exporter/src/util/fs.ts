import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';

const CHUNK = 64 * 1024;
/** Asynchronous reads each get their own buffer (several run at once): most such files fit 16 KiB. */
const ASYNC_CHUNK = 16 * 1024;

// One buffer for every synchronous read: the main thread reads one file at a time, and a tick that
// reads thousands of /proc files must not allocate a buffer for each.
const SHARED = Buffer.allocUnsafe(CHUNK);

/**
 * The whole content of an open file, read from offset 0 into the shared buffer (files larger than it
 * are read in chunks and joined). Reads until the kernel returns 0: a short read is not the end of a
 * seq_file (/proc/diskstats and the like hand out about a page per read). `oneShow`: the kernel
 * makes the file in one piece (single_open: /proc/PID/stat and io, /proc/uptime, /proc/loadavg; a
 * sysfs attribute; a cgroup interface file), so a read shorter than the buffer is all of it, and the
 * second read (the one returning 0: a syscall per file, thousands a tick for the jobs) is skipped.
 */
export function readFdText(fd: number, encoding: BufferEncoding = 'utf8', oneShow = false): string {
  let len = 0;
  let chunks: Buffer[] | undefined;
  let offset = 0;
  for (;;) {
    const n = fs.readSync(fd, SHARED, len, SHARED.length - len, offset);
    if (n === 0) break;
    if (oneShow && !chunks && n < SHARED.length) return SHARED.toString(encoding, 0, n);
    len += n;
    offset += n;
    if (len === SHARED.length) {
      (chunks ??= []).push(Buffer.from(SHARED));
      len = 0;
    }
  }
  if (!chunks) return SHARED.toString(encoding, 0, len);
  chunks.push(Buffer.from(SHARED.subarray(0, len)));
  return Buffer.concat(chunks).toString(encoding);
}

/** procfs, sysfs and cgroupfs (v1, v2): every read at offset 0 makes the kernel generate the file afresh. */
const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;
const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_SUPER_MAGIC = 0x63677270;
const KERNEL_TYPES: ReadonlySet<number> = new Set([PROC_SUPER_MAGIC, SYSFS_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC]);

const isKernelType = (type: number) => KERNEL_TYPES.has(type);

function isKernelGenerated(file: string): boolean {
  try {
    return isKernelType(fs.statfsSync(file).type);
  } catch {
    return false;
  }
}

/**
 * Reads of small procfs and sysfs files through descriptors kept open between reads, where the
 * kernel regenerates the file on a read at offset 0 (procfs, sysfs and cgroupfs do). A kept read is one or two
 * `pread`s on the main thread, against open/read/close handed to libuv's pool and back for an
 * asynchronous read (≈ 2 µs against ≈ 120 µs of CPU per file, measured on the CI machine).
 *
 * Synchronous on procfs and sysfs only, for files whose read cannot block: RAPL energy_uj (a register
 * read), /proc/stat, /proc/diskstats, network statistics, /proc/PID/{stat,io} and cgroup counters are answered from
 * the kernel's memory, with no device, firmware or network round trip. Any other file (a fixture, a
 * FIFO standing in for a hung device, a network filesystem) is read by `read()` asynchronously on
 * the pool, where the sampler's timeout can report it; reads that can hang on real hardware (NVML,
 * InfiniBand MADs, meters, /proc/PID/environ) do not come here at all.
 *
 * A kept descriptor whose read fails (ENODEV: the device went away; ESRCH: the process exited) is
 * closed and the path opened again once, so a vanished file reports the same error as a fresh open.
 */
export class KernelFiles {
  private readonly kept = new Map<string, number>();
  /** Per directory: whether it is on procfs/sysfs (asked once, asynchronously: statfs can block on NFS). */
  private readonly kernelDirs = new Map<string, boolean>();

  /** `maxKept`: descriptors held at most (beyond it, files are opened for each read). */
  constructor(private readonly maxKept = Infinity) {}

  get keptCount(): number {
    return this.kept.size;
  }

  /**
   * The file's text, for a source's tick: synchronous through a kept descriptor on procfs/sysfs,
   * asynchronous elsewhere. Rejects like fs.readFile (ENOENT, EACCES, …).
   */
  async read(file: string, encoding: BufferEncoding = 'utf8'): Promise<string> {
    if (this.kept.has(file)) return this.text(file, encoding);
    return (await this.isKernelDir(path.dirname(file))) ? this.text(file, encoding) : readText(file, encoding);
  }

  /** A directory's entries, sorted (none when it does not exist): synchronously on procfs/sysfs. */
  async list(dir: string): Promise<string[]> {
    return (await this.isKernelDir(dir)) ? listDirSync(dir) : listDir(dir);
  }

  private async isKernelDir(dir: string): Promise<boolean | undefined> {
    let kernel = this.kernelDirs.get(dir);
    if (kernel === undefined) {
      kernel = await fsp.statfs(dir).then(
        (st) => isKernelType(st.type),
        () => undefined,
      );
      if (kernel !== undefined) this.kernelDirs.set(dir, kernel);
    }
    return kernel;
  }

  /** A file holding one non-negative integer (sysfs style), read as read() does. */
  async readNumber(file: string): Promise<number> {
    return parseCount(file, (await this.read(file)).trim());
  }

  /**
   * The file's text, synchronously (the jobs tracker's /proc/PID files, which it has always read on
   * the main thread); kept open on procfs/sysfs. Throws like fs.readFileSync.
   */
  text(file: string, encoding: BufferEncoding = 'utf8', oneShow = false): string {
    const fd = this.kept.get(file);
    if (fd !== undefined) {
      try {
        return readFdText(fd, encoding, oneShow);
      } catch {
        this.forget(file);
      }
    }
    const opened = fs.openSync(file, 'r');
    let keep = false;
    try {
      const text = readFdText(opened, encoding, oneShow);
      keep = this.kept.size < this.maxKept && isKernelGenerated(file);
      return text;
    } finally {
      if (keep) this.kept.set(file, opened);
      else fs.closeSync(opened);
    }
  }

  /** text(), or undefined when the file cannot be read (a process that exited, no permission). */
  textOrUndefined(file: string, encoding: BufferEncoding = 'utf8', oneShow = false): string | undefined {
    try {
      return this.text(file, encoding, oneShow);
    } catch {
      return undefined;
    }
  }

  /** Closes a kept descriptor (its process exited, its device is gone). */
  forget(file: string): void {
    const fd = this.kept.get(file);
    if (fd === undefined) return;
    this.kept.delete(file);
    try {
      fs.closeSync(fd);
    } catch {
      // already closed: nothing to release
    }
  }

  close(): void {
    for (const file of [...this.kept.keys()]) this.forget(file);
  }
}

function parseCount(file: string, text: string): number {
  // Strict: Number('') is 0, and a zero read from an empty file would look like a counter reset.
  if (!/^\d+$/.test(text)) throw new Error(`${file}: expected a non-negative integer, read "${text.slice(0, 40)}"`);
  return Number(text);
}

/**
 * A whole sysfs/procfs file as text, off the event loop: for reads that may block (InfiniBand MADs,
 * /proc/PID/environ) and one-time discovery. Open, read to the end and close straight on the thread
 * pool skip fs.promises.readFile's fstat (0 bytes for these files anyway) and its FileHandle object.
 */
export function readText(file: string, encoding: BufferEncoding = 'utf8'): Promise<string> {
  return new Promise((resolve, reject) => {
    fs.open(file, 'r', (err, fd) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      const done = (e: NodeJS.ErrnoException | null) =>
        fs.close(fd, () => (e ? reject(e) : resolve(Buffer.concat(chunks).toString(encoding))));
      const next = () =>
        fs.read(fd, Buffer.allocUnsafe(ASYNC_CHUNK), 0, ASYNC_CHUNK, null, (e, n, buf) => {
          if (e) return done(e);
          if (n > 0) chunks.push(buf.subarray(0, n));
          if (n === 0) return done(null);
          next();
        });
      next();
    });
  });
}

export async function readTrimmed(file: string): Promise<string> {
  return (await readText(file)).trim();
}

/** Reads a file holding one non-negative integer (sysfs style). */
export async function readNumber(file: string): Promise<number> {
  return parseCount(file, await readTrimmed(file));
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function listDirSync(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export function join(...parts: string[]): string {
  return path.join(...parts);
}

export function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}
