import { CPU_TDP_TABLE, lookupCpuTdp, normaliseCpuModel } from './cpu-tdp';

describe('CPU TDP table', () => {
  // Model strings as /proc/cpuinfo prints them on such machines, with the vendor's published TDP.
  test.each([
    ['Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz', 270],
    ['Intel(R) Xeon(R) Platinum 8480+', 350],
    ['Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz', 150],
    ['Intel(R) Xeon(R) Silver 4114 CPU @ 2.20GHz', 85],
    ['AMD EPYC 7763 64-Core Processor', 280],
    ['AMD EPYC 7H12 64-Core Processor', 280],
    ['AMD EPYC 9654 96-Core Processor', 360],
    ['13th Gen Intel(R) Core(TM) i9-13900K', 125],
    ['AMD Ryzen 9 7950X 16-Core Processor', 170],
  ])('%s → %d W per socket', (model, watts) => {
    expect(lookupCpuTdp(model)?.wattsPerSocket).toBe(watts);
  });

  test.each([
    'AMD EPYC', // a VM's masked model string
    'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz', // cloud variant: not the 8375 or any listed part
    'Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz', // the R refresh has its own TDP (205 W)
    'AMD Ryzen 9 7950X3D 16-Core Processor', // X3D: 120 W, not the 7950X's 170 W
    'Neoverse-V2', // aarch64 cpuinfo: shared by Grace, Graviton4, Axion
  ])('%s is not in the table (no false match on a sibling SKU)', (model) => {
    expect(lookupCpuTdp(model)).toBeUndefined();
  });

  test('trademark marks in either spelling normalise the same', () => {
    expect(normaliseCpuModel('Intel® Xeon® Platinum 8380')).toBe(normaliseCpuModel('Intel(R) Xeon(R) Platinum 8380'));
  });

  test('every entry cites its public source, has a plausible server/desktop TDP, and matches its own name only once', () => {
    for (const e of CPU_TDP_TABLE) {
      expect(e.source.length).toBeGreaterThan(20);
      expect(e.wattsPerSocket).toBeGreaterThanOrEqual(35);
      expect(e.wattsPerSocket).toBeLessThanOrEqual(500);
      expect(CPU_TDP_TABLE.filter((o) => o.pattern.test(normaliseCpuModel(e.name)))).toEqual([e]);
    }
  });
});
