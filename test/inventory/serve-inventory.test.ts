import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { startServe, waitFor, type RunningExporter } from '../helpers/exporter-process';

/**
 * `serve` on this machine's /proc and /sys, with the CPU and DRAM models in use: the first
 * exposition comes before systeminformation has answered (the host facts only: the CPU from
 * /proc/cpuinfo), and its part (DIMMs, system) is published when it lands, without a restart.
 */

let dir: string;
let s: RunningExporter | undefined;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'jf-inv-'));
  writeFileSync(join(dir, 'config.yml'), 'sources:\n  rapl: false\n  nvml: false\n  amdsmi: false\n');
});
afterAll(async () => {
  await s?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
const nodeInfo = (text: string) => /^jouleflow_node_info\{(.*)\} 1$/m.exec(text)?.[1];
const label = (labels: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(labels)?.[1];

test('the CPU comes from /proc/cpuinfo at once; the DIMM list and system follow, and the DRAM choice says why', async () => {
  s = await startServe([`--config.file=${join(dir, 'config.yml')}`]);
  const first = await (await fetch(`${s.url}/metrics`)).text();
  expect(first).toMatch(/^jouleflow_node_energy_joules_total\{.*component="compute".*device="dram".*\} /m);
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1].trim();
  if (model) expect(label(nodeInfo(first) ?? '', 'cpu_model')).toBe(model);
  expect(label(nodeInfo(first) ?? '', 'cpu_threads')).toBe(String((cpuinfo.match(/^processor\s*:/gm) ?? []).length));

  // Bounded wait for systeminformation's step: the DRAM line then gives the final reason.
  const page = await waitFor(
    async () => {
      const html = await (await fetch(s!.url)).text();
      return /model dram_watts/.test(html) && !/not read yet/.test(html) ? html : undefined;
    },
    'the inventory to complete',
    30_000,
  );
  expect(page).toMatch(/model dram_watts\{device=&#34;dram&#34;\} = [\d.]+ \((inventory|default): /);
  const after = nodeInfo(await (await fetch(`${s.url}/metrics`)).text()) ?? '';
  // A VM by the kernel's own word (x86 "hypervisor" flag) is a VM whatever systeminformation says.
  if (/^flags\s*:.*\bhypervisor\b/m.test(cpuinfo) && label(after, 'system_model') !== '') expect(label(after, 'virtual')).toBe('true');
  expect(await s.stop('SIGTERM')).toBe(0);
  s = undefined;
}, 60_000);
