import { cString, decodeProcessInfos, decodeProcessSamples, PROCESS_INFO_V3_SIZE, PROCESS_UTIL_SAMPLE_SIZE } from './nvml-binding';
import { smUtilByPid } from './nvml';

/** Byte layouts of nvml.h structs, built by hand here (x86-64/arm64 natural alignment). */

test('nvmlProcessInfo_v3_t: pid @0, usedGpuMemory @8 (u64), gpuInstanceId @16, computeInstanceId @20', () => {
  const buf = Buffer.alloc(2 * PROCESS_INFO_V3_SIZE);
  buf.writeUInt32LE(458, 0);
  buf.writeBigUInt64LE(27049066496n, 8);
  buf.writeUInt32LE(0xffffffff, 16);
  buf.writeUInt32LE(0xffffffff, 20);
  buf.writeUInt32LE(1002, 24);
  buf.writeBigUInt64LE(8n * 2n ** 30n, 32);
  buf.writeUInt32LE(1, 40);
  buf.writeUInt32LE(0, 44);
  expect(decodeProcessInfos(buf, 2)).toEqual([
    { pid: 458, usedGpuMemory: 27049066496, gpuInstanceId: 0xffffffff, computeInstanceId: 0xffffffff },
    { pid: 1002, usedGpuMemory: 8589934592, gpuInstanceId: 1, computeInstanceId: 0 },
  ]);
});

test('usedGpuMemory NVML_VALUE_NOT_AVAILABLE (all ones, e.g. WDDM/vGPU) decodes as unknown, not 1.8e19 bytes', () => {
  const buf = Buffer.alloc(PROCESS_INFO_V3_SIZE);
  buf.writeUInt32LE(458, 0);
  buf.writeBigUInt64LE(0xffffffffffffffffn, 8);
  buf.writeUInt32LE(0xffffffff, 16);
  buf.writeUInt32LE(0xffffffff, 20);
  expect(decodeProcessInfos(buf, 1)).toEqual([
    { pid: 458, usedGpuMemory: undefined, gpuInstanceId: 0xffffffff, computeInstanceId: 0xffffffff },
  ]);
});

test('nvmlProcessUtilizationSample_t: pid @0, timeStamp @8 (u64 µs), smUtil @16, memUtil @20, encUtil @24, decUtil @28', () => {
  const buf = Buffer.alloc(PROCESS_UTIL_SAMPLE_SIZE);
  buf.writeUInt32LE(458, 0);
  buf.writeBigUInt64LE(1795893165036132n, 8);
  buf.writeUInt32LE(99, 16);
  buf.writeUInt32LE(23, 20);
  buf.writeUInt32LE(1, 24);
  buf.writeUInt32LE(2, 28);
  expect(decodeProcessSamples(buf, 1)).toEqual([
    { pid: 458, timeStamp: 1795893165036132n, smUtil: 99, memUtil: 23, encUtil: 1, decUtil: 2 },
  ]);
});

test('cString stops at NUL and at the field size', () => {
  expect(cString(Buffer.from('NVIDIA H200\0garbage'))).toBe('NVIDIA H200');
  expect(cString(Buffer.from('xx00000000:18:00.0\0'), 2, 32)).toBe('00000000:18:00.0');
  expect(cString(Buffer.from('abcdef'), 0, 3)).toBe('abc');
});

test('smUtilByPid averages the samples of each pid', () => {
  const s = (pid: number, smUtil: number) => ({ pid, smUtil, timeStamp: 1n, memUtil: 0, encUtil: 0, decUtil: 0 });
  const m = smUtilByPid([s(1, 80), s(2, 20), s(1, 60)]);
  expect(m.get(1)).toBe(70);
  expect(m.get(2)).toBe(20);
});
