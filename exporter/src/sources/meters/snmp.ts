import * as snmp from 'net-snmp';
import type { Logger } from '../../util/log';
import type { PointValue } from './common';
import { MeterSource, parseUnitText } from './common';
import type { SnmpMeterConfig, SnmpPoint } from './schema';
import { unitFitsKind } from './schema';

/**
 * A meter read over SNMP v2c or v3 (net-snmp), one GET per read for all its points. Numeric OIDs
 * only; the built-in profiles carry the vendors' documented OIDs and scales.
 */

const APC = '1.3.6.1.4.1.318';

/** The points of a built-in profile (documented OIDs, table index appended). */
export function snmpProfilePoints(profile: NonNullable<SnmpMeterConfig['profile']>, index?: number | string): SnmpPoint[] {
  const i = index ?? 1;
  const pt = (oid: string, kind: SnmpPoint['kind'], unit: SnmpPoint['unit'], scale: number, unsupported: number[] = []): SnmpPoint => ({
    oid,
    kind,
    unit,
    scale,
    unsupported,
  });
  switch (profile) {
    case 'apc-rpdu2':
      // PowerNet-MIB rPDU2DeviceStatusPower: hundredths of kW; rPDU2DeviceStatusEnergy: tenths of kWh; −1 = unsupported.
      return [pt(`${APC}.1.1.26.4.3.1.5.${i}`, 'power', 'kW', 0.01, [-1]), pt(`${APC}.1.1.26.4.3.1.9.${i}`, 'energy', 'kWh', 0.1, [-1])];
    case 'apc-ups':
      // PowerNet-MIB upsAdvOutputActivePower.0 (W); upsHighPrecOutputEnergyUsage.0 (hundredths of kWh; −1 = unsupported).
      return [pt(`${APC}.1.1.1.4.2.8.0`, 'power', 'W', 1, [-1]), pt(`${APC}.1.1.1.4.3.6.0`, 'energy', 'kWh', 0.01, [-1])];
    case 'ups-mib': {
      // RFC 1628 UPS-MIB upsOutputPower (W) per output line; `index` = number of lines (default 1), summed.
      const lines = typeof i === 'number' ? Math.max(1, i) : 1;
      return Array.from({ length: lines }, (_, k) => pt(`1.3.6.1.2.1.33.1.4.4.1.4.${k + 1}`, 'power', 'W', 1));
    }
    case 'geist-pdu':
      // Vertiv Geist GEIST-V5-MIB pduTotalRealPower (W), pduTotalEnergy (Wh).
      return [pt(`1.3.6.1.4.1.21239.5.2.3.1.1.9.${i}`, 'power', 'W', 1), pt(`1.3.6.1.4.1.21239.5.2.3.1.1.12.${i}`, 'energy', 'Wh', 1)];
    case 'liebert-flexible':
      // LIEBERT-GP-FLEXIBLE-MIB sparse table: lgpFlexibleEntryValue (.20, text) with its unit text
      // lgpFlexibleEntryUnitsOfMeasure (.30) at the data point's index; the unit decides power or energy.
      return [
        {
          oid: `1.3.6.1.4.1.476.1.42.3.9.20.1.20.${i}`,
          unitOid: `1.3.6.1.4.1.476.1.42.3.9.20.1.30.${i}`,
          kind: 'power',
          unit: 'kW',
          scale: 1,
          unsupported: [],
        },
      ];
    case 'apc-inrow':
      // PowerNet-MIB airIRRCUnitStatusCoolOutput.0: heat removed, tenths of kW (thermal, converted through the COP);
      // airIRRCUnitStatusSupplyAirTempMetric.0: supply air, tenths of °C (selects the COP).
      return [
        pt(`${APC}.1.1.13.3.2.2.2.2.0`, 'thermal_power', 'kW', 0.1),
        pt(`${APC}.1.1.13.3.2.2.2.9.0`, 'supply_air_temperature', 'C', 0.1),
      ];
  }
}

