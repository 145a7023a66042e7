import ModbusRTU from 'modbus-serial';
import type { Logger } from '../../util/log';
import type { PointValue } from './common';
import { MeterSource, withTimeout } from './common';
import type { ModbusMeterConfig, ModbusRegister, RegisterType } from './schema';
import { resolveRegister } from './schema';

/**
 * A meter read over Modbus TCP (modbus-serial), one request per register. Addresses are
 * 0-based protocol addresses unless a register says numbering: modicon (3xxxx/4xxxx).
 */

const reg = (
  address: number,
  numbering: ModbusRegister['numbering'],
  table: ModbusRegister['table'],
  type: RegisterType,
  kind: ModbusRegister['kind'],
  unit: ModbusRegister['unit'],
  scale = 1,
): ModbusRegister => ({ address, numbering, table, type, kind, unit, scale, wordOrder: 'high-first', unsupported: [] });

/** The registers of a built-in profile. */
export function modbusProfileRegisters(profile: NonNullable<ModbusMeterConfig['profile']>): ModbusRegister[] {
  switch (profile) {
    case 'eastron-sdm630':
      // Eastron SDM630 Modbus protocol: input 0x0034 total system power (float32 W), 0x0156 total kWh (float32), high word first.
      return [reg(0x0034, 'zero', 'input', 'float32', 'power', 'W'), reg(0x0156, 'zero', 'input', 'float32', 'energy', 'kWh')];
    case 'liebert-icom':
      // Liebert iCOM: input 31001 cooling load (kW × 10, heat removed: thermal, used only without the
      // electrical points); 31010–31019 instantaneous power, 2 registers each (W), summed.
      return [
        reg(31001, 'modicon', undefined, 'uint16', 'thermal_power', 'kW', 0.1),
        ...[31010, 31012, 31014, 31016, 31018].map((a) => reg(a, 'modicon', undefined, 'uint32', 'power', 'W')),
      ];
    case 'apc-inrow':
      // APC InRow SC: holding offset 88 cool output (32-bit, tenths of kW): heat removed, thermal.
      return [reg(88, 'zero', 'holding', 'uint32', 'thermal_power', 'kW', 0.1)];
  }
}

/** Decodes one or two 16-bit words. */
export function decodeRegisters(words: readonly number[], type: RegisterType, wordOrder: ModbusRegister['wordOrder']): number {
  if (type === 'uint16') return words[0] & 0xffff;
  if (type === 'int16') return ((words[0] & 0xffff) << 16) >> 16;
  const [hi, lo] = wordOrder === 'high-first' ? [words[0], words[1]] : [words[1], words[0]];
  const b = Buffer.alloc(4);
  b.writeUInt16BE(hi & 0xffff, 0);
  b.writeUInt16BE(lo & 0xffff, 2);
  if (type === 'uint32') return b.readUInt32BE(0);
  if (type === 'int32') return b.readInt32BE(0);
  return b.readFloatBE(0);
}

const WORDS: Record<RegisterType, number> = { uint16: 1, int16: 1, uint32: 2, int32: 2, float32: 2 };

export class ModbusMeterSource extends MeterSource {
  private client: ModbusRTU | undefined;
  private connecting: Promise<ModbusRTU> | undefined;
  private readonly registers: ModbusRegister[];
  private readonly target: string;

  constructor(
    private readonly cfg: ModbusMeterConfig,
    timeoutMs: number,
    log: Logger,
  ) {
    super('modbus', cfg, timeoutMs, log);
    this.registers = [...(cfg.profile ? modbusProfileRegisters(cfg.profile) : []), ...cfg.registers];
    this.target = `${cfg.host}:${cfg.port} unit ${cfg.unitId}`;
    for (const r of this.registers) resolveRegister(r);
  }

  private async connect(): Promise<ModbusRTU> {
    if (this.client?.isOpen) return this.client;
    this.connecting ??= (async () => {
      this.drop();
      const c = new ModbusRTU();
      try {
        await withTimeout(
          c.connectTCP(this.cfg.host, { port: this.cfg.port }),
          this.timeoutMs,
          `meter "${this.cfg.name}" (modbus): no connection to ${this.target} within ${this.timeoutMs}ms`,
        );
      } catch (err) {
        c.destroy(() => undefined);
        throw err;
      }
      c.setID(this.cfg.unitId);
      c.setTimeout(this.timeoutMs);
      this.client = c;
      return c;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /**
   * Closes the connection for good. destroy(), not close(): close() only half-closes (FIN) and a hung
   * peer never answers it, so every reconnect would leave one more socket open.
   */
  private drop(): void {
    const c = this.client;
    this.client = undefined;
    if (c) c.destroy(() => undefined);
  }

  protected async readPoints(signal?: AbortSignal): Promise<PointValue[]> {
    // The sampler gave up on this read: close the socket rather than leave a request hanging on it.
    const onAbort = () => this.drop();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.readAll();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private async readAll(): Promise<PointValue[]> {
    // One deadline for the whole read (connection and every register), not one timeout per request.
    const deadline = Date.now() + this.timeoutMs;
    let client: ModbusRTU;
    try {
      client = await this.connect();
    } catch (err) {
      const e = err as Error & { errno?: string; code?: string };
      if (e.name === 'SourceError') throw err;
      throw this.fail('connect', `cannot connect to ${this.target}: ${e.message || e.code || e.errno}`);
    }
    const out: PointValue[] = [];
    for (const r of this.registers) {
      const { table, address } = resolveRegister(r);
      const label = `${table} register ${address}${r.numbering === 'modicon' ? ` (Modicon ${r.address})` : ''}`;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.drop();
        throw this.fail('timeout', `${label} on ${this.target}: the read took longer than ${this.timeoutMs}ms`);
      }
      client.setTimeout(left);
      // A supply-air temperature only refines the COP: one the device lacks or garbles is unknown
      // (raw null), never the meter's failure (as for SNMP). A lost connection still is.
      const optional = r.kind === 'supply_air_temperature';
      let words: number[];
      try {
        const res =
          table === 'input'
            ? await client.readInputRegisters(address, WORDS[r.type])
            : await client.readHoldingRegisters(address, WORDS[r.type]);
        words = res.data;
      } catch (err) {
        const e = err as Error & { modbusCode?: number; errno?: string };
        if (e.modbusCode !== undefined && optional) {
          out.push(this.missingSupplyAir(r, label, `Modbus exception ${e.modbusCode} (${e.message})`));
          continue;
        }
        if (e.modbusCode !== undefined) {
          throw this.fail('bad_register', `${label} on ${this.target}: Modbus exception ${e.modbusCode} (${e.message})`);
        }
        this.drop();
        const timedOut = e.errno === 'ETIMEDOUT' || /timed out/i.test(e.message);
        throw this.fail(timedOut ? 'timeout' : 'read', `${label} on ${this.target}: ${e.message}`);
      }
      const raw = decodeRegisters(words, r.type, r.wordOrder);
      if (!Number.isFinite(raw) && optional) {
        out.push(this.missingSupplyAir(r, label, `decodes to ${raw} as ${r.type}`));
        continue;
      }
      if (!Number.isFinite(raw)) {
        throw this.fail(
          'bad_value',
          `${label} on ${this.target}: garbage value (words ${words.map((w) => '0x' + w.toString(16)).join(' ')} decode to ${raw} as ${r.type})`,
        );
      }
      out.push({ label, kind: r.kind, unit: r.unit, scale: r.scale, raw: r.unsupported.includes(raw) ? null : raw });
    }
    return out;
  }

  async close(): Promise<void> {
    this.drop();
  }
}
