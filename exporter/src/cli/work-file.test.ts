import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { createServer, type Server } from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { buildReport, formatReport } from '../jobs/report';
import { showReport } from './jobs';
import { emptyTotals } from '../jobs/ledger';
import { applyWorkBody, workReport, WorkTally } from '../jobs/work';
import { exporterWorkSink, fmtJoulesPerUnit, formatWorkReport, WorkFile, workPricingFlags } from './work-file';

/**
 * A local HTTP server implementing the documented contract of POST /api/v1/jobs/{id}/work:
 * 200 on accept, 409 {"error"} on a lower total, 404 for an unknown job, 400 for a bad body,
 * 401 without the bearer token.
 */
function contractServer(jobId: string, token?: string) {
  const tally = new WorkTally();
  const seen: Array<{ status: number; body: unknown }> = [];
  const srv: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        seen.push({ status, body: text ? (JSON.parse(text) as unknown) : undefined });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      const m = /^\/api\/v1\/jobs\/([^/]+)\/work$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m) return send(404, { error: 'not found' });
      if (token && req.headers.authorization !== `Bearer ${token}`) return send(401, { error: 'missing bearer token' });
      if (decodeURIComponent(m[1]) !== jobId) return send(404, { error: `no job ${m[1]}` });
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return send(400, { error: 'body: not JSON' });
      }
      const r = applyWorkBody(tally, body);
      return send(r.status, r.body);
    });
  });
  return {
    tally,
    seen,
    listen: () =>
      new Promise<string>((res) => srv.listen(0, '127.0.0.1', () => res(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`))),
    close: () => new Promise<void>((res) => srv.close(() => res())),
  };
}

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'jf-work-test-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('WorkFile', () => {
  test('reads appended lines, keeps a partial line, applies increments and totals; finish removes the file', async () => {
    const warnings: string[] = [];
    const wf = new WorkFile((m) => warnings.push(m), dir);
    expect(existsSync(wf.path)).toBe(true);
    wf.start();
    appendFileSync(wf.path, 'tokens 1000\nsteps +1\nsteps +1\ntok');
    await wf.poll();
    expect(wf.tally.snapshot()).toEqual({ tokens: 1000, steps: 2 });
    appendFileSync(wf.path, 'ens 3000\n# a comment\ntokens 10\nsteps +1');
    expect(await wf.finish()).toEqual({ tokens: 3000, steps: 3 });
    expect(existsSync(wf.path)).toBe(false);
    expect(warnings).toEqual([
      expect.stringMatching(/line 5 ignored .*"# a comment"/),
      expect.stringMatching(/tokens total 10 is lower than the 3000/),
    ]);
  });

  test('a truncated file (> instead of >>) is read anew, with a warning and no lost total', async () => {
    const warnings: string[] = [];
    const wf = new WorkFile((m) => warnings.push(m), dir);
    writeFileSync(wf.path, 'tokens 123456\n');
    await wf.poll();
    writeFileSync(wf.path, 'tokens 9\n'); // shorter than what was read
    await wf.poll();
    // Re-read from the start: 9 < 123456 is refused, the total stays.
    expect(await wf.finish()).toEqual({ tokens: 123456 });
    expect(warnings[0]).toMatch(/truncated/);
  });

  test('forwards the latest total per unit to a server implementing the contract', async () => {
    const srv = contractServer('job-7', 's3cret');
    const base = await srv.listen();
    try {
      const warnings: string[] = [];
      const warn = (m: string) => warnings.push(m);
      const wf = new WorkFile(warn, dir);
      wf.start(exporterWorkSink(base, 'job-7', 's3cret', warn));
      for (let i = 1; i <= 50; i++) appendFileSync(wf.path, `tokens ${i * 16384}\nsteps +1\n`);
      await wf.finish();
      expect(srv.tally.snapshot()).toEqual({ tokens: 50 * 16384, steps: 50 });
      // Coalesced: never more requests than lines, every one accepted.
      expect(srv.seen.length).toBeLessThanOrEqual(100);
      expect(srv.seen.every((s) => s.status === 200)).toBe(true);
      expect(warnings).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  test('409 (the exporter holds a higher total) and 404 (unknown job) are reported; 404 stops forwarding', async () => {
    const srv = contractServer('job-7');
    const base = await srv.listen();
    try {
      srv.tally.setTotal('tokens', 1_000_000); // e.g. reported through the API by another client
      const warnings: string[] = [];
      const sink = exporterWorkSink(base, 'job-7', undefined, (m) => warnings.push(m));
      await sink('tokens', 5);
      expect(warnings[0]).toMatch(/refused tokens 5 \(409\): tokens total 5 is lower than the 1000000/);
      const unknown = exporterWorkSink(base, 'job-404', undefined, (m) => warnings.push(m));
      await unknown('tokens', 1);
      await unknown('tokens', 2);
      expect(warnings.slice(1)).toEqual([expect.stringMatching(/does not know job job-404 \(404\)/)]);
      expect(srv.seen.filter((s) => s.status === 404)).toHaveLength(1);
    } finally {
      await srv.close();
    }
  });

  test('an exporter without the endpoint (a plain 404 page) is told apart from an unknown job', async () => {
    // a plain 404 page, or the job API's own answer for a route it lacks (exporter/src/jobs/api.ts)
    let plain = true;
    const srv = createServer((_req, res) =>
      plain
        ? res.writeHead(404, { 'content-type': 'text/html' }).end('Cannot POST')
        : res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such API endpoint"}'),
    );
    const base = await new Promise<string>((r) =>
      srv.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`)),
    );
    try {
      const warnings: string[] = [];
      await exporterWorkSink(base, 'j', undefined, (m) => warnings.push(m))('tokens', 1);
      plain = false;
      await exporterWorkSink(base, 'j', undefined, (m) => warnings.push(m))('tokens', 1);
      expect(warnings).toEqual([
        expect.stringMatching(/has no work endpoint \(404\)/),
        expect.stringMatching(/has no work endpoint \(404\)/),
      ]);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test('an exporter that does not answer is reported, never thrown', async () => {
    const srv = contractServer('x');
    const base = await srv.listen();
    await srv.close(); // nothing listens there any more
    const warnings: string[] = [];
    await exporterWorkSink(base, 'x', undefined, (m) => warnings.push(m))('tokens', 1);
    expect(warnings[0]).toMatch(/forwarding tokens 1 failed/);
  });
});

