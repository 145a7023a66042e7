import { spawnSync } from 'child_process';
import Database from 'better-sqlite3';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { RunningExporter } from '../helpers/exporter-process';
import { Munge, SlurmCluster, slurmAvailable, until, type Proctrack } from './cluster';
import { parseScontrolJob, slurmMetadata } from '../../exporter/src/jobs/metadata/scontrol';
import { balance, jobEnergy, jobInfos, jobsShow, scrape, startExporter } from './exporter';

/**
 * jouleflow against a real Slurm 22.05 cluster (slurmctld + slurmd + munge, Debian slurm-wlm),
 * once with proctrack/linuxproc (no Slurm cgroups: jobs found by SLURM_JOB_ID in /proc/PID/environ)
 * and once with proctrack/cgroup (cgroup v1 paths /slurm_<node>/uid_<uid>/job_<id>). The shipped
 * deploy/slurm/jouleflow-slurm-hook is the prolog and epilog. Jobs are CPU burners that stop when
 * a flag file appears, so no assertion depends on timing.
 */

jest.setTimeout(240_000);

const unavailable = slurmAvailable();
const USER = 'jfslurm';
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-slurm-'));
const munge = new Munge(base);

/**
 * A CPU burner that runs until `flag` exists, or its directory is gone (the suite cleaned up),
 * or 120 s passed: a failed test leaves nothing running.
 */
function burner(flag: string): string {
  return `timeout 120 sh -c 'while [ ! -e ${flag} ] && [ -d ${path.dirname(flag)} ]; do :; done'`;
}

function ensureUser(): number {
  if (spawnSync('id', ['-u', USER]).status !== 0) spawnSync('useradd', ['--no-create-home', '--shell', '/bin/sh', USER]);
  return Number(spawnSync('id', ['-u', USER]).stdout.toString().trim());
}

