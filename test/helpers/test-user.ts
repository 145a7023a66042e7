import { spawnSync } from 'child_process';

/**
 * An unprivileged local user for permission tests ("jouleflow-test"), created with useradd when
 * the suite runs as root. Returns undefined with the reason when it cannot (not root): callers
 * skip with that message rather than pass.
 */

export const TEST_USER = 'jouleflow-test';

function uidOf(name: string): number | undefined {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

export function ensureTestUser(): { name: string; uid: number } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'not root: cannot create or switch to a second user (run as root to test per-user rules)' };
  let uid = uidOf(TEST_USER);
  if (uid === undefined) {
    const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER], { encoding: 'utf8' });
    uid = uidOf(TEST_USER); // a parallel suite may have created it in between
    if (uid === undefined) throw new Error(`useradd ${TEST_USER} failed: ${r.stderr}`);
  }
  return { name: TEST_USER, uid };
}

/** argv that runs `argv` as `user` (runuser keeps no root privileges). */
export function asUser(user: string, argv: string[]): string[] {
  return ['runuser', '-u', user, '--', ...argv];
}
