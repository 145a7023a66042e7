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

function chmodTree(dir: string, energyMode = 0o400): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) chmodTree(p, energyMode);
    else chmodSync(p, e === 'energy_uj' ? energyMode : 0o444);
  }
}

test('RAPL as an unprivileged user: one clear warning, source absent, no crash', () => {
  // As root the read is made by uid 65534 (root reads 0400 files anyway); otherwise by this user
  // with energy_uj at mode 000.
  const root = process.getuid?.() === 0;
  ensureBuilt();
  const tree = new FixtureTree();
  // A world-readable copy of the built exporter: the checkout itself may sit under a private home.
  const code = mkdtempSync(join(tmpdir(), 'jouleflow-dist-'));
  try {
    cpSync(join(ROOT, 'exporter', 'dist'), join(code, 'dist'), { recursive: true });
    chmodTree(code);
    chmodTree(tree.root, root ? 0o400 : 0o000);
    const script = `
      const { RaplSource } = require(${JSON.stringify(join(code, 'dist/sources/rapl.js'))});
      const { createLogger } = require(${JSON.stringify(join(code, 'dist/util/log.js'))});
      const src = new RaplSource(${JSON.stringify(tree.sysfs)}, createLogger('info', 'logfmt'));
      src.init().then((ok) => { process.stdout.write(String(ok)); }, (e) => { process.stdout.write('threw ' + e.message); });
    `;
    const ids = root ? { uid: NOBODY, gid: NOBODY } : {};
    const r = spawnSync(process.execPath, ['-e', script], { ...ids, encoding: 'utf8', cwd: code });
    expect(r.stdout).toBe('false');
    const lines = r.stderr.split('\n').filter((l) => l.length > 0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/level=warn msg="RAPL energy_uj is readable by root only \(CVE-2020-8694\)/);

    // With read access the zones are read.
    if (!root) chmodTree(tree.root, 0o444);
    const allowed = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: code });
    expect(allowed.stdout).toBe('true');
  } finally {
    rmSync(code, { recursive: true, force: true });
    tree.cleanup();
  }
});
