import { spawnSync } from 'child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { FixtureTree } from '../helpers/fixture';
import { ROOT, ensureBuilt } from '../helpers/exporter-process';

/**
 * Modern kernels make energy_uj readable by root only (CVE-2020-8694). The RAPL source run by an
 * unprivileged user must say so in one clear line and report itself absent, so that the CPU model
 * takes over, instead of crashing or publishing zeros.
 */

const NOBODY = 65534;

function chmodTree(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) chmodTree(p);
    else chmodSync(p, e === 'energy_uj' ? 0o400 : 0o444);
  }
}

test('RAPL as an unprivileged user: one clear warning, source absent, no crash', () => {
  if (process.getuid?.() !== 0) throw new Error('this test switches to uid 65534 and must run as root (CI does)');
  ensureBuilt();
  const tree = new FixtureTree();
  // A world-readable copy of the built exporter: the checkout itself may sit under a private home.
  const code = mkdtempSync(join(tmpdir(), 'jouleflow-dist-'));
  try {
    cpSync(join(ROOT, 'exporter', 'dist'), join(code, 'dist'), { recursive: true });
    chmodTree(code);
    chmodTree(tree.root);
    const script = `
      const { RaplSource } = require(${JSON.stringify(join(code, 'dist/sources/rapl.js'))});
      const { createLogger } = require(${JSON.stringify(join(code, 'dist/util/log.js'))});
      const src = new RaplSource(${JSON.stringify(tree.sysfs)}, createLogger('info', 'logfmt'));
      src.init().then((ok) => { process.stdout.write(String(ok)); }, (e) => { process.stdout.write('threw ' + e.message); });
    `;
    const r = spawnSync(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', cwd: code });
    expect(r.stdout).toBe('false');
    const lines = r.stderr.split('\n').filter((l) => l.length > 0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/level=warn msg="RAPL energy_uj is readable by root only \(CVE-2020-8694\)/);

    // The same tree as root: the zones are read.
    const asRoot = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: code });
    expect(asRoot.stdout).toBe('true');
  } finally {
    rmSync(code, { recursive: true, force: true });
    tree.cleanup();
  }
});
