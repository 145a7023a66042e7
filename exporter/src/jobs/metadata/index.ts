import type { Logger } from '../../util/log';
import { inClusterPodOptions, KubernetesPodResolver } from './kubernetes';
import { findOnPath, ScontrolResolver } from './scontrol';
import type { MetadataResolver } from './types';

export type { JobMetadata, MetadataResolver } from './types';
export { MetadataService } from './service';

/**
 * The resolvers this host supports: Slurm when `scontrol` is on PATH, Kubernetes when running in
 * a pod with a service account. Each absent one is one info line, not an error.
 */
export function defaultResolvers(
  discovery: { slurm: boolean; kubernetes: boolean },
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): MetadataResolver[] {
  const out: MetadataResolver[] = [];
  if (discovery.slurm) {
    const scontrol = findOnPath('scontrol', env.PATH ?? '');
    if (scontrol) out.push(new ScontrolResolver(scontrol));
    else log.info('Slurm job metadata off: no scontrol on PATH (discovered Slurm jobs keep their ids as names)');
  }
  if (discovery.kubernetes) {
    const opts = inClusterPodOptions(env, (env.JOULEFLOW_POD_LABELS ?? '').split(',').filter(Boolean));
    if ('off' in opts) log.info(`Kubernetes pod metadata off: ${opts.off}`);
    else out.push(new KubernetesPodResolver(opts));
  }
  return out;
}
