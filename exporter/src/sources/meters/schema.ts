import { z } from 'zod';
import { zodDuration } from '../../util/duration';

/**
 * The `meters:` section of the configuration file: facility meters read over SNMP, Modbus TCP,
 * Redfish and IPMI DCMI. Each meter is its own source, so one dead meter never holds up another.
 *
 * role: cooling → its energy is cooling energy (CRAC/CRAH, in-row units, CDUs), split to this node
 *                 by the IT share;
 *       it      → a PDU/UPS feeding the room's IT: not node energy, only the denominator of the share.
 */

const durationMs = zodDuration(1);

/**
 * Electrical power and energy; heat removed (thermal power and energy); the unit's supply-air
 * temperature (°C), which selects the COP the cooling model applies to the heat removed.
 */
export const POINT_KINDS = ['power', 'energy', 'thermal_power', 'thermal_energy', 'supply_air_temperature'] as const;
export type PointKind = (typeof POINT_KINDS)[number];
/** C: degrees Celsius (temperature points only). */
export const UNITS = ['W', 'kW', 'Wh', 'kWh', 'C'] as const;
export type Unit = (typeof UNITS)[number];

/** Checks that a point's unit fits its kind (power ↔ W/kW, energy ↔ Wh/kWh, temperature ↔ C). */
export function unitFitsKind(kind: PointKind, unit: Unit): boolean {
  if (kind === 'supply_air_temperature' || unit === 'C') return kind === 'supply_air_temperature' && unit === 'C';
  const energy = kind === 'energy' || kind === 'thermal_energy';
  return energy ? unit === 'Wh' || unit === 'kWh' : unit === 'W' || unit === 'kW';
}

const UNITS_OF_KIND = 'power and thermal_power: W or kW; energy and thermal_energy: Wh or kWh; supply_air_temperature: C';

const numericOid = z
  .string()
  .transform((s) => s.replace(/^\./, ''))
  .refine((s) => /^\d+(\.\d+)+$/.test(s), {
    message: 'numeric OIDs only (such as .1.3.6.1.2.1.33.1.4.4.1.4.1); MIB names are not resolved',
  });

const common = {
  /** The `device` label of the meter's series; unique among meters. */
  name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, "_", ".", ":" and "-" only'),
  role: z.enum(['cooling', 'it']).default('cooling'),
  /** Timeout of one read; parseConfig resolves it: 70 % of the sampling interval by default, always below the sampler's. */
  timeout: durationMs.optional(),
  /**
   * Counter deltas above this power × Δt × 2 are glitches, dropped as resets. In the unit of what the
   * meter reads: electrical W, or thermal W (the unit's rated cooling capacity) for heat removed.
   */
  maxPowerWatts: z.number().positive().optional(),
  /** COP the cooling model uses to turn this meter's heat removed into electrical energy; default: the COP curve at the supply air it reads, else at cooling.supplyAirCelsius. */
  cop: z.number().positive().optional(),
};

/** How a point's power/energy kind, unit and scale turn the raw number into W or J. */
const pointCommon = {
  kind: z.enum(POINT_KINDS),
  unit: z.enum(UNITS),
  /** Raw value × scale is in `unit` (APC: hundredths of kW → scale 0.01, unit kW). */
  scale: z.number().finite().positive().default(1),
  /** Raw values that mean "not supported by this device" (APC reports −1). */
  unsupported: z.array(z.number()).default([]),
};

export const SnmpPointSchema = z
  .object({
    oid: numericOid,
    ...pointCommon,
    /** An OID whose text gives the unit (Liebert lgpFlexibleEntryUnitsOfMeasure); overrides `unit`. */
    unitOid: numericOid.optional(),
  })
  .strict();
export type SnmpPoint = z.output<typeof SnmpPointSchema>;

export const SNMP_PROFILES = ['apc-rpdu2', 'apc-ups', 'ups-mib', 'geist-pdu', 'liebert-flexible', 'apc-inrow'] as const;

const SnmpMeterSchema = z
  .object({
    ...common,
    protocol: z.literal('snmp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(161),
    version: z.enum(['2c', '3']).default('2c'),
    community: z.string().default('public'),
    user: z
      .object({
        name: z.string().min(1),
        level: z.enum(['noAuthNoPriv', 'authNoPriv', 'authPriv']).default('authPriv'),
        authProtocol: z.enum(['md5', 'sha', 'sha224', 'sha256', 'sha384', 'sha512']).default('sha'),
        authKey: z.string().optional(),
        privProtocol: z.enum(['des', 'aes', 'aes256b', 'aes256r']).default('aes'),
        privKey: z.string().optional(),
      })
      .strict()
      .optional(),
    profile: z.enum(SNMP_PROFILES).optional(),
    /** Table index of the profile's OIDs (PDU number, UPS output line count for ups-mib, Liebert data-point index). */
    index: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(\.\d+)*$/)]).optional(),
    points: z.array(SnmpPointSchema).default([]),
  })
  .strict();
