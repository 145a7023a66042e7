/**
 * CPU thermal design power per socket, keyed by the model string /proc/cpuinfo (and
 * systeminformation) report, e.g. "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz" or
 * "AMD EPYC 7763 64-Core Processor". Each value is the vendor's published TDP (Intel: "TDP" /
 * "Processor Base Power"; AMD: "Default TDP") for that exact SKU, from the page cited next to it.
 * Cloud variants (e.g. "8375C") and configurable-TDP settings are not in the table: they fall back.
 */

export interface TdpEntry {
  /** Matched against the normalised model string (upper case, no ®/™/(R)/(TM), single spaces). */
  pattern: RegExp;
  name: string;
  wattsPerSocket: number;
  source: string;
}

const ARK = (sku: string) => `Intel ARK, "Intel Xeon ${sku} Processor" specifications (ark.intel.com)`;
const ARK_CORE = (sku: string) => `Intel ARK, "Intel Core ${sku} Processor" specifications (ark.intel.com), Processor Base Power`;
const AMD = (sku: string) => `AMD product specifications, "AMD ${sku}" (amd.com/en/products/processors), Default TDP`;

const xeon = (model: string, w: number): TdpEntry => ({
  pattern: new RegExp(`\\bXEON ${model.toUpperCase().replace('+', '\\+')}(?![0-9A-Z+])`),
  name: `Intel Xeon ${model}`,
  wattsPerSocket: w,
  source: ARK(model),
});
const epyc = (model: string, w: number): TdpEntry => ({
  pattern: new RegExp(`\\bEPYC ${model.toUpperCase()}(?![0-9A-Z])`),
  name: `AMD EPYC ${model}`,
  wattsPerSocket: w,
  source: AMD(`EPYC ${model}`),
});

export const CPU_TDP_TABLE: readonly TdpEntry[] = [
  // Intel Xeon Scalable, 1st gen (Skylake-SP)
  xeon('Platinum 8180', 205),
  xeon('Gold 6148', 150),
  xeon('Gold 6130', 125),
  xeon('Silver 4114', 85),
  // 2nd gen (Cascade Lake)
  xeon('Platinum 8280', 205),
  xeon('Platinum 8260', 165),
  xeon('Gold 6248', 150),
  xeon('Gold 6230', 125),
  xeon('Silver 4210', 85),
  // 3rd gen (Ice Lake-SP)
  xeon('Platinum 8380', 270),
  xeon('Platinum 8358', 250),
  xeon('Gold 6348', 235),
  xeon('Gold 6338', 205),
  xeon('Silver 4314', 135),
  // 4th gen (Sapphire Rapids)
  xeon('Platinum 8480+', 350),
  xeon('Platinum 8468', 350),
  xeon('Platinum 8462Y+', 300),
  xeon('Gold 6430', 270),
  xeon('Gold 6448Y', 225),
  // 5th gen (Emerald Rapids)
  xeon('Platinum 8592+', 350),
  xeon('Platinum 8580', 350),
  xeon('Gold 6548Y+', 250),
  // Xeon 6 (Granite Rapids-AP)
  xeon('6980P', 500),
  // AMD EPYC 7001 (Naples), 7002 (Rome), 7003 (Milan), 9004 (Genoa/Bergamo), 9005 (Turin)
  epyc('7601', 180),
  epyc('7742', 225),
  epyc('7702', 200),
  epyc('7H12', 280),
  epyc('7542', 225),
  epyc('7502', 180),
  epyc('7452', 155),
  epyc('7302', 155),
  epyc('7763', 280),
  epyc('7713', 225),
  epyc('7543', 225),
  epyc('7513', 200),
  epyc('75F3', 280),
  epyc('7313', 155),
  epyc('9654', 360),
  epyc('9554', 360),
  epyc('9454', 290),
  epyc('9354', 280),
  epyc('9754', 360),
  epyc('9965', 500),
  epyc('9755', 500),
  epyc('9655', 400),
  epyc('9555', 360),
  // NVIDIA Grace: the model string must name Grace; on aarch64 /proc/cpuinfo only says
  // "Neoverse-V2", shared with other vendors' CPUs, which therefore falls back.
  {
    pattern: /\bGRACE\b/,
    name: 'NVIDIA Grace',
    wattsPerSocket: 250,
    source: 'NVIDIA Grace CPU Superchip datasheet (nvidia.com): 500 W for the two-CPU Superchip including LPDDR5X, halved per CPU',
  },
  // Common desktop parts
  { pattern: /\bI9-14900K\b/, name: 'Intel Core i9-14900K', wattsPerSocket: 125, source: ARK_CORE('i9-14900K') },
  { pattern: /\bI9-13900K\b/, name: 'Intel Core i9-13900K', wattsPerSocket: 125, source: ARK_CORE('i9-13900K') },
  { pattern: /\bI7-13700K\b/, name: 'Intel Core i7-13700K', wattsPerSocket: 125, source: ARK_CORE('i7-13700K') },
  { pattern: /\bI9-12900K\b/, name: 'Intel Core i9-12900K', wattsPerSocket: 125, source: ARK_CORE('i9-12900K') },
  { pattern: /\bRYZEN 9 7950X(?![0-9A-Z])/, name: 'AMD Ryzen 9 7950X', wattsPerSocket: 170, source: AMD('Ryzen 9 7950X') },
  { pattern: /\bRYZEN 9 7900X(?![0-9A-Z])/, name: 'AMD Ryzen 9 7900X', wattsPerSocket: 170, source: AMD('Ryzen 9 7900X') },
  { pattern: /\bRYZEN 9 5950X\b/, name: 'AMD Ryzen 9 5950X', wattsPerSocket: 105, source: AMD('Ryzen 9 5950X') },
  { pattern: /\bRYZEN 7 5800X(?![0-9A-Z])/, name: 'AMD Ryzen 7 5800X', wattsPerSocket: 105, source: AMD('Ryzen 7 5800X') },
  {
    pattern: /\bTHREADRIPPER PRO 5995WX\b/,
    name: 'AMD Ryzen Threadripper PRO 5995WX',
    wattsPerSocket: 280,
    source: AMD('Ryzen Threadripper PRO 5995WX'),
  },
];

/** Upper case, trademark marks removed, spaces collapsed: "Intel(R) Xeon(R) Gold 6248" → "INTEL XEON GOLD 6248". */
export function normaliseCpuModel(model: string): string {
  return model
    .replace(/\((R|TM|C)\)|[®™]/gi, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .toUpperCase();
}

/** The table entry for a model string, or undefined when the CPU is not in the table. */
export function lookupCpuTdp(model: string): TdpEntry | undefined {
  const m = normaliseCpuModel(model);
  return CPU_TDP_TABLE.find((e) => e.pattern.test(m));
}
