/**
 * Display metadata of a discovered job (docs/design.md, section 4): discovery only knows an id and a scheduler
 * (`slurm` job 42, `kubernetes` pod <uid>); the scheduler knows its name, user, account, namespace.
 * A resolver asks the scheduler once per job, off the sampling path, and the registry applies the
 * answer (jouleflow_job_info, the ledger row) when it comes. A resolver that is slow, failing or
 * absent leaves the placeholder name: it never delays a tick or loses a job.
 */

export interface JobMetadata {
  name?: string;
  user?: string;
  /** Extra labels stored with the job (partition, account, namespace, pod, …). */
  labels?: Record<string, string>;
}

export interface MetadataResolver {
  /** The scheduler whose job ids this resolver understands ('slurm', 'kubernetes'). */
  readonly scheduler: string;
  /** Metadata for a job id; undefined when the scheduler does not know it (yet). Must be bounded in time. */
  resolve(id: string): Promise<JobMetadata | undefined>;
  close?(): void;
}
