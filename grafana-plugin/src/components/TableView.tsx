import { cx } from '@emotion/css';
import React from 'react';

import { COMPONENT_LABELS } from '../data/components';
import { perMillionUnits, rowJoulesPerUnit, singularUnit } from '../data/efficiency';
import { rowCo2Grams, rowCost } from '../data/model';
import { TestIds } from '../testIds';
import { RowLabel } from './RowLabel';
import { ViewProps } from './viewTypes';

export function TableView({ model, colors, fmt, styles, linkFor, onHover, onLeave }: ViewProps) {
  const showCo2 = model.carbonIntensity !== undefined;
  const showCost = model.pricePerKWh !== undefined;
  // J per unit of work: one set of columns per unit (a job's tokens and another's samples never share a column).
  const units = model.work.units;
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
          {units.map((u) => (
            <React.Fragment key={u}>
              <th>J/{singularUnit(u)}</th>
              <th>kWh/M {u}</th>
              {showCo2 && <th>CO₂/M {u}</th>}
              {showCost && <th>Cost/M {u}</th>}
            </React.Fragment>
          ))}
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
              {units.map((u) => {
                const perUnit = rowJoulesPerUnit(row, u, model.work);
                const m =
                  perUnit === undefined
                    ? undefined
                    : perMillionUnits(perUnit, model.carbonIntensity, model.pricePerKWh);
                return (
                  <React.Fragment key={u}>
                    <td data-testid={TestIds.tableCell} data-column={`per-${u}`}>
                      {perUnit === undefined ? '' : fmt.joules(perUnit)}
                    </td>
                    <td data-testid={TestIds.tableCell} data-column={`kwh-per-million-${u}`}>
                      {perUnit === undefined ? '' : fmt.kwh(perUnit * 1e6)}
                    </td>
                    {showCo2 && (
                      <td data-testid={TestIds.tableCell} data-column={`co2-per-million-${u}`}>
                        {m?.gramsCo2 === undefined ? '' : fmt.co2(m.gramsCo2)}
                      </td>
                    )}
                    {showCost && (
                      <td data-testid={TestIds.tableCell} data-column={`cost-per-million-${u}`}>
                        {m?.cost === undefined ? '' : fmt.cost(m.cost)}
                      </td>
                    )}
                  </React.Fragment>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
