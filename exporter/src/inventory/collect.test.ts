import { parseCpuinfo } from './collect';

/** /proc/cpuinfo as x86 kernels write it: one block per logical CPU, blank lines between. */
function cpuinfo(cpus: Array<{ socket: number; core: number }>, model: string, vendor = 'GenuineIntel'): string {
  return cpus
    .map(
      ({ socket, core }, i) =>
        `processor\t: ${i}\nvendor_id\t: ${vendor}\ncpu family\t: 6\nmodel name\t: ${model}\nphysical id\t: ${socket}\n` +
        `core id\t\t: ${core}\ncpu cores\t: 2\nflags\t\t: fpu vme sse2\n`,
    )
    .join('\n');
}

test('two sockets × two cores × two threads: 2 sockets, 4 cores, 8 threads, the model as written', () => {
  const cpus = [];
  for (let thread = 0; thread < 2; thread++) for (const socket of [0, 1]) for (const core of [0, 1]) cpus.push({ socket, core });
  const model = 'Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz';
  expect(parseCpuinfo(cpuinfo(cpus, model))).toEqual({ model, vendor: 'Intel', sockets: 2, cores: 4, threads: 8 });
});

test('AMD vendor id; a kernel without physical/core ids counts one socket and a core per thread', () => {
  const text = [0, 1, 2]
    .map((i) => `processor\t: ${i}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n`)
    .join('\n');
  expect(parseCpuinfo(text)).toEqual({ model: 'AMD EPYC 7763 64-Core Processor', vendor: 'AMD', sockets: 1, cores: 3, threads: 3 });
});

test('aarch64 cpuinfo names no model: undefined (systeminformation describes the CPU later)', () => {
  const text =
    'processor\t: 0\nBogoMIPS\t: 2000.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n\nprocessor\t: 1\nCPU implementer\t: 0x41\n';
  expect(parseCpuinfo(text)).toBeUndefined();
});
