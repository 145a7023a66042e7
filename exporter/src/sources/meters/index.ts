import type { Config } from '../../config';
import { ConfigError, defaultSampleTimeout } from '../../config';
import type { CoolingMeters } from '../../model/cooling';
import type { Logger } from '../../util/log';
import type { Source } from '../types';
import { defaultCop } from './common';
import { IpmiMeterSource } from './ipmi';
import { ModbusMeterSource } from './modbus';
import { RedfishMeterSource } from './redfish';
import { SnmpMeterSource } from './snmp';

/** One source per configured meter (docs/meters.md). */
export function createMeterSources(cfg: Config, log: Logger): Source[] {
  checkShare(cfg);
  const cop = defaultCop(cfg.cooling.supplyAirCelsius);
  const sampleTimeout = cfg.sample.timeout ?? defaultSampleTimeout(cfg.sample.interval);
  return cfg.meters.map((m) => {
    // Below the sampler's per-source timeout, so the meter reports its own, clearer error first.
    const timeout = Math.max(1, Math.min(m.timeout ?? Math.floor(cfg.sample.interval * 0.7), Math.floor(sampleTimeout * 0.9)));
    const l = log.child({ source: `${m.protocol}:${m.name}` });
    switch (m.protocol) {
      case 'snmp':
        return new SnmpMeterSource(m, timeout, cop, l);
      case 'modbus':
        return new ModbusMeterSource(m, timeout, cop, l);
      case 'redfish':
        return new RedfishMeterSource(m, timeout, cop, l);
      case 'ipmi':
        return new IpmiMeterSource(m, timeout, cop, l);
    }
  });
}

/** The meter names and share for the sampler's cooling accounting. */
export function coolingMeters(cfg: Config): CoolingMeters {
  return {
    cooling: cfg.meters.filter((m) => m.role === 'cooling').map((m) => m.name),
    it: cfg.meters.filter((m) => m.role === 'it').map((m) => m.name),
    share: cfg.cooling.share,
  };
}

function checkShare(cfg: Config): void {
  const m = coolingMeters(cfg);
  if (m.cooling.length === 0) return;
  if (cfg.cooling.share === undefined && m.it.length === 0) {
    throw new ConfigError(
      "cooling.share: cooling meters are configured, but not how much of their energy is this node's: set cooling.share to a constant (0..1) or add meters with role: it (the room's PDUs/UPSes) and share: it-meters",
    );
  }
  if (cfg.cooling.share === 'it-meters' && m.it.length === 0) {
    throw new ConfigError('cooling.share: "it-meters" needs at least one meter with role: it');
  }
}
