import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { open, type FileHandle } from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import type { Command } from 'commander';
import { ConfigError } from '../config';
import { COMPONENTS } from '../core';
import { WorkLineReader, WorkTally, type UnitReport, type WorkPricing } from '../jobs/work';

/**
 * `jouleflow run`'s side of energy per unit of work: the wrapped command gets JOULEFLOW_WORK_FILE,
 * a fresh file it appends lines to (`tokens 5554176`, `steps +1`); the wrapper tails it, keeps the
 * totals (jobs/work.ts) and forwards them to the exporter, and adds energy per unit to the report.
 */

export const WORK_FILE_ENV = 'JOULEFLOW_WORK_FILE';
/** How often the file is looked at: a timer, never a busy loop (a trainer reports per step, not per µs). */
export const WORK_POLL_MS = 250;
/** Bytes read per look: a runaway writer is read at a bounded pace, and memory stays bounded. */
const READ_CHUNK = 64 * 1024;
const MAX_READ_PER_POLL = 16 * READ_CHUNK;

/** Where accepted totals go: the exporter's API, or nowhere but the report (in-process). */
export type WorkSink = (unit: string, total: number) => Promise<void>;

/** Tails the work file, keeps the totals, forwards the latest total per unit (one request at a time). */
export class WorkFile {
  readonly path: string;
  readonly tally = new WorkTally();
  private readonly dir: string;
  private readonly reader = new WorkLineReader();
  private offset = 0;
  private timer?: NodeJS.Timeout;
  private reading?: Promise<void>;
  private sink?: WorkSink;
  /** Units whose total changed since it was last forwarded. */
  private readonly dirty = new Set<string>();
  private forwarding?: Promise<void>;

  constructor(
    private readonly warn: (msg: string) => void,
    dir = os.tmpdir(),
  ) {
    this.dir = mkdtempSync(path.join(dir, 'jouleflow-work-'));
    this.path = path.join(this.dir, 'work');
    writeFileSync(this.path, '', { mode: 0o600 });
  }

  /** Starts polling; updates go to `sink` from now on (totals read before are sent at once). */
  start(sink?: WorkSink): void {
    this.sink = sink;
    for (const u of Object.keys(this.tally.snapshot())) this.dirty.add(u);
    if (!this.timer) {
      this.timer = setInterval(() => void this.poll(), WORK_POLL_MS);
      this.timer.unref();
    }
  }

  /** Reads what is new once (serialised: a slow read is never overlapped by the next). */
  poll(): Promise<void> {
    this.reading ??= this.readNew().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /**
   * The command has ended: read everything left (a last line without a newline counts), forward
   * the final totals and wait for them to be accepted, then remove the file.
   */
  async finish(): Promise<Record<string, number>> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.poll();
    // Whatever is left (bounded: a grandchild still writing cannot keep the wrapper here).
    for (let i = 0; i < 64 && this.offset < (await this.size()); i++) await this.poll();
    this.apply(this.reader.flush());
    await this.forward();
    rmSync(this.dir, { recursive: true, force: true });
    return this.tally.snapshot();
  }

  private async size(): Promise<number> {
    const fh = await this.openFile();
    if (!fh) return 0;
    try {
      return (await fh.stat()).size;
    } finally {
      await fh.close();
    }
  }

  private async openFile(): Promise<FileHandle | undefined> {
    try {
      return await open(this.path, 'r');
    } catch {
      return undefined; // removed by the command: nothing more to read
    }
  }

  private async readNew(): Promise<void> {
    const fh = await this.openFile();
    if (!fh) return;
    try {
      const { size } = await fh.stat();
      if (size < this.offset) {
        // Truncated (`>` instead of `>>`): totals are cumulative, so reading it anew loses nothing.
        this.warn(`${WORK_FILE_ENV} was truncated; reading it from the start (append with >> to keep every line)`);
        this.offset = 0;
      }
      const buf = Buffer.alloc(READ_CHUNK);
      let read = 0;
      while (this.offset < size && read < MAX_READ_PER_POLL) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, size - this.offset), this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        read += bytesRead;
        // A UTF-8 sequence split across chunks only ever lands in a line that is refused anyway.
        this.apply(this.reader.push(buf.toString('utf8', 0, bytesRead)));
      }
    } finally {
      await fh.close();
    }
    void this.forward();
  }

  private apply(r: ReturnType<WorkLineReader['push']>): void {
    for (const e of r.errors) this.warn(`${WORK_FILE_ENV} line ${e.line} ignored (${e.reason}): ${JSON.stringify(e.text)}`);
    for (const u of r.updates) {
      const out = this.tally.apply(u);
      if (!out.ok) this.warn(`${WORK_FILE_ENV}: ${out.reason}`);
      else if (out.delta > 0) this.dirty.add(u.unit);
    }
  }

  /** Sends the latest total of every changed unit; one pass at a time, later changes wait for the next. */
  private forward(): Promise<void> {
    if (!this.sink) return Promise.resolve();
    const sink = this.sink;
    const run = async (): Promise<void> => {
      while (this.dirty.size > 0) {
        const [unit] = this.dirty;
        this.dirty.delete(unit);
        await sink(unit, this.tally.get(unit) ?? 0);
      }
    };
    const next = (this.forwarding ?? Promise.resolve()).then(run);
    this.forwarding = next.finally(() => {
      if (this.forwarding === next) this.forwarding = undefined;
    });
    return next;
  }
}

