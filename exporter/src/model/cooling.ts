import type { SeriesDelta } from './energy';

/**
 * Cooling energy where no cooling meter answers: a model, always labelled source="model".
 *
 * PUE mode: E_cool = E_IT · (PUE − 1)   (PUE = total facility energy / IT energy, dimensionless)
 * COP mode: E_cool = E_IT / COP          (COP = heat removed / electrical work, dimensionless;
 *                                         all IT electrical energy ends up as heat to remove)
 */

export interface CoolingModelConfig {
  mode: 'pue' | 'cop';
  pue: number;
  supplyAirCelsius: number;
}

/** CRAC coefficient of performance against supply-air temperature T in °C (Moore et al. 2005). */
export function copAt(celsius: number): number {
  return 0.0068 * celsius * celsius + 0.0008 * celsius + 0.458;
}

/** Cooling joules per IT joule under the configured model. */
export function coolingFactor(cfg: CoolingModelConfig): number {
  return cfg.mode === 'pue' ? cfg.pue - 1 : 1 / copAt(cfg.supplyAirCelsius);
}

export const COOLING_MODEL_DEVICE = 'facility';

export function modelCooling(itJoules: number, dtSeconds: number, cfg: CoolingModelConfig): SeriesDelta {
  const joules = itJoules * coolingFactor(cfg);
  return {
    component: 'cooling',
    domain: 'cooling',
    device: COOLING_MODEL_DEVICE,
    source: 'model',
    joules,
    watts: dtSeconds > 0 ? joules / dtSeconds : 0,
  };
}
