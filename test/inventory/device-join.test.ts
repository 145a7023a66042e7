import { parseConfig } from '../../exporter/src/config';
import { createExporter } from '../../exporter/src/exporter';
import { createLogger } from '../../exporter/src/util/log';
import { FixtureTree } from '../helpers/fixture';
import { metricValues } from '../nvml/fake-nvml';

/**
 * Dashboards join jouleflow_device_info on `device`: on a recorded host tree (RAPL packages and
 * DRAM, NVMe and SATA disks, Ethernet), every device with IT energy has exactly one info series of
 * the same component.
 */

test('every device on jouleflow_node_energy_joules_total (IT components) has one jouleflow_device_info', async () => {
  const tree = new FixtureTree();
  const cfg = parseConfig({
    web: { listenAddress: '127.0.0.1:0' },
    paths: { sysfs: tree.sysfs, procfs: tree.procfs },
    sources: { nvml: false, amdsmi: false },
    jobs: { ledger: '' },
  });
  const exp = await createExporter(cfg, { log: createLogger('error') });
  try {
    await exp.sampler.tick();
    await exp.sampler.tick();
    const energy = (await metricValues(exp.metrics.nodeEnergy)).filter((v) => v.labels.component !== 'cooling');
    const info = await metricValues({
      get: async () => (await exp.metrics.registry.getSingleMetric('jouleflow_device_info')?.get()) ?? { values: [] },
    });
    const devices = [...new Set(energy.map((v) => `${v.labels.component}/${v.labels.device}`))].sort();
    expect(devices.length).toBeGreaterThan(3);
    expect(devices.some((d) => /^compute\/package-/.test(d))).toBe(true);
    for (const d of devices) {
      const [component, device] = d.split('/');
      expect([d, info.filter((i) => i.labels.device === device && i.labels.component === component).length]).toEqual([d, 1]);
    }
  } finally {
    await exp.close();
    tree.cleanup();
  }
});
