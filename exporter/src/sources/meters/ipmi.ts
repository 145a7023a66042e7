import { spawn } from 'child_process';
import type { Logger } from '../../util/log';
import { SourceError } from '../types';
import type { PointValue } from './common';
import { MeterSource, readMeterFile } from './common';
import type { IpmiMeterConfig } from './schema';

/**
 * A meter read through IPMI DCMI "Get Power Reading", by shelling out to `ipmitool dcmi power
 * reading` or freeipmi's `ipmi-dcmi --get-system-power-statistics`, with a timeout. DCMI has no
 * energy counter, so the meter gives power and the energy model integrates it.
 *
 * A BMC without DCMI power (ipmi_sim, many older boards: "Invalid command (c1)") or with power
 * measurement deactivated is a clear state, not an error loop: init() finds it once and the
 * source is reported absent with that reason, never polled again.
 */

export type DcmiReading = { state: 'ok'; watts: number } | { state: 'unsupported'; why: string };

const UNSUPPORTED = [
  /Invalid command \(c1\)/i,
  /Command not supported/i,
  /not supported on this system/i,
  /DCMI request failed because: Invalid/i,
  /Invalid (data field|command) in request/i,
  /DCMI not supported/i,
];

/** Parses `ipmitool dcmi power reading` output. */
export function parseIpmitoolDcmi(text: string): DcmiReading | undefined {
  for (const re of UNSUPPORTED) {
    const m = re.exec(text);
    if (m) return { state: 'unsupported', why: m[0] };
  }
  const w = /Instantaneous power reading:\s*(-?\d+(?:\.\d+)?)\s*Watts/i.exec(text);
  if (!w) return undefined;
  const st = /Power reading state is:\s*(\S+)/i.exec(text);
  if (st && !/^activ/i.test(st[1])) return { state: 'unsupported', why: `power reading state is ${st[1]}` };
  return { state: 'ok', watts: Number(w[1]) };
}

/** Parses `ipmi-dcmi --get-system-power-statistics` output (freeipmi). */
export function parseIpmiDcmi(text: string): DcmiReading | undefined {
  for (const re of UNSUPPORTED) {
    const m = re.exec(text);
    if (m) return { state: 'unsupported', why: m[0] };
  }
  const w = /Current Power\s*:\s*(-?\d+(?:\.\d+)?)\s*Watts/i.exec(text);
  if (!w) return undefined;
  const st = /Power Measurement\s*:\s*(.+)/i.exec(text);
  if (st && !/^active/i.test(st[1].trim())) return { state: 'unsupported', why: `power measurement ${st[1].trim()}` };
  return { state: 'ok', watts: Number(w[1]) };
}

/** Tool output kept (a BMC answer is a few lines; more is a misbehaving wrapper). */
const MAX_TOOL_OUTPUT = 1 << 20;

/**
 * The tool's environment: only what it needs (PATH to find itself, C locale for parseable
 * output), never the exporter's own (JOULEFLOW_JOBS_TOKEN and other secrets).
 */
export function ipmiToolEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
}

export class IpmiMeterSource extends MeterSource {
  private password: string | undefined;
  private unsupported: string | undefined;
  /** Whether the BMC has given a power reading (then "unsupported" means it became unavailable). */
  private answered = false;

  constructor(
    private readonly cfg: IpmiMeterConfig,
    timeoutMs: number,
    log: Logger,
  ) {
    super('ipmi', cfg, timeoutMs, log);
  }

