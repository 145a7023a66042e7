import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';

const CHUNK = 64 * 1024;

/**
 * A whole sysfs/procfs file as text, off the event loop. Sources read a few dozen of these every
 * tick: open, read to the end and close straight on the thread pool skip fs.promises.readFile's
 * fstat (0 bytes for these files anyway) and its FileHandle object.
 */
export function readText(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    fs.open(file, 'r', (err, fd) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      const done = (e: NodeJS.ErrnoException | null) =>
        fs.close(fd, () => (e ? reject(e) : resolve(Buffer.concat(chunks).toString('utf8'))));
      const next = () =>
        fs.read(fd, Buffer.allocUnsafe(CHUNK), 0, CHUNK, null, (e, n, buf) => {
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
  const text = await readTrimmed(file);
  // Strict: Number('') is 0, and a zero read from an empty file would look like a counter reset.
  if (!/^\d+$/.test(text)) throw new Error(`${file}: expected a non-negative integer, read "${text.slice(0, 40)}"`);
  return Number(text);
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

export function join(...parts: string[]): string {
  return path.join(...parts);
}

export function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}
