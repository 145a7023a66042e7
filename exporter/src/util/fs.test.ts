import { execFileSync, spawn } from 'child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { KernelFiles } from './fs';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'jouleflow-fs-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const uptime = (text: string) => Number(text.split(' ')[0]);

describe('KernelFiles', () => {
  test('procfs: the descriptor is kept, and each read is the kernel’s current content', async () => {
    const files = new KernelFiles();
    const first = uptime(files.text('/proc/uptime'));
    expect(files.keptCount).toBe(1);
    // /proc/uptime advances every 10 ms; wait (bounded) until a kept read sees it move.
    let later = first;
    const until = Date.now() + 10_000;
    while (later === first && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
      const before = uptime(readFileSync('/proc/uptime', 'latin1'));
      later = uptime(files.text('/proc/uptime'));
      const after = uptime(readFileSync('/proc/uptime', 'latin1'));
      expect(later).toBeGreaterThanOrEqual(before);
      expect(later).toBeLessThanOrEqual(after);
    }
    expect(later).toBeGreaterThan(first);
    expect(files.keptCount).toBe(1);
    files.close();
    expect(files.keptCount).toBe(0);
  });

  test('a kept /proc/PID file of a process that exited fails like a fresh open, and is released', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = child.pid!;
    const files = new KernelFiles();
    const stat = `/proc/${pid}/stat`;
    expect(files.text(stat).startsWith(`${pid} (sleep) `)).toBe(true);
    expect(files.keptCount).toBe(1);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited; // reaped by Node: the PID is gone
    expect(() => files.text(stat)).toThrow();
    expect(files.keptCount).toBe(0);
    expect(files.textOrUndefined(stat)).toBeUndefined();
  });

  test('regular files (fixtures) are opened for every read: a file replaced by rename is read anew', async () => {
    const files = new KernelFiles();
    const f = join(dir, 'energy_uj');
    writeFileSync(f, '100\n');
    expect(await files.readNumber(f)).toBe(100);
    expect(files.text(f)).toBe('100\n');
    expect(files.keptCount).toBe(0);
    writeFileSync(`${f}.tmp`, '250\n');
    renameSync(`${f}.tmp`, f);
    expect(await files.readNumber(f)).toBe(250);
  });

  test('read(): procfs through a kept descriptor; elsewhere on the pool, so a FIFO that never answers blocks no one', async () => {
    const files = new KernelFiles();
    expect(uptime(await files.read('/proc/uptime'))).toBeGreaterThan(0);
    expect(files.keptCount).toBe(1);
    const fifo = join(dir, 'energy_uj');
    execFileSync('mkfifo', [fifo]);
    let settled = false;
    const hung = files.read(fifo).finally(() => (settled = true));
    // The event loop keeps turning while the read waits for a writer.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    closeSync(openSync(fifo, 'w')); // a writer comes and goes: the read ends (EOF)
    expect(await hung).toBe('');
    expect(files.keptCount).toBe(1);
    expect(await files.list(dir)).toEqual(['energy_uj']);
    expect(await files.list('/proc/self/fdinfo/../fd').then((l) => l.length)).toBeGreaterThan(0);
    files.close();
  });

  test('files larger than the shared buffer are read whole', () => {
    const f = join(dir, 'big');
    const text = Array.from({ length: 30_000 }, (_, i) => `line ${i}`).join('\n'); // ≈ 250 kB
    writeFileSync(f, text);
    expect(new KernelFiles().text(f)).toBe(text);
  });

  test('oneShow: files the kernel makes in one piece are read whole in one read; larger ones still whole', () => {
    const k = new KernelFiles();
    for (const f of ['/proc/self/stat', '/proc/self/io', '/proc/loadavg', '/proc/self/status']) {
      const a = k.text(f, 'latin1', true);
      const b = readFileSync(f, 'latin1');
      // The same fields (counters tick between the two reads): same line count and first field.
      expect(a.split('\n').length).toBe(b.split('\n').length);
      expect(a.split(' ')[0]).toBe(b.split(' ')[0]);
    }
    const big = join(dir, 'big');
    const text = Array.from({ length: 30_000 }, (_, i) => `line ${i}`).join('\n');
    writeFileSync(big, text);
    expect(k.text(big, 'utf8', true)).toBe(text);
  });

  test('readNumber() is strict: an empty or non-numeric file is an error, not 0', async () => {
    const files = new KernelFiles();
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'word'), 'N/A\n');
    await expect(files.readNumber(join(dir, 'empty'))).rejects.toThrow(/expected a non-negative integer/);
    await expect(files.readNumber(join(dir, 'word'))).rejects.toThrow(/expected a non-negative integer/);
    await expect(files.readNumber(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('keeps at most maxKept descriptors; the rest are opened per read', () => {
    const files = new KernelFiles(1);
    expect(uptime(files.text('/proc/uptime'))).toBeGreaterThan(0);
    expect(files.text('/proc/self/stat')).toMatch(/^\d+ \(/);
    expect(files.keptCount).toBe(1);
    files.close();
  });
});