/** Counter64 arrives as a big-endian Buffer; numbers as numbers; DisplayString values as text. */
export function varbindNumber(vb: snmp.Varbind): number | undefined {
  const v = vb.value;
  if (typeof v === 'number') return v;
  if (Buffer.isBuffer(v)) {
    if (vb.type === snmp.ObjectType.Counter64) {
      let n = 0n;
      for (const b of v) n = (n << 8n) | BigInt(b);
      return Number(n);
    }
    const text = v.toString('utf8').trim();
    const m = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/.exec(text);
    return m ? Number(m[0]) : undefined;
  }
  if (typeof v === 'string') {
    const n = Number.parseFloat(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function varbindText(vb: snmp.Varbind): string {
  return Buffer.isBuffer(vb.value) ? vb.value.toString('utf8') : String(vb.value);
}

export class SnmpMeterSource extends MeterSource {
  private session: snmp.Session | undefined;
  private readonly points: SnmpPoint[];
  private readonly target: string;

  constructor(
    private readonly cfg: SnmpMeterConfig,
    timeoutMs: number,
    log: Logger,
  ) {
    super('snmp', cfg, timeoutMs, log);
    this.points = [...(cfg.profile ? snmpProfilePoints(cfg.profile, cfg.index) : []), ...cfg.points];
    this.target = `v${cfg.version} ${cfg.host}:${cfg.port}`;
  }

  private open(): snmp.Session {
    if (this.session) return this.session;
    const options: snmp.SessionOptions = {
      port: this.cfg.port,
      retries: 0,
      timeout: this.timeoutMs,
      transport: this.cfg.host.includes(':') ? 'udp6' : 'udp4',
    };
    let s: snmp.Session;
    if (this.cfg.version === '3') {
      // The schema guarantees a user for v3.
      const u = this.cfg.user as NonNullable<SnmpMeterConfig['user']>;
      s = snmp.createV3Session(
        this.cfg.host,
        {
          name: u.name,
          level: snmp.SecurityLevel[u.level],
          authProtocol: u.level === 'noAuthNoPriv' ? undefined : snmp.AuthProtocols[u.authProtocol],
          authKey: u.authKey,
          privProtocol: u.level === 'authPriv' ? snmp.PrivProtocols[u.privProtocol] : undefined,
          privKey: u.privKey,
        },
        { ...options, version: snmp.Version3 },
      );
    } else {
      s = snmp.createSession(this.cfg.host, this.cfg.community, { ...options, version: snmp.Version2c });
    }
    s.on('error', (err) => this.log.debug('snmp session error', { meter: this.cfg.name, err: this.redact(err.message) }));
    this.session = s;
    return s;
  }

  private get(oids: string[]): Promise<snmp.Varbind[]> {
    const session = this.open();
    return new Promise((resolve, reject) => {
      try {
        session.get(oids, (error, varbinds) => (error ? reject(error) : resolve(varbinds)));
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  protected async readPoints(): Promise<PointValue[]> {
    const oids = [...new Set(this.points.flatMap((p) => (p.unitOid ? [p.oid, p.unitOid] : [p.oid])))];
    let varbinds: snmp.Varbind[];
    try {
      varbinds = await this.get(oids);
    } catch (err) {
      const e = err as Error;
      if (e.name === 'RequestTimedOutError') {
        // v3 sessions must rediscover the engine after an agent restart: start a fresh session.
        this.reset();
        throw this.fail(
          'timeout',
          `no answer from ${this.target} within ${this.timeoutMs}ms (agent down, wrong address or port${this.cfg.version === '2c' ? ', or wrong community: agents drop those silently' : ''})`,
        );
      }
      this.reset();
      // net-snmp quotes the community in some messages ("Community '…' in request does not match"):
      // sample() redacts the meter's secrets from every error.
      const auth = /digest|auth|user|usm|decrypt|engine|report|community/i.test(e.message);
      throw this.fail(auth ? 'auth' : 'read', `${this.target}: ${auth ? 'authentication failed: ' : ''}${e.message}`);
    }
    const byOid = new Map(varbinds.map((vb) => [vb.oid, vb]));
    return this.points.map((p): PointValue => {
      const vb = byOid.get(p.oid);
      const label = `OID ${p.oid}`;
      // A supply-air temperature only refines the COP: one the agent lacks is unknown, not an error.
      const optional = p.kind === 'supply_air_temperature';
      if (optional && !vb) return this.missingSupplyAir(p, label, 'missing from the answer');
      if (optional && vb && snmp.isVarbindError(vb)) return this.missingSupplyAir(p, label, snmp.varbindError(vb));
      if (optional && vb && !Number.isFinite(varbindNumber(vb) ?? NaN))
        return this.missingSupplyAir(p, label, `not a number (${JSON.stringify(varbindText(vb)).slice(0, 60)})`);
      if (!vb || snmp.isVarbindError(vb)) {
        throw this.fail(
          'bad_oid',
          `${label} on ${this.target}: ${vb ? snmp.varbindError(vb) : 'missing from the answer'} (wrong OID, or not supported by this device)`,
        );
      }
      const raw = varbindNumber(vb);
      if (raw === undefined || !Number.isFinite(raw)) {
        throw this.fail('bad_value', `${label} on ${this.target}: not a number (${JSON.stringify(varbindText(vb)).slice(0, 60)})`);
      }
      let unit = p.unit;
      let kind = p.kind;
      if (p.unitOid) {
        const uvb = byOid.get(p.unitOid);
        const text = uvb && !snmp.isVarbindError(uvb) ? varbindText(uvb) : '';
        const parsed = parseUnitText(text);
        if (!parsed) throw this.fail('bad_value', `${label}: unit "${text}" at OID ${p.unitOid} is not W, kW, Wh or kWh`);
        unit = parsed;
        const energyUnit = parsed === 'Wh' || parsed === 'kWh';
        const thermal = kind.startsWith('thermal');
        kind = energyUnit ? (thermal ? 'thermal_energy' : 'energy') : thermal ? 'thermal_power' : 'power';
      }
      if (!unitFitsKind(kind, unit)) throw this.fail('config', `${label}: unit ${unit} does not fit kind ${kind}`);
      return { label, kind, unit, scale: p.scale, raw: p.unsupported.includes(raw) ? null : raw };
    });
  }

  protected override secrets(): Array<string | undefined> {
    return [this.cfg.community, this.cfg.user?.authKey, this.cfg.user?.privKey];
  }

  private reset(): void {
    try {
      this.session?.close();
    } catch {
      // already closed
    }
    this.session = undefined;
  }

  async close(): Promise<void> {
    this.reset();
  }
}
