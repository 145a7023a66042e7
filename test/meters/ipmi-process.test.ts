import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { parseConfig } from '../../exporter/src/config';
import { IpmiMeterSource } from '../../exporter/src/sources/meters/ipmi';
import { silentLogger } from '../../exporter/src/util/log';
import { sleep, tempDir } from './helpers';
import { alive } from '../helpers/process-alive';

/**
 * Issue 10 §5: the IPMI tool runs with a minimal environment (no JOULEFLOW_JOBS_TOKEN) and, on
 * timeout, its whole process group is killed (a wrapper's children do not outlive the read).
 * The "tool" is a shell script standing in for a wrapper around ipmitool.
 */

const dir = tempDir('ipmi-process');

function tool(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function meter(command: string, timeoutMs: number): IpmiMeterSource {
  const cfg = parseConfig({ cooling: { share: 1 }, meters: [{ name: 'bmc', protocol: 'ipmi', tool: 'ipmitool', command }] }).meters[0];
  return new IpmiMeterSource(cfg as never, timeoutMs, silentLogger);
}

test('the tool gets a minimal environment: PATH and LC_ALL, never the jobs token', async () => {
  process.env.JOULEFLOW_JOBS_TOKEN = 'token-that-must-not-leak';
  const envFile = join(dir, 'env.txt');
  const src = meter(tool('env-tool.sh', `env > ${envFile}\necho "    Instantaneous power reading:   250 Watts"`), 5000);
  try {
    expect(await src.init()).toBe(true);
    const r = await src.sample({ now: 0, signal: new AbortController().signal });
    expect(r.readings[0]).toMatchObject({ kind: 'power', watts: 250 });
    const names = readFileSync(envFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=')[0])
      .filter((n) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n)); // set by sh itself
    expect(names.sort()).toEqual(['LC_ALL', 'PATH']);
  } finally {
    delete process.env.JOULEFLOW_JOBS_TOKEN;
  }
});

test('on timeout the whole process group is killed, the wrapper’s children too', async () => {
  const pidFile = join(dir, 'grandchild.pid');
  // A wrapper that starts a long-lived child (as `sudo`/`ssh` wrappers do) and waits.
  // The timeout leaves a loaded machine time to start the wrapper and its child (a few ms idle).
  const src = meter(tool('hang-tool.sh', `sleep 300 &\necho $! > ${pidFile}\nwait`), 2000);
  await expect(src.init()).resolves.toBe(true); // unreachable at start: polled, the reads report why
  rmSync(pidFile, { force: true }); // the init probe's child: the read's own must be the one checked
  await expect(src.sample({ now: 0, signal: new AbortController().signal })).rejects.toThrow(/no answer within 2000ms/);
  expect(existsSync(pidFile)).toBe(true);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  for (const until = Date.now() + 10_000; alive(pid) && Date.now() < until;) await sleep(50);
  expect(alive(pid)).toBe(false);
}, 30_000);
