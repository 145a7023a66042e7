import { promises as fsp } from 'fs';
import * as path from 'path';

export async function readText(file: string): Promise<string> {
  return fsp.readFile(file, 'utf8');
}

export async function readTrimmed(file: string): Promise<string> {
  return (await fsp.readFile(file, 'utf8')).trim();
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
