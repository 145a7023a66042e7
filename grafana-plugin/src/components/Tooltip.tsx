import React from 'react';

import { COMPONENT_KEYS, COMPONENT_LABELS, ComponentKey } from '../data/components';
import { Formatters } from '../data/format';
import { PanelModel, rowCo2Grams, rowCost } from '../data/model';
import { JobRow } from '../data/rows';
import { TestIds } from '../testIds';
import { Styles } from './styles';

interface Props {
  row: JobRow;
  x: number;
  y: number;
  containerWidth: number;
  model: PanelModel;
  colors: Record<ComponentKey, string>;
  fmt: Formatters;
  styles: Styles;
}

/** Per-component J / kWh / % and the job total. Positioned inside the panel, flipped near the right edge. */
export function SplitTooltip({ row, x, y, containerWidth, model, colors, fmt, styles }: Props) {
  const left = x + 240 > containerWidth ? Math.max(0, x - 240) : x + 12;
  const co2 = rowCo2Grams(row.total, model);
  const cost = rowCost(row.total, model);
  const keys = COMPONENT_KEYS.filter(
    (k) => row.values[k] > 0 || row.invalid.includes(k) || model.components.includes(k)
  );
  return (
    <div className={styles.tooltip} style={{ left, top: y + 12 }} data-testid={TestIds.tooltip} role="tooltip">
      <div className={styles.tooltipTitle}>
        {row.name}
        {row.name !== row.id && row.kind !== 'others' ? <span className={styles.header}> ({row.id})</span> : null}
      </div>
      <table>
        <tbody>
          {keys.map((k) => (
            <tr key={k} data-component={k}>
              <td>
                <span className={styles.swatch} style={{ background: colors[k] }} /> {COMPONENT_LABELS[k]}
              </td>
              {row.invalid.includes(k) ? (
                <td colSpan={3} className={styles.invalidText}>
                  invalid
                </td>
              ) : (
                <>
                  <td className={styles.number}>{fmt.joules(row.values[k])}</td>
                  <td className={styles.number}>{fmt.kwh(row.values[k])}</td>
                  <td className={styles.number}>{fmt.percent(row.values[k], row.total)}</td>
                </>
              )}
            </tr>
          ))}
          <tr data-component="total">
            <td>Total</td>
            <td className={styles.number}>{fmt.joules(row.total)}</td>
            <td className={styles.number}>{fmt.kwh(row.total)}</td>
            <td className={styles.number}>{row.total > 0 ? '100%' : '–'}</td>
          </tr>
          {co2 !== undefined && (
            <tr data-component="co2">
              <td>CO₂</td>
              <td className={styles.number} colSpan={3}>
                {fmt.co2(co2)}
              </td>
            </tr>
          )}
          {cost !== undefined && (
            <tr data-component="cost">
              <td>Cost</td>
              <td className={styles.number} colSpan={3}>
                {fmt.cost(cost)}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
