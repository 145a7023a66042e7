import { buildJobLink } from './links';
import { JobRow } from './rows';

const row = (over: Partial<JobRow> = {}): JobRow => ({
  key: 'j 1',
  id: 'j 1',
  name: 'name/x',
  kind: 'job',
  values: { compute: 1, transmit: 0, store: 0, cooling: 0, other: 0 },
  total: 1,
  invalid: [],
  jobCount: 1,
  ...over,
});

describe('buildJobLink', () => {
  it('substitutes the job id and name, URL-encoded, then dashboard variables', () => {
    const url = buildJobLink('/d/job?var-job_id=${job_id}&n=${job_name}&from=${__from}', row(), (s) =>
      s.replace('${__from}', '123')
    );
    expect(url).toBe('/d/job?var-job_id=j%201&n=name%2Fx&from=123');
  });
  it('gives no link without a template or for the others row', () => {
    expect(buildJobLink('', row())).toBeUndefined();
    expect(buildJobLink('/d/x?id=${job_id}', row({ kind: 'others' }))).toBeUndefined();
  });
  it('sanitises javascript: URLs', () => {
    expect(buildJobLink('javascript:alert(1)', row())).toBeUndefined();
  });
});
