import { cx } from '@emotion/css';
import React from 'react';

import { COMPONENT_KEYS, COMPONENT_LABELS, ComponentKey } from '../data/components';
import { EfficiencyModel, perMillionUnits, singularUnit } from '../data/efficiency';
import { Formatters } from '../data/format';
import { JobRow } from '../data/rows';
import { TestIds } from '../testIds';
import { RowLabel } from './RowLabel';
import { Styles } from './styles';

interface Props {
  eff: EfficiencyModel;
  carbonIntensity?: number;
  pricePerKWh?: number;
  colors: Record<ComponentKey, string>;
  fmt: Formatters;
  styles: Styles;
  linkFor: (row: JobRow) => string | undefined;
}

/**
 * Joules per unit of work, one block per unit with its own axis (bars scale to the largest job of
 * that unit only), stacked by component; kWh, g CO₂ and cost per million units beside each bar.
 */
export function EfficiencyView({ eff, carbonIntensity, pricePerKWh, colors, fmt, styles, linkFor }: Props) {
  const showCo2 = carbonIntensity !== undefined;
  const showCost = pricePerKWh !== undefined;
  const columns = ['minmax(80px, 22%)', 'minmax(60px, 1fr)', 'max-content', 'max-content'];
  if (showCo2) {
    columns.push('max-content');
  }
  if (showCost) {
    columns.push('max-content');
  }
  return (
    <div data-testid={TestIds.efficiencyView}>
      {eff.groups.map((g) => {
        const one = singularUnit(g.unit);
        return (
          <section key={g.unit} data-testid={TestIds.efficiencyGroup} data-unit={g.unit} className={styles.effGroup}>
            <div className={styles.effTitle}>
              Energy per {one}
              {g.hiddenJobs > 0 && (
                <span className={styles.muted}>
                  {' '}
                  (top {g.rows.length}; {g.hiddenJobs} more not shown)
                </span>
              )}
            </div>
            <div className={styles.barsGrid} style={{ gridTemplateColumns: columns.join(' ') }}>
              <div className={styles.row}>
                <div />
                <div />
                <div className={cx(styles.header, styles.number)}>J / {one}</div>
                <div className={cx(styles.header, styles.number)}>kWh / M {g.unit}</div>
                {showCo2 && <div className={cx(styles.header, styles.number)}>CO₂ / M</div>}
                {showCost && <div className={cx(styles.header, styles.number)}>Cost / M</div>}
              </div>
              {g.rows.map((row) => {
                // kWh per million units = J per unit × 10⁶, shown in kWh
                const m = perMillionUnits(row.total, carbonIntensity, pricePerKWh);
                return (
                  <div
                    key={row.key}
                    className={styles.row}
                    data-testid={TestIds.efficiencyRow}
                    data-job={row.id}
                    data-unit={g.unit}
                    data-total={row.total}
                  >
                    <RowLabel row={row} href={linkFor(row)} className={styles.label} />
                    <div className={styles.track}>
                      {g.maxTotal > 0 &&
                        COMPONENT_KEYS.map((k) =>
                          row.values[k] > 0 ? (
                            <div
                              key={k}
                              className={styles.segment}
                              style={{ width: `${(row.values[k] / g.maxTotal) * 100}%`, background: colors[k] }}
                              data-testid={TestIds.segment}
                              data-component={k}
                              data-value={row.values[k]}
                              title={`${COMPONENT_LABELS[k]}: ${fmt.joules(row.values[k])} per ${one}`}
                              aria-label={`${COMPONENT_LABELS[k]}: ${fmt.joules(row.values[k])} per ${one}`}
                            />
                          ) : null
                        )}
                      {row.invalid.length > 0 && (
                        <span className={styles.invalid} data-testid={TestIds.invalid}>
                          invalid: {row.invalid.join(', ')}
                        </span>
                      )}
                    </div>
                    <div className={styles.number} data-testid={TestIds.effPerUnit}>
                      {fmt.joules(row.total)}
                    </div>
                    <div className={styles.number} data-testid={TestIds.effKwh}>
                      {fmt.kwh(row.total * 1e6)}
                    </div>
                    {showCo2 && (
                      <div className={styles.number} data-testid={TestIds.effCo2}>
                        {fmt.co2(m.gramsCo2 ?? 0)}
                      </div>
                    )}
                    {showCost && (
                      <div className={styles.number} data-testid={TestIds.effCost}>
                        {fmt.cost(m.cost ?? 0)}
                      </div>
                    )}
                  </div>
                );
              })}
            </div>
          </section>
        );
      })}
    </div>
  );
}
