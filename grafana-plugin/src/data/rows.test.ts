import { BASIC_JOBS, expectedSplit, expectedTotal, INVALID_JOBS, manyJobs, seriesFrames } from '../fixtures';
import { extractSamples } from './extract';
import { buildRows, MAX_ROWS, OTHERS_KEY, RowsOptions, sortRows } from './rows';

const samplesOf = (jobs: typeof BASIC_JOBS) =>
  extractSamples(seriesFrames(jobs), {
    groupByLabel: 'job_id',
    splitLabel: 'component',
    nameLabel: 'job_name',
    inputUnit: 'joule',
    reducer: 'lastNotNull',
  }).samples;

const OPTS: RowsOptions = { sortBy: 'total', sortDesc: true, topN: 0, maxRows: MAX_ROWS };

describe('buildRows', () => {
  it('builds one row per job with per-component values, totals and names', () => {
    const { rows, jobCount, grandTotal } = buildRows(samplesOf(BASIC_JOBS), OPTS);
    expect(jobCount).toBe(5);
    expect(rows.map((r) => r.id)).toEqual(['j-101', 'j-102', 'j-103', 'j-104', 'unattributed']);
    for (const job of BASIC_JOBS) {
      const row = rows.find((r) => r.id === job.job_id)!;
      expect(row.values).toEqual(expectedSplit(job));
      expect(row.total).toBeCloseTo(expectedTotal(job));
      expect(row.name).toBe(job.job_name ?? job.job_id);
    }
    expect(grandTotal).toBeCloseTo(BASIC_JOBS.reduce((s, j) => s + expectedTotal(j), 0));
  });

  it('fills missing components with 0', () => {
    const row = buildRows(samplesOf(BASIC_JOBS), OPTS).rows.find((r) => r.id === 'j-103')!;
    expect(row.values.transmit).toBe(0);
    expect(row.invalid).toEqual([]);
  });

  it('keeps the unattributed job and marks it', () => {
    const row = buildRows(samplesOf(BASIC_JOBS), OPTS).rows.find((r) => r.id === 'unattributed')!;
    expect(row.kind).toBe('unattributed');
    expect(row.total).toBeCloseTo(0.9e6);
  });

  it('flags NaN and negative values as invalid without summing them', () => {
    const result = buildRows(samplesOf(INVALID_JOBS), OPTS);
    const bad = result.rows.find((r) => r.id === 'j-201')!;
    expect(bad.invalid.sort()).toEqual(['store', 'transmit']);
    expect(bad.total).toBe(3e6);
    expect(bad.values.transmit).toBe(0);
    const allBad = result.rows.find((r) => r.id === 'j-202')!;
    expect(allBad.total).toBe(0);
    expect(allBad.invalid.sort()).toEqual(['compute', 'cooling']);
    expect(result.invalidJobs).toBe(2);
    expect(Number.isFinite(result.grandTotal)).toBe(true);
  });

  it('sums duplicate series of the same job and component', () => {
    const s = samplesOf([{ job_id: 'a', values: { compute: 1 } }]);
    const { rows } = buildRows([...s, ...s], OPTS);
    expect(rows[0].values.compute).toBe(2);
  });

  it('sorts by total or name, ascending or descending, or keeps query order', () => {
    const s = samplesOf(BASIC_JOBS);
    expect(buildRows(s, { ...OPTS, sortDesc: false }).rows[0].id).toBe('unattributed');
    expect(buildRows(s, { ...OPTS, sortBy: 'name', sortDesc: false }).rows.map((r) => r.name)).toEqual([
      'bert-eval',
      'j-103',
      'llama-finetune',
      'resnet-sweep',
      'unattributed',
    ]);
    expect(buildRows(s, { ...OPTS, sortBy: 'none' }).rows.map((r) => r.id)).toEqual(BASIC_JOBS.map((j) => j.job_id));
    expect(sortRows([], 'total', true)).toEqual([]);
  });

  it('folds everything after top N into one "others" row, keeping unattributed', () => {
    const { rows, foldedJobs, grandTotal } = buildRows(samplesOf(BASIC_JOBS), { ...OPTS, topN: 2 });
    expect(rows.map((r) => r.key)).toEqual(['j-101', 'j-102', 'unattributed', OTHERS_KEY]);
    expect(foldedJobs).toBe(2);
    const others = rows[3];
    expect(others.jobCount).toBe(2);
    expect(others.name).toBe('Others (2 jobs)');
    expect(others.total).toBeCloseTo(2.25e6 + 1.2e6);
    expect(rows.reduce((s, r) => s + r.total, 0)).toBeCloseTo(grandTotal);
  });

  it('caps hundreds of jobs at maxRows even when top N is 0', () => {
    const { rows, jobCount, foldedJobs } = buildRows(samplesOf(manyJobs(500)), OPTS);
    expect(jobCount).toBe(500);
    expect(rows).toHaveLength(MAX_ROWS + 1);
    expect(foldedJobs).toBe(500 - MAX_ROWS);
    expect(rows[0].id).toBe('job-0499');
  });

  it('lists the components present, in canonical order', () => {
    expect(buildRows(samplesOf(BASIC_JOBS), OPTS).components).toEqual([
      'compute',
      'transmit',
      'store',
      'cooling',
      'other',
    ]);
    expect(buildRows(samplesOf([{ job_id: 'a', values: { cooling: 1, compute: 2 } }]), OPTS).components).toEqual([
      'compute',
      'cooling',
    ]);
  });

  it('returns no rows for no samples', () => {
    expect(buildRows([], OPTS)).toMatchObject({ rows: [], jobCount: 0, grandTotal: 0, components: [] });
  });
});