/**
 * Forwards totals with `POST {base}/api/v1/jobs/{id}/work {"unit", "total"}`. The contract: 200 on
 * accept, 409 with `{"error": reason}` for a total lower than the exporter holds, 404 for a job it
 * does not know (then nothing more is sent), 400 for a bad body. Failures are reported, never thrown:
 * the command keeps running and the report still shows the wrapper's own figures.
 */
export function exporterWorkSink(
  base: string,
  id: string,
  token: string | undefined,
  warn: (msg: string) => void,
  timeoutMs = 5000,
): WorkSink {
  let gone = false;
  const url = `${base}/api/v1/jobs/${encodeURIComponent(id)}/work`;
  return async (unit, total) => {
    if (gone) return;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ unit, total }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      if (res.status === 200) return;
      let reason = text.slice(0, 200);
      // An exporter without the endpoint answers 404 too: a plain page, or the job API's
      // "no such API endpoint"; only a JSON error about the job means the job is unknown.
      let fromApi = false;
      try {
        reason = String((JSON.parse(text) as { error?: unknown }).error ?? reason);
        fromApi = !/no such API endpoint/.test(reason);
      } catch {
        // not JSON: keep the text
      }
      if (res.status === 404 || res.status === 405) {
        gone = true;
        warn(
          fromApi
            ? `the exporter does not know job ${id} (404): work is no longer forwarded`
            : `the exporter has no work endpoint (${res.status}): work is only in this report`,
        );
      } else warn(`the exporter refused ${unit} ${total} (${res.status}): ${reason}`);
    } catch (err) {
      warn(`forwarding ${unit} ${total} failed: ${(err as Error).message}`);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// The report's work section (the figures: workReport in jobs/work.ts)

/** Joules per unit with an SI prefix (4.1 mJ, 12.0 µJ): per-token figures are small. */
export function fmtJoulesPerUnit(j: number): string {
  const a = Math.abs(j);
  const [scale, prefix] =
    a >= 1e3 ? [1e-3, 'k'] : a >= 1 || a === 0 ? [1, ''] : a >= 1e-3 ? [1e3, 'm'] : a >= 1e-6 ? [1e6, 'µ'] : [1e9, 'n'];
  return `${(j * scale).toFixed(3)} ${prefix}J`;
}

/** The text lines added to the `run` report. */
export function formatWorkReport(units: UnitReport[]): string {
  const lines: string[] = [];
  for (const u of units) {
    const singular = u.unit.replace(/s$/, '');
    lines.push(`  work         ${u.total} ${u.unit}`);
    for (const c of [...COMPONENTS, 'total'] as const) {
      lines.push(`    ${c.padEnd(12)} ${fmtJoulesPerUnit(u.joulesPerUnit[c]).padStart(12)}/${singular}`);
    }
    const m = u.perMillion;
    const extra = [
      m.gramsCo2 !== undefined ? `${m.gramsCo2.toPrecision(4)} g CO2` : '',
      m.cost !== undefined ? `${m.cost.toPrecision(4)}${m.currency ? ` ${m.currency}` : ''}` : '',
    ].filter(Boolean);
    lines.push(`    per million ${u.unit}: ${[`${m.kwh.toPrecision(4)} kWh`, ...extra].join(', ')}`);
  }
  return lines.join('\n');
}

/** The `run` flags that price a unit of work (CO₂ comes from the exporter's carbon configuration). */
export function addWorkFlags(cmd: Command): void {
  cmd
    .option('--price-per-kwh <price>', 'electricity price per kWh: adds the cost per million units to the report')
    .option('--currency <code>', 'currency of --price-per-kwh, shown in the report (e.g. EUR)');
}

/** Reads and checks the pricing flags; a bad one is a ConfigError (exit 2) naming the flag. */
export function workPricingFlags(opts: { pricePerKwh?: string; currency?: string }): Omit<WorkPricing, 'gramsPerKwh'> {
  if (opts.pricePerKwh === undefined) return { currency: opts.currency };
  const price = Number(opts.pricePerKwh);
  if (opts.pricePerKwh.trim() === '' || !Number.isFinite(price) || price < 0) {
    throw new ConfigError(
      `invalid configuration in command-line flags:\n  price-per-kwh (--price-per-kwh): expected a number ≥ 0, got ${JSON.stringify(opts.pricePerKwh)}`,
    );
  }
  return { pricePerKwh: price, currency: opts.currency };
}