export type SnmpMeterConfig = z.output<typeof SnmpMeterSchema>;

export const REGISTER_TYPES = ['uint16', 'int16', 'uint32', 'int32', 'float32'] as const;
export type RegisterType = (typeof REGISTER_TYPES)[number];

export const ModbusRegisterSchema = z
  .object({
    /**
     * The register address. numbering "zero" (default): the 0-based protocol address, table required.
     * numbering "modicon": 3xxxx (input) or 4xxxx (holding), 1-based, 5 or 6 digits (30001 → input 0).
     */
    address: z.number().int().nonnegative(),
    numbering: z.enum(['zero', 'modicon']).default('zero'),
    table: z.enum(['input', 'holding']).optional(),
    type: z.enum(REGISTER_TYPES),
    /** 32-bit values: which 16-bit word comes first (SDM630, Liebert: high first). */
    wordOrder: z.enum(['high-first', 'low-first']).default('high-first'),
    ...pointCommon,
  })
  .strict();
export type ModbusRegister = z.output<typeof ModbusRegisterSchema>;

export const MODBUS_PROFILES = ['eastron-sdm630', 'liebert-icom', 'apc-inrow'] as const;

/**
 * The protocol address and table of a register, with Modicon numbering made explicit:
 * 3xxxx / 3xxxxx → input register (n − 30001 / n − 300001), 4xxxx / 4xxxxx → holding (n − 40001 / n − 400001).
 */
export function resolveRegister(r: Pick<ModbusRegister, 'address' | 'numbering' | 'table'>): {
  table: 'input' | 'holding';
  address: number;
} {
  if (r.numbering === 'zero') {
    if (!r.table) throw new Error('0-based addresses need table: input or holding');
    if (r.address > 65535) throw new Error(`0-based address ${r.address} is above 65535`);
    return { table: r.table, address: r.address };
  }
  const ranges: Array<[number, number, 'input' | 'holding']> = [
    [30001, 39999, 'input'],
    [40001, 49999, 'holding'],
    [300001, 365536, 'input'],
    [400001, 465536, 'holding'],
  ];
  for (const [lo, hi, table] of ranges) {
    if (r.address >= lo && r.address <= hi) {
      if (r.table && r.table !== table) throw new Error(`Modicon address ${r.address} is a ${table} register, but table says ${r.table}`);
      return { table, address: r.address - lo };
    }
  }
  throw new Error(`Modicon address ${r.address}: expected 30001–39999 / 300001–365536 (input) or 40001–49999 / 400001–465536 (holding)`);
}

