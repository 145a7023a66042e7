import { jobsTable } from './jobs';
import { buildReport, formatReport } from '../jobs/report';
import { emptyTotals } from '../jobs/ledger';

/** `jouleflow jobs ls/show` and the `run` report print API-given names: no terminal control sequences. */

test('job names and schedulers with escape sequences print as plain text', () => {
  const r = buildReport(
    {
      id: 'evil',
      name: 'a\u001b[2J\u001b]0;pwned\u0007b\r\u009bc',
      scheduler: 'x\u001b[31m',
      labels: {},
      spec: { source: 'api', pids: [1] },
      start: 1_800_000_000_000,
      totals: emptyTotals(),
      updated: 1_800_000_001_000,
    },
    true,
    1_800_000_002_000,
    { zone: 'test' },
  );
  for (const text of [jobsTable([r]), formatReport(r)]) {
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(text).toContain('a [2J ]0;pwned b  c');
  }
});
