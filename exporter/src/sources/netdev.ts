import type { Logger } from '../util/log';
import { exists, join, KernelFiles, listDir, readText } from '../util/fs';
import { parseProcNetDev } from '../util/procfs';

export { parseProcNetDev };
import type { NetdevConfig } from './schema';
import type { ActivityReading, SampleResult, Source } from './types';

/**
 * Network energy: ΔE = bits moved · e_bit + P_idle · Δt, per physical interface, from
 * /sys/class/net/IF/statistics/{rx,tx}_bytes (or /proc/net/dev where sysfs has no class/net).
 * Physical = has a `device` link in sysfs; loopback, veth, bridges, tunnels are skipped unless
 * matched by the include pattern.
 */

export interface NicParams {
  idleWatts: number;
  joulesPerBit: number;
}

/** 5 pJ/bit: in-cluster links (switch + NIC); idle power of a NIC port, an assumption to tune. */
const ARPHRD_INFINIBAND = 32;

export const NIC_DEFAULTS: NicParams = { idleWatts: 1, joulesPerBit: 5e-12 };

export type { NetdevConfig };

/**
 * Whether a network interface is a physical port whose traffic is its own: it has a device, and
 * is not an SR-IOV virtual function (a VF's traffic crosses its physical port, counted there), nor
 * an IPoIB interface when `skipIpoib` (its port is counted by the InfiniBand source). The hardware
 * inventory describes the same set of NICs.
 */
export async function isPhysicalPort(sysfs: string, name: string, skipIpoib: boolean): Promise<boolean> {
  const dev = join(sysfs, 'class/net', name, 'device');
  if (!(await exists(dev)) || (await exists(join(dev, 'physfn')))) return false;
  if (!skipIpoib) return true;
  const type = await readText(join(sysfs, 'class/net', name, 'type')).catch(() => '');
  return type.trim() !== String(ARPHRD_INFINIBAND);
}

export class NetdevSource implements Source {
  readonly name = 'netdev';
  private readonly include?: RegExp;
  private readonly exclude: RegExp;
  private readonly physical = new Map<string, boolean>();
  private useSysfs = true;
  /**
   * Interface statistics (sysfs or /proc/net/dev) are the kernel's in-memory counters, read at once
   * without a device round trip: synchronous reads through kept descriptors.
   */
  private readonly files = new KernelFiles();
  private readonly netDevPath: string;
  private readonly classNet: string;

  constructor(
    procfs: string,
    private readonly sysfs: string,
    private readonly cfg: NetdevConfig,
    private readonly log: Logger,
    /** IPoIB interfaces are skipped when the InfiniBand source counts their ports (all traffic). */
    private readonly skipIpoib = false,
  ) {
    this.include = cfg.include ? new RegExp(cfg.include) : undefined;
    this.exclude = new RegExp(cfg.exclude);
    this.netDevPath = join(procfs, 'net/dev');
    this.classNet = join(sysfs, 'class/net');
  }

  async close(): Promise<void> {
    this.files.close();
  }

  async init(): Promise<boolean> {
    this.useSysfs = (await listDir(join(this.sysfs, 'class/net'))).length > 0;
    const ifs = await this.interfaces();
    this.log.info('network interfaces found', { interfaces: ifs.join(',') || 'none', via: this.useSysfs ? 'sysfs' : 'procfs' });
    return true;
  }

  private params(name: string): NicParams {
    return { ...NIC_DEFAULTS, ...this.cfg.defaults, ...this.cfg.devices[name] } as NicParams;
  }

  private async counted(name: string): Promise<boolean> {
    if (this.include?.test(name)) return true;
    if (this.exclude.test(name)) return false;
    if (!this.useSysfs) return true;
    let phys = this.physical.get(name);
    if (phys === undefined) {
      phys = await isPhysicalPort(this.sysfs, name, this.skipIpoib);
      this.physical.set(name, phys);
    }
    return phys;
  }

  /** The interfaces now (listed every tick: one that appears is counted from its first tick). */
  private async interfaces(): Promise<string[]> {
    const names = this.useSysfs
      ? await this.files.list(this.classNet)
      : parseProcNetDev(await this.files.read(this.netDevPath)).map((d) => d.name);
    const out = [];
    for (const n of names) if (await this.counted(n)) out.push(n);
    return out;
  }

  private reading(name: string, rxBytes: number, txBytes: number): ActivityReading {
    const p = this.params(name);
    const jPerByte = p.joulesPerBit * 8;
    return {
      kind: 'activity',
      component: 'transmit',
      domain: 'nic',
      device: name,
      source: this.name,
      counters: { rx_bytes: rxBytes, tx_bytes: txBytes },
      joulesPerUnit: { rx_bytes: jPerByte, tx_bytes: jPerByte },
      idleWatts: p.idleWatts,
    };
  }

  async sample(): Promise<SampleResult> {
    const readings: ActivityReading[] = [];
    if (this.useSysfs) {
      for (const name of await this.interfaces()) {
        const stats = `${this.classNet}/${name}/statistics/`;
        readings.push(this.reading(name, await this.files.readNumber(stats + 'rx_bytes'), await this.files.readNumber(stats + 'tx_bytes')));
      }
    } else {
      for (const d of parseProcNetDev(await this.files.read(this.netDevPath))) {
        if (await this.counted(d.name)) readings.push(this.reading(d.name, d.rxBytes, d.txBytes));
      }
    }
    return { readings };
  }
}
