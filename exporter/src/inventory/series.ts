import { Gauge, type Registry } from 'prom-client';
import type { ModelChoices } from './choices';
import type { Inventory } from './collect';

/**
 * What the inventory publishes, as pure functions of it: the info and model-parameter series
 * (a list the metrics layer registers) and the landing page's lines. Label values are bounded:
 * one series per device found at start-up, model strings as the hardware reports them.
 */

export interface InfoSeries {
  name: string;
  help: string;
  labels: Record<string, string>;
  value: number;
}

/** A GPU as its source describes it (NVML, AMD SMI). */
export interface GpuDescription {
  device: string;
  vendor: string;
  model: string;
  uuid: string;
  powerLimitWatts?: number;
}

export const NODE_INFO = 'jouleflow_node_info';
export const DEVICE_INFO = 'jouleflow_device_info';
export const MODEL_PARAMETER = 'jouleflow_model_parameter';

const NODE_HELP = 'Hardware of this node found at start-up (CPU, memory, system); always 1.';
const DEVICE_HELP =
  'One series per measured device, always 1: join on `device` with jouleflow_node_energy_joules_total (GPU model, UUID and power limit; disk kind and model; NIC link speed).';
const PARAM_HELP =
  'Model parameter in use, in the unit its name ends with; basis: config (the user\u2019s), inventory (chosen from the hardware) or default.';

const gib = (b: number) => (b / 2 ** 30).toFixed(1);

/** Which models run (RAPL measures instead where it has the domain): only their devices and parameters are published. */
export interface ModelsInUse {
  cpu: boolean;
  dram: boolean;
  /** CPU and DRAM devices measured instead (RAPL package-N, dram-N). */
  measured?: ReadonlyArray<{ device: string; kind: 'cpu' | 'dram' }>;
}

/** The choices of the models in use (NIC choices always: netdev has no measured alternative). */
export function choicesInUse(choices: ModelChoices, used: ModelsInUse) {
  return [...(used.cpu ? [choices.cpu] : []), ...(used.dram ? [choices.dram] : []), ...choices.nics];
}

export function hardwareSeries(
  inv: Inventory | undefined,
  choices: ModelChoices,
  gpus: readonly GpuDescription[],
  used: ModelsInUse,
): InfoSeries[] {
  const out: InfoSeries[] = [];
  const dimmTypes = [...new Set((inv?.dimms ?? []).map((d) => d.type).filter(Boolean))].join(',');
  out.push({
    name: NODE_INFO,
    help: NODE_HELP,
    value: 1,
    labels: {
      cpu_model: inv?.cpu?.model ?? '',
      cpu_sockets: String(inv?.cpu?.sockets ?? ''),
      cpu_cores: String(inv?.cpu?.cores ?? ''),
      cpu_threads: String(inv?.cpu?.threads ?? ''),
      memory_bytes: String(inv?.memoryBytes ?? ''),
      dimms: String(inv?.dimms.length ?? 0),
      dimm_type: dimmTypes,
      system_model: inv?.system?.model ?? '',
      virtual: inv?.system ? String(inv.system.virtual) : '',
      inventory_scope: inv?.scope ?? '',
    },
  });
  const device = (labels: Record<string, string>): InfoSeries => ({ name: DEVICE_INFO, help: DEVICE_HELP, value: 1, labels });
  for (const g of gpus) {
    out.push(
      device({
        device: g.device,
        component: 'compute',
        kind: 'gpu',
        vendor: g.vendor,
        model: g.model,
        uuid: g.uuid,
        power_limit_watts: g.powerLimitWatts !== undefined ? String(g.powerLimitWatts) : '',
      }),
    );
  }
  if (used.cpu)
    out.push(
      device({
        device: choices.cpu.device,
        component: 'compute',
        kind: 'cpu',
        vendor: inv?.cpu?.vendor ?? '',
        model: inv?.cpu?.model ?? '',
      }),
    );
  if (used.dram) out.push(device({ device: choices.dram.device, component: 'compute', kind: 'dram', model: dimmTypes }));
  for (const m of used.measured ?? []) {
    const cpu = m.kind === 'cpu';
    out.push(
      device({
        device: m.device,
        component: 'compute',
        kind: m.kind,
        vendor: cpu ? (inv?.cpu?.vendor ?? '') : '',
        model: cpu ? (inv?.cpu?.model ?? '') : dimmTypes,
      }),
    );
  }
  for (const d of inv?.disks ?? [])
    out.push(device({ device: d.device, component: 'store', kind: d.kind, vendor: d.vendor ?? '', model: d.model ?? '' }));
  for (const n of inv?.nics ?? []) {
    out.push(
      device({
        device: n.device,
        component: 'transmit',
        kind: 'nic',
        link_speed_mbps: n.speedMbps !== undefined ? String(n.speedMbps) : '',
      }),
    );
  }
  for (const c of choicesInUse(choices, used)) {
    out.push({
      name: MODEL_PARAMETER,
      help: PARAM_HELP,
      value: c.value,
      labels: { component: c.component, device: c.device, parameter: c.parameter, basis: c.basis },
    });
  }
  return out;
}

/** Plain-text lines for the landing page: what the node is, what the inventory describes, each model choice and why. */
export function hardwareLandingLines(
  inv: Inventory | undefined,
  choices: ModelChoices,
  gpus: readonly GpuDescription[],
  used: ModelsInUse,
): string[] {
  const lines: string[] = [];
  if (inv?.cpu) lines.push(`hardware: ${inv.cpu.model}, ${inv.cpu.sockets} socket(s), ${inv.cpu.cores} cores / ${inv.cpu.threads} threads`);
  if (inv?.memoryBytes !== undefined) lines.push(`memory: ${gib(inv.memoryBytes)} GiB in ${inv.dimms.length} DIMM(s)`);
  if (inv?.system)
    lines.push(
      `system: ${[inv.system.vendor, inv.system.model].filter(Boolean).join(' ') || 'unknown'}${inv.system.virtual ? ' (virtual)' : ''}`,
    );
  for (const g of gpus)
    lines.push(`${g.device}: ${g.model} (${g.vendor}${g.powerLimitWatts !== undefined ? `, power limit ${g.powerLimitWatts} W` : ''})`);
  lines.push(
    `inventory describes: ${inv?.scope === 'exporter-view' ? 'the host files under --path.sysfs/--path.procfs, see note' : 'this host'}`,
  );
  for (const n of inv?.notes ?? []) lines.push(`inventory note: ${n}`);
  for (const c of choicesInUse(choices, used))
    lines.push(`model ${c.parameter}{device="${c.device}"} = ${Math.round(c.value * 1000) / 1000} (${c.basis}: ${c.reason})`);
  return lines;
}

/** The hook into today's metrics: registers the series as gauges (replacing any earlier set, for a reload). */
export function registerSeries(registry: Registry, series: readonly InfoSeries[]): void {
  const byName = new Map<string, InfoSeries[]>();
  for (const s of series) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  for (const [name, list] of byName) {
    registry.removeSingleMetric(name);
    const labelNames = [...new Set(list.flatMap((s) => Object.keys(s.labels)))];
    const g = new Gauge({ name, help: list[0].help, labelNames, registers: [registry] });
    for (const s of list) g.set(s.labels, s.value);
  }
}
