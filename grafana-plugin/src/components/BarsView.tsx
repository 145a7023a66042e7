import { cx } from '@emotion/css';
import React from 'react';

import { COMPONENT_KEYS, COMPONENT_LABELS } from '../data/components';
import { rowCo2Grams, rowCost } from '../data/model';
import { TestIds } from '../testIds';
import { RowLabel } from './RowLabel';
import { ViewProps } from './viewTypes';

/** Horizontal stacked bars, one per job; segment width = energy / largest job total. */
export function BarsView({ model, colors, fmt, styles, linkFor, onHover, onLeave }: ViewProps) {
  const showCo2 = model.carbonIntensity !== undefined;
  const showCost = model.pricePerKWh !== undefined;
  const columns = ['minmax(80px, 22%)', 'minmax(60px, 1fr)', 'max-content'];
  if (showCo2) {
    columns.push('max-content');
  }
  if (showCost) {
    columns.push('max-content');
  }
  return (
    <div
      className={styles.barsGrid}
      style={{ gridTemplateColumns: columns.join(' ') }}
      data-testid={TestIds.barsView}
      onMouseLeave={onLeave}
    >
      {model.rows.map((row) => {
        const muted = row.kind !== 'job';
        const co2 = rowCo2Grams(row.total, model);
        const cost = rowCost(row.total, model);
        return (
          <div
            key={row.key}
            className={styles.row}
            data-testid={TestIds.row}
            data-job={row.id}
            data-kind={row.kind}
            data-total={row.total}
          >
            <RowLabel row={row} href={linkFor(row)} className={cx(styles.label, muted && styles.muted)} />
            <div className={styles.track} data-testid={TestIds.rowTrack} onMouseMove={(e) => onHover(row, e)}>
              {model.maxTotal > 0 &&
                COMPONENT_KEYS.map((k) =>
                  row.values[k] > 0 ? (
                    <div
                      key={k}
                      className={cx(styles.segment, row.kind === 'unattributed' && styles.mutedSegment)}
                      style={{ width: `${(row.values[k] / model.maxTotal) * 100}%`, background: colors[k] }}
                      data-testid={TestIds.segment}
                      data-component={k}
                      data-value={row.values[k]}
                      aria-label={`${COMPONENT_LABELS[k]}: ${fmt.energy(row.values[k])}`}
                    />
                  ) : null
                )}
              {row.total > model.maxTotal * 1.0001 && (
                <span className={styles.clipped} title="Sum of the folded jobs, larger than the largest job: clipped">
                  ≫
                </span>
              )}
              {row.invalid.length > 0 && (
                <span
                  className={styles.invalid}
                  data-testid={TestIds.invalid}
                  title="NaN, infinite or negative values are not drawn or summed"
                >
                  invalid: {row.invalid.join(', ')}
                </span>
              )}
            </div>
            <div className={styles.number} data-testid={TestIds.rowTotal}>
              {fmt.energy(row.total)}
            </div>
            {showCo2 && (
              <div className={styles.number} data-testid={TestIds.rowCo2}>
                {co2 === undefined ? '' : fmt.co2(co2)}
              </div>
            )}
            {showCost && (
              <div className={styles.number} data-testid={TestIds.rowCost}>
                {cost === undefined ? '' : fmt.cost(cost)}
              </div>
            )}
          </div>
        );
      })}
    </div>
  );
}
