import type { ChildProcess } from 'child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'fs';
import { join, resolve } from 'path';
import { freeUdpPort, requireBinary, requirePythonModule, startPeer, stopPeer, waitFor } from './helpers';
import { spawnSync } from 'child_process';

/** A real Debian snmpd on loopback with a generated config: static overrides and a pass script for growing values. */

export interface SnmpSeries {
  base: number;
  rate: number;
  type?: string;
}

export interface SnmpPeerSpec {
  series?: Record<string, SnmpSeries>;
  static?: Record<string, { type: string; value: number | string }>;
  overrides?: Record<string, number>;
  /** Subtrees served by the pass script. */
  passRoots: string[];
  community?: string;
  v3?: { user: string; auth: string; priv: string };
}

export class SnmpPeer {
  port = 0;
  private proc: ChildProcess | undefined;
  private output: () => string = () => '';
  readonly log: string;
  readonly spec: string;

  constructor(
    private readonly dir: string,
    private readonly cfg: SnmpPeerSpec,
  ) {
    this.log = join(dir, 'served.log');
    this.spec = join(dir, 'spec.json');
  }

  async start(): Promise<void> {
    requireBinary('/usr/sbin/snmpd', 'snmpd');
    requireBinary('snmpget', 'snmp');
    requirePythonModule('json', 'python3');
    if (!this.port) this.port = await freeUdpPort();
    if (!existsSync(this.spec)) {
      writeFileSync(
        this.spec,
        JSON.stringify({ t0: Date.now() / 1000, log: this.log, series: this.cfg.series ?? {}, static: this.cfg.static ?? {} }),
      );
    }
    const script = resolve(__dirname, 'peers/snmp-pass.py');
    const pass = join(this.dir, 'pass.sh');
    writeFileSync(pass, `#!/bin/sh\nexec /usr/bin/python3 -S ${script} ${this.spec} "$@"\n`);
    chmodSync(pass, 0o755);
    const lines = [`agentAddress udp:127.0.0.1:${this.port}`, `rocommunity ${this.cfg.community ?? 'public'} 127.0.0.1`];
    if (this.cfg.v3)
      lines.push(`createUser ${this.cfg.v3.user} SHA "${this.cfg.v3.auth}" AES "${this.cfg.v3.priv}"`, `rouser ${this.cfg.v3.user} priv`);
    for (const [oid, v] of Object.entries(this.cfg.overrides ?? {})) lines.push(`override .${oid} integer ${v}`);
    for (const root of this.cfg.passRoots) lines.push(`pass .${root} ${pass}`);
    const conf = join(this.dir, 'snmpd.conf');
    writeFileSync(conf, lines.join('\n') + '\n');
    const p = startPeer(
      '/usr/sbin/snmpd',
      ['-f', '-C', '-c', conf, '-p', join(this.dir, 'snmpd.pid'), '-Lf', join(this.dir, 'snmpd.log')],
      {
        MIBS: '',
        SNMP_PERSISTENT_DIR: this.dir,
      },
    );
    this.proc = p.proc;
    this.output = p.output;
    // Bounded generously: snmpd's start (v3 key localisation) takes seconds on a loaded machine.
    await waitFor(`snmpd on 127.0.0.1:${this.port} (${this.output()})`, () => this.get('1.3.6.1.2.1.1.3.0') !== undefined, 30_000);
  }

  async stop(): Promise<void> {
    await stopPeer(this.proc);
    this.proc = undefined;
  }

  /**
   * Cross-check with Net-SNMP's own snmpget; the value text, or undefined when it fails. Its
   * timeout (5 s) leaves the pass script (a Python process per query) time on a loaded machine.
   */
  get(oid: string, v3?: { user: string; auth: string; priv: string }): string | undefined {
    const auth = v3
      ? ['-v3', '-l', 'authPriv', '-u', v3.user, '-a', 'SHA', '-A', v3.auth, '-x', 'AES', '-X', v3.priv]
      : ['-v2c', '-c', this.cfg.community ?? 'public'];
    const r = spawnSync('snmpget', [...auth, '-On', '-Oqv', '-t', '5', '-r', '0', `127.0.0.1:${this.port}`, `.${oid}`], {
      encoding: 'utf8',
      env: { ...process.env, MIBS: '' },
    });
    if (r.status !== 0 || /No Such/.test(r.stdout)) return undefined;
    return r.stdout.trim();
  }

  /** Values served so far, per OID, in order. */
  served(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    if (!existsSync(this.log)) return out;
    for (const line of readFileSync(this.log, 'utf8').split('\n')) {
      const [oid, v] = line.split(' ');
      if (!oid || v === undefined) continue;
      const n = Number(v);
      if (!Number.isFinite(n)) continue;
      out.set(oid, [...(out.get(oid) ?? []), n]);
    }
    return out;
  }
}
