import type { Logger } from '../util/log';
import { join, listDir, readNumber, readTrimmed } from '../util/fs';
import type { ActivityReading, SampleResult, Source } from './types';

/**
 * InfiniBand ports: where NCCL moves a training job's gradients. RDMA bypasses the kernel's network
 * stack, so /proc/net/dev never sees it; the HCA's port counters do
 * (/sys/class/infiniband/DEV/ports/N/counters/port_{xmit,rcv}_data, in units of 4 bytes).
 * Only ports whose link layer is InfiniBand: a RoCE port is an Ethernet netdev already.
 * ΔE = bits moved · e_bit + P_idle · Δt, like every NIC.
 */

/** port_*_data counts 32-bit words ("octets divided by 4", IBTA PortCounters). */
export const IB_DATA_UNIT_BYTES = 4;

export interface IbParams {
  idleWatts: number;
  joulesPerBit: number;
}

interface Port {
  device: string;
  counters: string;
}

export class InfinibandSource implements Source {
  readonly name = 'infiniband';
  private ports: Port[] = [];

  constructor(
    private readonly sysfs: string,
    private readonly params: (device: string) => IbParams,
    private readonly log: Logger,
  ) {}

  private initialised: Promise<boolean> | undefined;

  /** Idempotent: the source list probes it (to decide about IPoIB netdevs), the sampler asks again. */
  init(): Promise<boolean> {
    this.initialised ??= this.discover();
    return this.initialised;
  }

  private async discover(): Promise<boolean> {
    const base = join(this.sysfs, 'class/infiniband');
    for (const hca of await listDir(base)) {
      for (const port of await listDir(join(base, hca, 'ports'))) {
        const dir = join(base, hca, 'ports', port);
        const layer = await readTrimmed(join(dir, 'link_layer')).catch(() => 'InfiniBand');
        if (layer !== 'InfiniBand') continue;
        this.ports.push({ device: `${hca}:${port}`, counters: join(dir, 'counters') });
      }
    }
    if (this.ports.length === 0) {
      this.log.debug('no InfiniBand ports', { path: base });
      return false;
    }
    this.log.info('InfiniBand ports found', { ports: this.ports.map((p) => p.device).join(',') });
    return true;
  }

  async sample(): Promise<SampleResult> {
    const readings: ActivityReading[] = [];
    const errors = [];
    for (const p of this.ports) {
      try {
        const [xmit, rcv] = await Promise.all([
          readNumber(join(p.counters, 'port_xmit_data')),
          readNumber(join(p.counters, 'port_rcv_data')),
        ]);
        const { idleWatts, joulesPerBit } = this.params(p.device);
        readings.push({
          kind: 'activity',
          component: 'transmit',
          domain: 'nic',
          device: p.device,
          source: this.name,
          counters: { xmit_bytes: xmit * IB_DATA_UNIT_BYTES, rcv_bytes: rcv * IB_DATA_UNIT_BYTES },
          joulesPerUnit: { xmit_bytes: joulesPerBit * 8, rcv_bytes: joulesPerBit * 8 },
          idleWatts,
        });
      } catch (err) {
        errors.push({ device: p.device, reason: 'read', message: (err as Error).message });
      }
    }
    return { readings, errors };
  }
}
