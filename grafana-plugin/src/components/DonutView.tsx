import React from 'react';

import { COMPONENT_KEYS, COMPONENT_LABELS, ComponentKey } from '../data/components';
import { JobRow } from '../data/rows';
import { TestIds } from '../testIds';
import { RowLabel } from './RowLabel';
import { ViewProps } from './viewTypes';

/** Donuts drawn per job are capped; the rest is reachable through top N / the table view. */
export const MAX_DONUTS = 48;

interface DonutProps extends Pick<ViewProps, 'colors' | 'fmt' | 'onHover'> {
  row: JobRow;
  size: number;
}

function Donut({ row, size, colors, fmt, onHover }: DonutProps) {
  const stroke = Math.max(8, size * 0.16);
  const r = (size - stroke) / 2;
  const circ = 2 * Math.PI * r;
  let offset = 0;
  const arcs: Array<{ k: ComponentKey; len: number; start: number }> = [];
  if (row.total > 0) {
    for (const k of COMPONENT_KEYS) {
      const v = row.values[k];
      if (v > 0) {
        const len = (v / row.total) * circ;
        arcs.push({ k, len, start: offset });
        offset += len;
      }
    }
  }
  return (
    <svg
      width={size}
      height={size}
      viewBox={`0 0 ${size} ${size}`}
      data-testid={TestIds.donutChart}
      data-job={row.id}
      onMouseMove={(e) => onHover(row, e)}
      role="img"
      aria-label={`${row.name}: ${fmt.energy(row.total)}`}
    >
      <g transform={`rotate(-90 ${size / 2} ${size / 2})`}>
        <circle cx={size / 2} cy={size / 2} r={r} fill="none" stroke="rgba(128,128,128,0.15)" strokeWidth={stroke} />
        {arcs.map((a) => (
          <circle
            key={a.k}
            cx={size / 2}
            cy={size / 2}
            r={r}
            fill="none"
            stroke={colors[a.k]}
            strokeWidth={stroke}
            strokeDasharray={`${a.len} ${circ - a.len}`}
            strokeDashoffset={-a.start}
            data-testid={TestIds.donutArc}
            data-component={a.k}
            data-value={row.values[a.k]}
          >
            <title>{`${COMPONENT_LABELS[a.k]}: ${fmt.energy(row.values[a.k])} (${fmt.percent(row.values[a.k], row.total)})`}</title>
          </circle>
        ))}
      </g>
      <text
        x="50%"
        y="50%"
        textAnchor="middle"
        dominantBaseline="central"
        fill="currentColor"
        fontSize={Math.max(10, size / 9)}
        data-testid={TestIds.donutTotal}
      >
        {fmt.energy(row.total)}
      </text>
    </svg>
  );
}

/** The whole selection as one pseudo-row (all jobs, including folded ones). */
export function selectionRow(rowsTotal: ViewProps['model']): JobRow {
  return {
    key: '__selection__',
    id: '__selection__',
    name: `All jobs (${rowsTotal.jobCount})`,
    kind: 'others',
    values: { ...rowsTotal.componentTotals },
    total: rowsTotal.grandTotal,
    invalid: [],
    jobCount: rowsTotal.jobCount,
  };
}

export function DonutView(props: ViewProps & { mode: 'selection' | 'perJob'; width: number; height: number }) {
  const { model, styles, linkFor, onLeave, mode, width, height } = props;
  if (mode === 'selection') {
    const size = Math.max(80, Math.min(width, height) - 8);
    return (
      <div className={styles.donutGrid} data-testid={TestIds.donutView} onMouseLeave={onLeave}>
        <Donut {...props} row={selectionRow(model)} size={size} />
      </div>
    );
  }
  const rows = model.rows.slice(0, MAX_DONUTS);
  const size = Math.max(80, Math.min(140, width / 3));
  return (
    <div className={styles.donutGrid} data-testid={TestIds.donutView} onMouseLeave={onLeave}>
      {rows.map((row) => (
        <div
          key={row.key}
          className={styles.donutCell}
          data-testid={TestIds.row}
          data-job={row.id}
          data-kind={row.kind}
        >
          <Donut {...props} row={row} size={size} />
          <RowLabel row={row} href={linkFor(row)} className={styles.donutCaption} />
          {row.invalid.length > 0 && (
            <span className={styles.invalidText} data-testid={TestIds.invalid}>
              invalid: {row.invalid.join(', ')}
            </span>
          )}
        </div>
      ))}
    </div>
  );
}