  private args(): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
    const c = this.cfg;
    const env = ipmiToolEnv();
    if (c.tool === 'ipmitool') {
      const args: string[] = [];
      if (c.host) {
        args.push('-I', c.interface, '-H', c.host, '-p', String(c.port));
        if (c.username !== undefined) args.push('-U', c.username);
        if (this.password !== undefined) {
          args.push('-E'); // password from IPMI_PASSWORD: never on the command line
          env.IPMI_PASSWORD = this.password;
        }
        if (c.cipherSuite !== undefined) args.push('-C', String(c.cipherSuite));
        args.push('-N', String(Math.max(1, Math.ceil(this.timeoutMs / 1000))), '-R', '1');
      } else {
        args.push('-I', 'open');
      }
      args.push('dcmi', 'power', 'reading');
      return { cmd: c.command ?? 'ipmitool', args, env };
    }
    const args = ['--get-system-power-statistics'];
    if (c.host) {
      args.push('-h', `${c.host}:${c.port}`, '--driver-type', c.interface === 'lanplus' ? 'LAN_2_0' : 'LAN');
      if (c.username !== undefined) args.push('-u', c.username);
      // freeipmi has no password variable; the password is visible to local users in ps.
      if (this.password !== undefined) args.push('-p', this.password);
    }
    return { cmd: c.command ?? 'ipmi-dcmi', args, env };
  }

  /**
   * Runs the tool in a process group of its own, killed whole (SIGKILL to the group) on timeout or
   * abort: a wrapper script's children (ssh, sudo, the real ipmitool) must not outlive the read.
   */
  private run(signal?: AbortSignal): Promise<string> {
    const { cmd, args, env } = this.args();
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let killed = false;
      const killGroup = () => {
        killed = true;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      const append = (d: Buffer) => {
        if (out.length < MAX_TOOL_OUTPUT) out += d.toString('utf8');
      };
      child.stdout.on('data', append);
      child.stderr.on('data', append);
      const timer = setTimeout(killGroup, this.timeoutMs);
      signal?.addEventListener('abort', killGroup, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', killGroup);
      };
      child.on('error', (err: NodeJS.ErrnoException) => {
        done();
        if (err.code === 'ENOENT') {
          return reject(
            this.fail('absent', `${cmd} not found: install ${this.cfg.tool === 'ipmitool' ? 'ipmitool' : 'freeipmi-tools'} or set command`),
          );
        }
        reject(this.fail('read', `${cmd}: ${err.message}`));
      });
      child.on('close', () => {
        done();
        if (killed) return reject(this.fail('timeout', `${this.where()}: no answer within ${this.timeoutMs}ms`));
        // A failing exit can still carry a clear answer ("Invalid command (c1)").
        resolve(out);
      });
    });
  }

  protected override secrets(): Array<string | undefined> {
    return [this.password, this.cfg.password];
  }

  private where(): string {
    return this.cfg.host ? `${this.cfg.tool} ${this.cfg.host}:${this.cfg.port}` : `${this.cfg.tool} (local BMC)`;
  }

  private parse(text: string): DcmiReading {
    const r = this.cfg.tool === 'ipmitool' ? parseIpmitoolDcmi(text) : parseIpmiDcmi(text);
    if (r) return r;
    const line =
      text
        .split('\n')
        .map((l) => l.trim())
        .find((l) => l.length > 0) ?? '(no output)';
    const auth = /session|password|authenticat|privilege|RAKP|unauthorized/i.test(text);
    throw this.fail(
      auth ? 'auth' : 'read',
      `${this.where()}: ${auth ? 'cannot open an IPMI session (wrong username or password, or BMC unreachable): ' : ''}${line}`,
    );
  }

  /**
   * Probes once: a BMC without DCMI power makes the source absent, with the reason, instead of an
   * error every tick. A probe that fails or times out (a slow BMC, a loaded host) is no verdict: the
   * reads go on, and the first that finds DCMI unsupported makes the source absent the same way.
   */
  override async init(): Promise<boolean> {
    this.password = this.cfg.password;
    if (this.cfg.passwordFile)
      this.password = (await readMeterFile(this.cfg.name, 'passwordFile', this.cfg.passwordFile)).toString('utf8').trim();
    let r: DcmiReading;
    try {
      r = this.parse(await this.run());
    } catch (err) {
      if (err instanceof SourceError && err.reason === 'absent') throw err;
      // Unreachable, refused or slow now: keep polling, the reads report why.
      return true;
    }
    if (r.state === 'unsupported') throw this.unsupportedError(r.why, false);
    this.answered = true;
    return true;
  }

  protected async readPoints(signal: AbortSignal): Promise<PointValue[]> {
    if (this.unsupported) return [];
    const r = this.parse(await this.run(signal));
    if (r.state === 'unsupported') throw this.unsupportedError(r.why, this.answered);
    this.answered = true;
    return [{ label: 'DCMI instantaneous power', kind: 'power', unit: 'W', scale: 1, raw: r.watts }];
  }

  /**
   * DCMI power is not available: reported once, never polled again. A BMC that never gave a reading
   * does not have it (the source becomes absent); one that did is down with the reason.
   */
  private unsupportedError(why: string, hadReadings: boolean): SourceError {
    this.unsupported = why;
    return this.fail(
      'unsupported',
      hadReadings
        ? `${this.where()}: DCMI power reading became unavailable (${why}); no longer polled`
        : `${this.where()}: the BMC does not support DCMI power readings (${why}); not polled`,
      !hadReadings,
    );
  }

  override async sample(ctx: Parameters<MeterSource['sample']>[0]): ReturnType<MeterSource['sample']> {
    if (this.unsupported) return { readings: [] };
    return super.sample(ctx);
  }
}
