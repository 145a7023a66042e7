import { decodePowerWatts, decodeProcesses, POWER_INFO_SIZE, PROC_INFO_SIZE } from './amdsmi-binding';

/**
 * The decoders against buffers laid out by hand from amdsmi.h (library major 26, x86-64):
 * amdsmi_proc_info_t { char name[256]; uint32_t pid; uint64_t mem; struct { uint64_t gfx, enc;
 * uint32_t reserved[12]; } engine_usage; struct { uint64_t gtt_mem, cpu_mem, vram_mem; uint32_t
 * reserved[10]; } memory_usage; char container_name[256]; uint32_t cu_occupancy, evicted_time;
 * uint32_t reserved[10]; } and amdsmi_power_info_t { uint64_t socket_power; uint32_t
 * current_socket_power, average_socket_power; uint64_t gfx/soc/mem_voltage; uint32_t power_limit;
 * uint64_t reserved[18]; }.
 */

test('struct sizes follow from the header with natural alignment', () => {
  expect(PROC_INFO_SIZE).toBe(256 + 4 + 4 /* pad */ + 8 + (8 + 8 + 48) + (24 + 40) + 256 + 4 + 4 + 40);
  expect(POWER_INFO_SIZE).toBe(8 + 4 + 4 + 24 + 4 + 4 /* pad */ + 144);
});

test('process entries: pid, VRAM (else mem) and GFX engine ns of each', () => {
  const buf = Buffer.alloc(2 * PROC_INFO_SIZE);
  const put = (i: number, pid: number, mem: bigint, gfx: bigint, vram: bigint) => {
    const o = i * PROC_INFO_SIZE;
    buf.write('python3', o);
    buf.writeUInt32LE(pid, o + 256);
    buf.writeBigUInt64LE(mem, o + 256 + 8);
    buf.writeBigUInt64LE(gfx, o + 256 + 8 + 8);
    buf.writeBigUInt64LE(vram, o + 256 + 8 + 8 + 64 + 16);
  };
  put(0, 4242, 1n << 30n, 123_456_789n, 20n << 30n);
  put(1, 77, 3n << 30n, 5n, 0n);
  expect(decodeProcesses(buf, 2)).toEqual([
    { pid: 4242, vramBytes: 20 * 2 ** 30, gfxNs: 123_456_789 },
    { pid: 77, vramBytes: 3 * 2 ** 30, gfxNs: 5 },
  ]);
});

test('socket power: current (MI300+), else average (MI200), unsupported fields read UINT32_MAX', () => {
  const buf = Buffer.alloc(POWER_INFO_SIZE, 0xff);
  expect(decodePowerWatts(buf)).toBeUndefined();
  buf.writeUInt32LE(311, 12); // average_socket_power
  expect(decodePowerWatts(buf)).toBe(311);
  buf.writeUInt32LE(540, 8); // current_socket_power
  expect(decodePowerWatts(buf)).toBe(540);
});