describe('the report', () => {
  const totals = emptyTotals();
  totals.compute.measured = 65_536; // J
  totals.cooling.estimated = 36_700.16;
  const report = buildReport(
    {
      id: 'j',
      name: 'gpt2',
      scheduler: 'jouleflow-run',
      labels: {},
      spec: { source: 'run' },
      start: 0,
      end: 100_000,
      totals,
      updated: 100_000,
    },
    false,
    100_000,
    { zone: 'FR', gramsPerKwh: 56 },
  );

  test('J per unit per component, kWh / g CO₂ / cost per million units', () => {
    const [u] = workReport(report, { tokens: 16_384_000 }, { pricePerKwh: 0.25, currency: 'EUR', gramsPerKwh: 56 });
    expect(u.joulesPerUnit.compute).toBeCloseTo(0.004, 12); // 65 536 J / 16 384 000 tokens
    expect(u.joulesPerUnit.cooling).toBeCloseTo(36_700.16 / 16_384_000, 12);
    expect(u.joulesPerUnit.total).toBeCloseTo((65_536 + 36_700.16) / 16_384_000, 12);
    const kwhPerMillion = (65_536 + 36_700.16) / 16.384 / 3.6e6; // J per million tokens → kWh
    expect(u.perMillion.kwh).toBeCloseTo(kwhPerMillion, 12);
    expect(u.perMillion.gramsCo2).toBeCloseTo(kwhPerMillion * 56, 9);
    expect(u.perMillion.cost).toBeCloseTo(kwhPerMillion * 0.25, 12);
    expect(u.perMillion.currency).toBe('EUR');
    const text = formatWorkReport([u]);
    expect(text).toContain('work         16384000 tokens');
    expect(text).toMatch(/compute\s+4\.000 mJ\/token/);
    expect(text).toMatch(/total\s+6\.240 mJ\/token/); // (65 536 + 36 700.16) J / 16 384 000
    // 6.24 mJ × 10⁶ = 6 240 J = 0.001733 kWh; × 56 g/kWh; × 0.25 EUR/kWh
    expect(text).toContain('per million tokens: 0.001733 kWh, 0.09707 g CO2, 0.0004333 EUR');
  });

  test('a unit with no work gets no figure; no price, no cost', () => {
    expect(workReport(report, { steps: 0 }, {})).toEqual([]);
    expect(workReport(report, { steps: 10 }, {})[0].perMillion).toEqual({ kwh: expect.any(Number) });
  });

  test('jobs show prints the work lines when the exporter report carries work, and only then', () => {
    const work = workReport(report, { tokens: 16_384_000 }, {});
    expect(showReport({ ...report, work })).toBe(`${formatReport(report)}\n${formatWorkReport(work)}`);
    expect(showReport(report)).toBe(formatReport(report));
  });

  test('SI prefixes for small figures', () => {
    expect(fmtJoulesPerUnit(0.004)).toBe('4.000 mJ');
    expect(fmtJoulesPerUnit(1.2e-5)).toBe('12.000 µJ');
    expect(fmtJoulesPerUnit(0)).toBe('0.000 J');
    expect(fmtJoulesPerUnit(2500)).toBe('2.500 kJ');
  });

  test('--price-per-kwh must be a number ≥ 0, named in the error', () => {
    expect(workPricingFlags({ pricePerKwh: '0.25', currency: 'EUR' })).toEqual({ pricePerKwh: 0.25, currency: 'EUR' });
    for (const bad of ['', 'abc', '-1', 'Infinity']) expect(() => workPricingFlags({ pricePerKwh: bad })).toThrow(/--price-per-kwh/);
  });
});
