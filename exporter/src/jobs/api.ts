import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../util/log';
import type { Caller, Denial, JobAccess } from '../web/job-access';
import { isDenial } from '../web/job-access';
import { JOB_ID_RE } from './discovery';
import { GPU_UUID } from './gpu-shares';
import type { JobTracker } from './tracker';
import { JobError, type JobErrorKind } from './errors';
import { applyWorkBody } from './work';

/**
 * The jobs HTTP API (docs/design.md, section 4), mounted at /api/v1:
 *   POST /jobs            {id?, name, pids?, cgroup?, gpus?, labels?, start?} → 201 job
 *   POST /jobs/:id/end    [{exit_code?}] → 200 final report (after the job's last interval is measured)
 *   POST /jobs/:id/work   {unit, total} → 200; 400 bad body, 404 unknown job, 409 lower total or ended job
 *   GET  /jobs[?all=1][&limit=N][&cursor=C] → a page of live jobs (all=1: every job in the ledger),
 *                         ordered by start; `next_cursor` names the next page
 *   GET  /jobs/:id        → report: energy per component in J and kWh, duration, power, PUE, CO₂
 * Errors are JSON {"error": "..."} with a 4xx status. Who may call what: web/job-access.ts (this
 * host's users by uid, anyone else with the bearer token).
 */

const LABEL_KEY = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/**
 * A GPU by name: an index, a device label, or an NVIDIA GPU UUID (matched against the UUID NVML
 * reports with each process). MIG instance UUIDs are refused rather than never matched: a MIG
 * GPU's energy is read on the whole GPU and split by the memory each process holds.
 */
const GpuName = z.string().superRefine((s, ctx) => {
  if (/^(\d+|[A-Za-z][A-Za-z_-]*\d+)$/.test(s) || GPU_UUID.test(s)) return;
  ctx.addIssue({
    code: 'custom',
    message: /^MIG-/i.test(s)
      ? "gpus: MIG instance UUIDs are not supported (a MIG GPU is measured whole); give the GPU's index, device label or GPU- UUID"
      : 'gpus: an index (0), a device label (gpu0) or a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)',
  });
});

export const JobBody = z
  .object({
    id: z.string().regex(JOB_ID_RE, 'id: 1-128 characters of letters, digits and ._:@+=-, starting with a letter or digit').optional(),
    name: z.string().min(1, 'name must not be empty').max(1024),
    pids: z.array(z.number().int().positive()).max(4096).optional(),
    cgroup: z.string().startsWith('/', 'cgroup: an absolute cgroup path such as /slurm/uid_1000/job_42').max(4096).optional(),
    gpus: z
      .array(z.union([z.number().int().nonnegative(), GpuName]))
      .max(256)
      .optional(),
    labels: z
      .record(
        z
          .string()
          .regex(LABEL_KEY, 'label names: letters, digits, _ . -')
          // JSON.parse makes it an own key, but copying it onto an object would drop it silently.
          .refine((k) => k !== '__proto__', 'label name "__proto__" is not allowed'),
        z.string().max(1024),
      )
      .refine((r) => Object.keys(r).length <= 64, 'at most 64 labels')
      .optional(),
    /** Seconds since the epoch (the `run` wrapper sends its child's spawn time). */
    start: z.number().positive().optional(),
  })
  .strict()
  .refine((b) => (b.pids?.length ?? 0) > 0 || b.cgroup !== undefined || (b.gpus?.length ?? 0) > 0, {
    message: 'a job needs at least one of pids, cgroup or gpus',
  });

export type JobBodyInput = z.input<typeof JobBody>;

/** The optional body of an end call: the job's exit status (a Slurm epilog's job script). */
export const EndBody = z
  .object({ exit_code: z.number().int('exit_code: an integer').min(0).max(255, 'exit_code: 0 to 255').optional() })
  .strict();

export interface ApiOptions {
  registry: JobTracker;
  log: Logger;
  /** Who is calling and what they may do (web/job-access.ts). */
  access: JobAccess;
}

function deny(res: Response, d: Denial): void {
  if (d.challenge) res.setHeader('WWW-Authenticate', d.challenge);
  res.status(d.status).json({ error: d.message });
}