const ModbusMeterSchema = z
  .object({
    ...common,
    protocol: z.literal('modbus'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(502),
    unitId: z.number().int().min(0).max(255).default(1),
    profile: z.enum(MODBUS_PROFILES).optional(),
    registers: z.array(ModbusRegisterSchema).default([]),
  })
  .strict();
export type ModbusMeterConfig = z.output<typeof ModbusMeterSchema>;

const RedfishMeterSchema = z
  .object({
    ...common,
    protocol: z.literal('redfish'),
    /** Base URL of the service, such as https://bmc.example:443 (the /redfish/v1 path is added). */
    url: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http:// or https:// URL'),
    auth: z.enum(['basic', 'session', 'none']).default('basic'),
    username: z.string().optional(),
    password: z.string().optional(),
    passwordFile: z.string().optional(),
    caFile: z.string().optional(),
    insecure: z.boolean().default(false),
    /** A Chassis id to read (default: every chassis that reports power). */
    chassis: z.string().optional(),
    /** An explicit resource: /redfish/v1/PowerEquipment/RackPDUs/1, /redfish/v1/ThermalEquipment/CDUs/1, ... */
    resource: z.string().startsWith('/redfish/v1').optional(),
    /** BMCs are slow: at most one read per this duration; between reads the last values are reused. */
    minInterval: durationMs.default('10s'),
    /** Discovery (which URLs carry power) is redone after this long, or after a read fails. */
    rediscover: durationMs.default('10m'),
  })
  .strict();
export type RedfishMeterConfig = z.output<typeof RedfishMeterSchema>;

const IpmiMeterSchema = z
  .object({
    ...common,
    protocol: z.literal('ipmi'),
    tool: z.enum(['ipmitool', 'ipmi-dcmi']).default('ipmitool'),
    /** Path of the tool binary (default: found on PATH). */
    command: z.string().optional(),
    /** BMC address; absent → the local BMC in-band (needs root and the ipmi_si driver). */
    host: z.string().optional(),
    port: z.number().int().min(1).max(65535).default(623),
    interface: z.enum(['lanplus', 'lan']).default('lanplus'),
    /** ipmitool -C: the RMCP+ cipher suite (3 or 17 on most BMCs); unset → ipmitool's own choice. */
    cipherSuite: z.number().int().min(0).max(17).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    passwordFile: z.string().optional(),
  })
  .strict();
export type IpmiMeterConfig = z.output<typeof IpmiMeterSchema>;

const MeterSchema = z.discriminatedUnion('protocol', [SnmpMeterSchema, ModbusMeterSchema, RedfishMeterSchema, IpmiMeterSchema]);

/** Profiles whose only point is heat removed: a cooling unit, never the room's IT feed. */
const THERMAL_ONLY_PROFILES: readonly string[] = ['apc-inrow'];

function checkMeter(m: z.output<typeof MeterSchema>, ctx: z.RefinementCtx, i: number): void {
  const issue = (message: string, ...path: Array<string | number>) =>
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, ...path], message });
  if (m.role === 'it' && (m.protocol === 'snmp' || m.protocol === 'modbus')) {
    // The room's IT energy is electrical: heat removed is not a measure of it.
    if (m.profile !== undefined && THERMAL_ONLY_PROFILES.includes(m.profile))
      issue(`profile ${m.profile} reads heat removed (a cooling unit): an IT meter (role: it) needs electrical points`, 'profile');
    const [key, points] = m.protocol === 'snmp' ? ['points', m.points] : ['registers', m.registers];
    points.forEach((p, j) => {
      if (p.kind.startsWith('thermal_')) issue(`${p.kind} is heat removed: an IT meter (role: it) reads power or energy`, key, j, 'kind');
    });
  }
  // A unit that does not fit its kind would fail every read: refuse it at start-up. (An SNMP point
  // with unitOid takes its unit, and its kind's energy/power, from the device.)
  if (m.protocol === 'snmp' || m.protocol === 'modbus') {
    const [key, points] = m.protocol === 'snmp' ? ['points', m.points] : ['registers', m.registers];
    points.forEach((p, j) => {
      if (!('unitOid' in p && p.unitOid) && !unitFitsKind(p.kind, p.unit))
        issue(`unit ${p.unit} does not fit kind ${p.kind} (${UNITS_OF_KIND})`, key, j, 'unit');
    });
  }
  if (m.protocol === 'snmp') {
    if (!m.profile && m.points.length === 0) issue('give a profile or at least one point');
    if (m.version === '3') {
      if (!m.user) issue('SNMPv3 needs a user', 'user');
      else {
        if (m.user.level !== 'noAuthNoPriv' && !m.user.authKey) issue(`level ${m.user.level} needs authKey`, 'user', 'authKey');
        if (m.user.level === 'authPriv' && !m.user.privKey) issue('level authPriv needs privKey', 'user', 'privKey');
      }
    }
    if (m.profile === 'liebert-flexible' && m.index === undefined)
      issue('liebert-flexible needs the data point index (such as 1.2.1.5000)', 'index');
  } else if (m.protocol === 'modbus') {
    if (!m.profile && m.registers.length === 0) issue('give a profile or at least one register');
    m.registers.forEach((r, j) => {
      try {
        resolveRegister(r);
      } catch (err) {
        issue((err as Error).message, 'registers', j, 'address');
      }
    });
  }
}

/** The `meters:` list. */
export const MetersSchema = z
  .array(MeterSchema)
  .default([])
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((m, i) => {
      if (seen.has(m.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'name'], message: `duplicate meter name "${m.name}"` });
      seen.add(m.name);
      checkMeter(m, ctx, i);
    });
  });

export type MeterConfig = SnmpMeterConfig | ModbusMeterConfig | RedfishMeterConfig | IpmiMeterConfig;

/** cooling.share: "it-meters" (node IT energy / room IT energy from the `it` meters) or a constant fraction. */
export const CoolingShareSchema = z.union([z.literal('it-meters'), z.number().min(0).max(1)]);
