import { readHpcMapping } from './discovery';
import type { JobRegistry } from './registry';

/**
 * Jobs from a dcgm-exporter-style HPC job mapping directory (one file per GPU naming its job):
 * each job is discovered with the GPUs the mapping gives it, and ends when it leaves the mapping.
 * An unreadable directory (being replaced) says nothing about the jobs: ending them would be for good.
 */
export function syncHpcJobs(dir: string, registry: JobRegistry): void {
  const mapping = readHpcMapping(dir);
  if (!mapping) return;
  for (const [id, indexes] of mapping) {
    const job = registry.discovered({ id, name: `job ${id}`, scheduler: 'hpc' }, 'hpc');
    const gpus = indexes.map(String);
    if (job && job.gpus.join(',') !== gpus.join(',')) {
      job.gpus = gpus;
      registry.generation++;
    }
  }
  for (const job of registry.records()) if (job.source === 'hpc' && job.end === undefined && !mapping.has(job.id)) job.endRequested = true;
}