export function createJobsRouter(opts: ApiOptions): Router {
  const router = express.Router();

  /** Identifies the caller (res.locals.caller); reads need this host or the token. */
  const identify = (need: 'read' | 'write') => (req: Request, res: Response, next: NextFunction) => {
    opts.access.identify(req).then((caller) => {
      if (isDenial(caller)) return deny(res, caller);
      const refused = need === 'read' ? opts.access.mayRead(caller) : undefined;
      if (refused) return deny(res, refused);
      res.locals.caller = caller;
      next();
    }, next);
  };
  const auth = identify('write');

  const json = express.json({ limit: '64kb', type: () => true });

  router.get('/jobs', identify('read'), (req, res) => {
    const all = req.query.all === '1' || req.query.all === 'true';
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) {
      res.status(400).json({ error: 'limit: an integer from 1 to 1000' });
      return;
    }
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    try {
      res.json(opts.registry.list({ all, limit, cursor }));
    } catch (err) {
      sendError(res, err, opts.log);
    }
  });

  router.get('/jobs/:id', identify('read'), (req: Request<{ id: string }>, res) => {
    const r = opts.registry.get(req.params.id);
    if (!r) {
      res.status(404).json({ error: `no job "${req.params.id}"` });
      return;
    }
    res.json(r);
  });

  router.post('/jobs', auth, json, (req, res) => {
    const parsed = JobBody.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: `invalid job: ${issuesText(parsed.error)}` });
      return;
    }
    const b = parsed.data;
    void opts.access.admit(res.locals.caller as Caller, b).then(
      (admitted) => {
        if (isDenial(admitted)) return deny(res, admitted);
        try {
          const start = b.start !== undefined ? b.start * 1000 : undefined;
          const job = opts.registry.register({ ...b, start, source: 'api', ownerUid: admitted.ownerUid });
          res
            .status(201)
            .setHeader('Location', `jobs/${encodeURIComponent(job.id)}`)
            .json(job);
        } catch (err) {
          sendError(res, err, opts.log);
        }
      },
      (err: unknown) => sendError(res, err, opts.log),
    );
  });

  router.post('/jobs/:id/end', auth, json, (req: Request<{ id: string }>, res: Response) => {
    // No body (or an empty one) is {}: an end call without an exit code.
    const parsed = EndBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      res.status(400).json({ error: `invalid end request: ${issuesText(parsed.error)}` });
      return;
    }
    const refused = opts.access.mayEnd(res.locals.caller as Caller, opts.registry.ownerUidOf(req.params.id));
    if (refused) return deny(res, refused);
    opts.registry.end(req.params.id, { exitCode: parsed.data.exit_code }).then(
      (r) => res.json(r),
      (err) => sendError(res, err, opts.log),
    );
  });

  router.post('/jobs/:id/work', auth, json, (req: Request<{ id: string }>, res: Response) => {
    // Work reports follow the rule for ending a job: its owner, root or the token.
    const refused = opts.access.mayEnd(res.locals.caller as Caller, opts.registry.ownerUidOf(req.params.id));
    if (refused) return deny(res, refused);
    try {
      const r = applyWorkBody(opts.registry.workOf(req.params.id), req.body);
      res.status(r.status).json(r.body);
    } catch (err) {
      sendError(res, err, opts.log);
    }
  });

  router.use((_req, res) => {
    res.status(404).json({ error: 'no such API endpoint' });
  });

  // Body parser errors (malformed JSON, too large) as JSON too.
  router.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    void next;
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    res.status(status).json({ error: status === 500 ? 'internal error' : `invalid request body: ${err.message}` });
    if (status === 500) opts.log.error('jobs API failed', { err: err.message });
  });
  return router;
}

function issuesText(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** HTTP status of each kind of job error. */
const STATUS: Record<JobErrorKind, number> = { invalid: 400, not_found: 404, conflict: 409, cap: 429 };

function sendError(res: Response, err: unknown, log: Logger): void {
  if (err instanceof JobError) {
    res.status(STATUS[err.kind]).json({ error: err.message });
    return;
  }
  log.error('jobs API failed', { err: (err as Error).message });
  res.status(500).json({ error: 'internal error' });
}
