import { textUtil } from '@grafana/data';

import { JobRow } from './rows';

/**
 * Builds the job dashboard URL of a row from the template option: ${job_id} and ${job_name} become the row's
 * URL-encoded values, then dashboard variables are interpolated. No link for the "others" row or an empty template.
 */
export function buildJobLink(
  template: string | undefined,
  row: JobRow,
  replaceVariables?: (value: string) => string
): string | undefined {
  if (!template || !template.trim() || row.kind === 'others') {
    return undefined;
  }
  const withJob = template
    .replace(/\$\{job_id\}/g, encodeURIComponent(row.id))
    .replace(/\$\{job_name\}/g, encodeURIComponent(row.name));
  const url = replaceVariables ? replaceVariables(withJob) : withJob;
  // sanitizeUrl blanks javascript:/data: URLs (it also decodes, so keep our encoded URL otherwise).
  const safe = textUtil.sanitizeUrl(url);
  return url.trim() && safe && safe !== 'about:blank' ? url : undefined;
}
