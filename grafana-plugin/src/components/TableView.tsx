import { cx } from '@emotion/css';
import React from 'react';

import { COMPONENT_LABELS } from '../data/components';
import { rowCo2Grams, rowCost } from '../data/model';
import { TestIds } from '../testIds';
import { RowLabel } from './RowLabel';
import { ViewProps } from './viewTypes';

export function TableView({ model, colors, fmt, styles, linkFor, onHover, onLeave }: ViewProps) {
  const showCo2 = model.carbonIntensity !== undefined;
  const showCost = model.pricePerKWh !== undefined;
  return (
    <table className={styles.table} data-testid={TestIds.tableView} onMouseLeave={onLeave}>
      <thead>
        <tr>
          <th>Job</th>
          {model.components.map((k) => (
            <th key={k}>
              <span className={styles.swatch} style={{ background: colors[k], marginRight: 4 }} />
              {COMPONENT_LABELS[k]}
            </th>
          ))}
          <th>Total</th>
          {showCo2 && <th>CO₂</th>}
          {showCost && <th>Cost</th>}
        </tr>
      </thead>
      <tbody>
        {model.rows.map((row) => {
          const co2 = rowCo2Grams(row.total, model);
          const cost = rowCost(row.total, model);
          return (
            <tr
              key={row.key}
              data-testid={TestIds.tableRow}
              data-job={row.id}
              data-kind={row.kind}
              onMouseMove={(e) => onHover(row, e)}
            >
              <td>
                <RowLabel row={row} href={linkFor(row)} className={cx(row.kind !== 'job' && styles.muted)} />
              </td>
              {model.components.map((k) => (
                <td key={k} data-testid={TestIds.tableCell} data-column={k}>
                  {row.invalid.includes(k) ? (
                    <span className={styles.invalidText} data-testid={TestIds.invalid}>
                      invalid
                    </span>
                  ) : (
                    fmt.energy(row.values[k])
                  )}
                </td>
              ))}
              <td data-testid={TestIds.tableCell} data-column="total">
                {fmt.energy(row.total)}
              </td>
              {showCo2 && (
                <td data-testid={TestIds.tableCell} data-column="co2">
                  {co2 === undefined ? '' : fmt.co2(co2)}
                </td>
              )}
              {showCost && (
                <td data-testid={TestIds.tableCell} data-column="cost">
                  {cost === undefined ? '' : fmt.cost(cost)}
                </td>
              )}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
