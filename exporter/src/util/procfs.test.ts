import { readFileSync } from 'fs';
import { descriptorBudget, parseProcPidIo, parseProcPidStat } from './procfs';

/** proc(5) by the book: split after the last ')' and index the fields (field N is f[N - 3]). */
function bySplitting(text: string) {
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    pid: Number(text.slice(0, text.indexOf(' '))),
    ppid: Number(f[1]),
    state: f[0],
    cpuTicks: Number(f[11]) + Number(f[12]),
    childTicks: Number(f[13]) + Number(f[14]),
    starttime: Number(f[19]),
  };
}

describe('/proc/PID/stat', () => {
  test('the kernel’s own lines parse as proc(5) says', () => {
    for (const file of ['/proc/self/stat', '/proc/1/stat']) {
      const text = readFileSync(file, 'latin1');
      expect(parseProcPidStat(text)).toEqual(bySplitting(text));
    }
  });

  test('a command name with spaces and parentheses', () => {
    const text = '4242 (a) b (c)) R 7 4242 4242 0 -1 4194304 0 0 0 0 123 45 6 7 20 0 1 0 987654 1000 100 0\n';
    expect(parseProcPidStat(text)).toEqual({ pid: 4242, ppid: 7, state: 'R', cpuTicks: 168, childTicks: 13, starttime: 987654 });
  });

  test('truncated or garbled lines are refused, not read as zeroes', () => {
    expect(parseProcPidStat('')).toBeUndefined();
    expect(parseProcPidStat('12 (x) S 1 12 12 0 -1 0 0 0 0 0 5 5')).toBeUndefined();
    expect(parseProcPidStat('12 (x) S 1 12 12 0 -1 0 0 0 0 0 5x 5 0 0 20 0 1 0 99 0 0 0')).toBeUndefined();
  });
});

describe('/proc/PID/io', () => {
  test('read_bytes + write_bytes − cancelled_write_bytes, whatever the line order', () => {
    const io = 'rchar: 9\nwchar: 9\nsyscr: 1\nsyscw: 1\nread_bytes: 4096\nwrite_bytes: 12288\ncancelled_write_bytes: 4096\n';
    expect(parseProcPidIo(io)).toBe(12288);
    expect(parseProcPidIo('cancelled_write_bytes: 10\nwrite_bytes: 30\nread_bytes: 5')).toBe(25);
    expect(parseProcPidIo('read_bytes: 5\nwrite_bytes: 3\ncancelled_write_bytes: 100\n')).toBe(0);
    expect(parseProcPidIo('rchar: 1\n')).toBeUndefined();
  });

  test('this process’s own io file', () => {
    const text = readFileSync('/proc/self/io', 'latin1');
    const kv = Object.fromEntries(
      text
        .trim()
        .split('\n')
        .map((l) => l.split(/:\s*/)),
    );
    const expected = Math.max(0, Number(kv.read_bytes) + Number(kv.write_bytes) - Number(kv.cancelled_write_bytes));
    expect(parseProcPidIo(text)).toBe(expected);
  });
});

test('descriptor budget: half of the soft limit left after a reserve, capped', () => {
  const soft = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'latin1'))![1]);
  expect(descriptorBudget()).toBe(Math.max(0, Math.min(16_384, Math.floor((soft - 512) / 2))));
});