(unavailable ? describe.skip : describe)('real Slurm', () => {
  beforeAll(async () => {
    ensureUser();
    fs.chmodSync(base, 0o755);
    await munge.start();
  });
  afterAll(() => {
    munge.stop();
    // JF_SLURM_KEEP=1 keeps the cluster's logs and ledgers for a look after a failure.
    if (!process.env.JF_SLURM_KEEP) fs.rmSync(base, { recursive: true, force: true });
  });

  describe.each<Proctrack>(['linuxproc', 'cgroup'])('proctrack/%s', (proctrack) => {
    const hookConf = path.join(base, `hook-${proctrack}.conf`);
    const hookLog = path.join(base, `hook-${proctrack}.log`);
    const flags = path.join(base, `flags-${proctrack}`);
    const ledger = path.join(base, `ledger-${proctrack}.db`);
    const cluster = new SlurmCluster({ base, munge, proctrack, hookConf });
    let exp: RunningExporter;

    const hookLines = () => (fs.existsSync(hookLog) ? fs.readFileSync(hookLog, 'utf8') : '');
    const metrics = () => scrape(exp);

    beforeAll(async () => {
      fs.mkdirSync(flags, { recursive: true, mode: 0o777 });
      fs.chmodSync(flags, 0o777);
      try {
        await cluster.start();
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${cluster.logs()}`);
      }
      exp = await startExporter(ledger, cluster.env);
      fs.writeFileSync(hookConf, `JOULEFLOW_URL=${exp.url}\nJOULEFLOW_TIMEOUT=2\nJOULEFLOW_SLURM_LOG=${hookLog}\n`);
    });
    afterAll(async () => {
      fs.rmSync(flags, { recursive: true, force: true });
      await cluster.cancelAll();
      await cluster.stop();
      await exp?.stop();
    });

    // After each test every burner it started is released, whatever happened: a failed test must
    // not hold the node's CPUs (each test uses its own flag names).
    const used = new Set<string>();
    const flagFor = (name: string) => {
      const f = path.join(flags, name);
      used.add(f);
      return f;
    };
    afterEach(() => {
      for (const f of used) fs.writeFileSync(f, '');
      used.clear();
    });

    /** Waits until a job is on /metrics as a Slurm job with its real name and user. */
    async function appears(id: string, name: string, user: string): Promise<void> {
      await until(
        async () => {
          const info = jobInfos(await metrics()).get(id);
          return info?.scheduler === 'slurm' && info.job_name === name && info.user === user ? info : undefined;
        },
        () => `job ${id} (${name}, ${user}) in jouleflow_job_info\n${exp.logs().slice(-2000)}`,
        60_000,
      );
    }

    async function ended(id: string): Promise<Record<string, unknown>> {
      await until(async () => (await metrics()).includes(`jouleflow_job_end_time_seconds{job_id="${id}"}`), `job ${id} ended`, 60_000);
      return jobsShow(exp, id);
    }

    it('a root job: real name and user, energy grows, Σ jobs + unattributed = node, ends on the epilog into the ledger', async () => {
      const flag = flagFor('root');
      const id = await cluster.sbatch(['--job-name=jf-root-train', '--output=/dev/null', `--wrap=${burner(flag)}`]);
      await appears(id, 'jf-root-train', 'root');
      // The resolver's parser on the real scontrol's answer.
      const fields = parseScontrolJob(await cluster.cmd('scontrol', ['show', 'job', '-o', id]));
      expect(slurmMetadata(fields)).toEqual({
        name: 'jf-root-train',
        user: 'root',
        labels: { partition: 'debug' }, // Account is (null) without accounting storage
      });
      const e1 = await until(async () => jobEnergy(await metrics(), id) || undefined, `energy of job ${id}`, 30_000);
      const e2 = await until(
        async () => {
          const e = jobEnergy(await metrics(), id);
          return e > e1 ? e : undefined;
        },
        () => `energy of job ${id} to grow past ${e1} J\n${exp.logs().slice(-3000)}`,
        30_000,
      );
      expect(e2).toBeGreaterThan(e1);
      for (const [component, [jobs, node]] of Object.entries(balance(await metrics()))) {
        expect({ component, jobs }).toEqual({ component, jobs: expect.closeTo(node, 6) });
        expect(node).toBeGreaterThan(0);
      }
      fs.writeFileSync(flag, '');
      const report = await ended(id);
      expect(report).toMatchObject({ id, name: 'jf-root-train', scheduler: 'slurm', user: 'root', state: 'ended' });
      expect((report.total as { joules: number }).joules).toBeGreaterThanOrEqual(e2 - 1e-6);
      // The ledger itself (what `jobs show` reads once the job leaves memory) has the same totals.
      const db = new Database(ledger, { readonly: true });
      const row = db.prepare('SELECT end_ms, totals FROM jobs WHERE id = ?').get(id) as {
        end_ms: number | null;
        totals: string;
      };
      db.close();
      expect(row.end_ms).not.toBeNull();
      // Totals are stored per component and method: their sum, here, is the report's total.
      const totals = JSON.parse(row.totals) as Record<string, Record<string, number>>;
      const j = Object.values(totals).reduce((a, byMethod) => a + Object.values(byMethod).reduce((b, v) => b + v, 0), 0);
      expect(j).toBeCloseTo((report.total as { joules: number }).joules, 6);
      // The epilog's exit code (the burner exits 0), kept even when the job ended with its last process first.
      await until(async () => (await jobsShow(exp, id)).exitCode === 0 || undefined, `exit code of job ${id} from the epilog`, 30_000);
      const db2 = new Database(ledger, { readonly: true });
      const spec = db2.prepare('SELECT spec FROM jobs WHERE id = ?').get(id) as { spec: string };
      db2.close();
      expect(JSON.parse(spec.spec)).toMatchObject({ exitCode: 0 });
      expect(hookLines()).toMatch(new RegExp(`prolog_slurmd job=${id}: register: .*HTTP 201`));
      expect(hookLines()).toMatch(new RegExp(`epilog_slurmd job=${id}: end \\(exit code 0\\): .*HTTP 200`));
    });

    it('a non-root job cancelled with scancel: its user, and it ends', async () => {
      const flag = flagFor('user');
      const id = await cluster.sbatch(['--job-name=jf-user-train', '--output=/dev/null', `--wrap=${burner(flag)}`], USER);
      await appears(id, 'jf-user-train', USER);
      await until(async () => jobEnergy(await metrics(), id) || undefined, `energy of job ${id}`, 30_000);
      await cluster.cmd('scancel', [id]);
      const report = await ended(id);
      expect(report).toMatchObject({ id, user: USER, scheduler: 'slurm', state: 'ended' });
      await until(async () => (await cluster.state(id)) === 'CANCELLED' || undefined, `Slurm to report job ${id} CANCELLED`, 30_000);
      fs.writeFileSync(flag, '');
    });

    it('an array job: each task is one job under its own SLURM_JOB_ID, found once', async () => {
      const flag = flagFor('array');
      const arrayId = await cluster.sbatch(['--job-name=jf-array', '--array=0-1', '--output=/dev/null', `--wrap=${burner(flag)}`]);
      // Task ids as Slurm reports them: the first task keeps the array's id, the other gets its own.
      const tasks = await until(
        async () => {
          const out = await cluster.cmd('squeue', ['-h', '-r', '-t', 'RUNNING', '-j', arrayId, '-o', '%A']);
          const ids = out
            .split('\n')
            .map((s) => s.trim())
            .filter(Boolean);
          return ids.length === 2 ? ids : undefined;
        },
        'both array tasks running',
        60_000,
      );
      for (const t of tasks) await appears(t, 'jf-array', 'root');
      const slurmJobs = [...jobInfos(await metrics()).values()].filter((i) => i.job_name === 'jf-array').map((i) => i.job_id);
      expect(slurmJobs.sort()).toEqual([...tasks].sort());
      fs.writeFileSync(flag, '');
      for (const t of tasks) expect(await ended(t)).toMatchObject({ id: t, state: 'ended' });
    });

    it('multi-node: exporters on two "nodes" (here one host) each report the job under the same id; sum by (job_id) adds them', async () => {
      if (proctrack !== 'linuxproc') return; // once is enough: discovery is the same
      const second = await startExporter(path.join(base, 'ledger-second.db'), cluster.env);
      try {
        const flag = flagFor('multi');
        const id = await cluster.sbatch(['--job-name=jf-multi', '--output=/dev/null', `--wrap=${burner(flag)}`]);
        await appears(id, 'jf-multi', 'root');
        // The second exporter has no prolog: it finds the job by SLURM_JOB_ID and asks scontrol.
        const info = await until(
          async () => {
            const i = jobInfos(await scrape(second)).get(id);
            return i?.job_name === 'jf-multi' ? i : undefined;
          },
          `job ${id} on the second exporter`,
          60_000,
        );
        expect(info).toMatchObject({ job_id: id, scheduler: 'slurm', user: 'root' });
        const [a, b] = await until(
          async () => {
            const e = [jobEnergy(await metrics(), id), jobEnergy(await scrape(second), id)];
            return e[0] > 0 && e[1] > 0 ? e : undefined;
          },
          `energy of job ${id} on both exporters`,
          30_000,
        );
        // What `sum by (job_id) (jouleflow_job_energy_joules_total)` over both instances returns.
        const summed = a + b;
        expect(summed).toBeGreaterThan(Math.max(a, b));
        fs.writeFileSync(flag, '');
        await ended(id);
      } finally {
        await second.stop();
      }
    });

    it('a two-step job (srun twice) is one job', async () => {
      const flag1 = flagFor('step1');
      const flag2 = flagFor('step2');
      const before = new Set(jobInfos(await metrics()).keys());
      const id = await cluster.sbatch(['--job-name=jf-steps', '--output=/dev/null', `--wrap=srun ${burner(flag1)}; srun ${burner(flag2)}`]);
      await appears(id, 'jf-steps', 'root');
      const e1 = await until(async () => jobEnergy(await metrics(), id) || undefined, `energy of job ${id} in step 0`, 30_000);
      fs.writeFileSync(flag1, '');
      // Step 1 runs in the same job: the job's energy keeps growing while it is not ended.
      await until(
        async () => {
          const steps = await cluster.cmd('squeue', ['-h', '-s', '-j', id, '-o', '%i']).catch(() => '');
          return steps.includes(`${id}.1`) || undefined;
        },
        `step ${id}.1 running`,
        60_000,
      );
      const e2 = await until(
        async () => {
          const t = await metrics();
          return jobEnergy(t, id) > e1 && !t.includes(`jouleflow_job_end_time_seconds{job_id="${id}"}`) ? jobEnergy(t, id) : undefined;
        },
        `energy of job ${id} to grow in step 1`,
        30_000,
      );
      expect(e2).toBeGreaterThan(e1);
      fs.writeFileSync(flag2, '');
      await ended(id);
      const added = [...jobInfos(await metrics()).keys()].filter((j) => !before.has(j) && j !== 'unattributed');
      expect(added).toEqual([id]);
    });
  });
});

if (unavailable) {
  test.skip(`real Slurm suite skipped: ${unavailable}`, () => undefined);
}
