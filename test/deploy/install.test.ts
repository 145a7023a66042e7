import { execFile, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startServe } from '../helpers/exporter-process';

/**
 * The installable command. `npm ci` links `jouleflow` into node_modules/.bin (the bin target is a
 * committed launcher, present before any build); `npm pack -w exporter` gives a tarball that
 * `npm install -g --prefix <dir>` turns into a working `jouleflow` on PATH, native dependencies
 * (better-sqlite3, koffi) included: it serves /metrics, keeps a ledger, and `jobs ls` talks to it.
 */

jest.setTimeout(600_000);

const ROOT = path.resolve(__dirname, '../..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'exporter/package.json'), 'utf8')) as { version: string }).version;

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, timeout: 540_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    );
  });
}

it('npm ci linked node_modules/.bin/jouleflow to the committed launcher, which runs the built program', async () => {
  const link = path.join(ROOT, 'node_modules/.bin/jouleflow');
  expect(fs.realpathSync(link)).toBe(path.join(ROOT, 'exporter/bin/jouleflow.js'));
  const r = await run(link, ['--version']);
  expect(r).toMatchObject({ code: 0, out: `${VERSION}\n` });
});

it('the launcher says what to do when the program is not built', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-launcher-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.copyFileSync(path.join(ROOT, 'exporter/bin/jouleflow.js'), path.join(dir, 'bin/jouleflow.js'));
  const r = spawnSync(process.execPath, [path.join(dir, 'bin/jouleflow.js'), '--version'], { encoding: 'utf8' });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/dist\/main\.js is missing: run "npm run build" first/);
  fs.rmSync(dir, { recursive: true, force: true });
});

it('npm pack -w exporter → npm install -g → a working jouleflow on PATH', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-install-'));
  try {
    // As the README runs it: prepack builds dist/ first.
    const pack = await run('npm', ['pack', '-w', 'exporter', '--pack-destination', dir, '--json']);
    expect({ code: pack.code, err: pack.code === 0 ? '' : pack.err }).toEqual({ code: 0, err: '' });
    const [{ filename, files }] = JSON.parse(pack.out.slice(pack.out.indexOf('[\n'))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    expect(filename).toBe(`jouleflow-exporter-${VERSION}.tgz`); // the name the README installs
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['bin/jouleflow.js', 'dist/main.js', 'package.json']));
    expect(paths.filter((p) => /\.test\.|^src\//.test(p))).toEqual([]);

    const prefix = path.join(dir, 'prefix');
    const install = await run('npm', [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      path.join(dir, filename),
    ]);
    expect({ code: install.code, out: install.code === 0 ? '' : install.out + install.err }).toEqual({ code: 0, out: '' });
    const bin = path.join(prefix, 'bin/jouleflow');
    const env = { PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}` };
    expect(await run('jouleflow', ['--version'], { env, cwd: dir })).toMatchObject({ code: 0, out: `${VERSION}\n` });

    // It serves, with its native SQLite ledger: a job registered through the API is in `jobs ls`.
    const ledger = path.join(dir, 'jobs.db');
    const exp = await startServe([`--jobs.ledger=${ledger}`], {}, 60_000, bin);
    try {
      const metrics = await (await fetch(`${exp.url}/metrics`)).text();
      expect(metrics).toMatch(/^jouleflow_build_info\{.*version="0\.1\.0"/m);
      const reg = await fetch(`${exp.url}/api/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'installed-1', name: 'from npm', pids: [process.pid] }),
      });
      expect(reg.status).toBe(201);
      const ls = await run('jouleflow', ['jobs', 'ls', `--exporter.url=${exp.url}`], { env, cwd: dir });
      expect(ls.code).toBe(0);
      expect(ls.out).toMatch(/^installed-1\s+from npm\s+running/m);
    } finally {
      await exp.stop();
    }
    expect(fs.statSync(ledger).size).toBeGreaterThan(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
