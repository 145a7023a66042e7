import { PanelProps } from '@grafana/data';
import { useStyles2, useTheme2 } from '@grafana/ui';
import React, { MouseEvent, useCallback, useMemo, useRef, useState } from 'react';

import { resolveComponentColors } from '../data/colors';
import { makeFormatters } from '../data/format';
import { buildJobLink } from '../data/links';
import { buildEfficiencyModel } from '../data/efficiency';
import { buildModel } from '../data/model';
import { JobRow } from '../data/rows';
import { TestIds } from '../testIds';
import { DEFAULT_OPTIONS, DEFAULT_UNIT, EnergySplitOptions } from '../types';
import { BarsView } from './BarsView';
import { DonutView } from './DonutView';
import { EfficiencyView } from './EfficiencyView';
import { Legend } from './Legend';
import { getStyles } from './styles';
import { TableView } from './TableView';
import { SplitTooltip } from './Tooltip';

type Props = PanelProps<EnergySplitOptions>;

interface HoverState {
  row: JobRow;
  x: number;
  y: number;
}

/** Memoises the pure model, resolves theme colours and renders the chosen view. */
export function EnergySplitPanel({ data, options: rawOptions, fieldConfig, width, height, replaceVariables }: Props) {
  const theme = useTheme2();
  const styles = useStyles2(getStyles);
  const options = useMemo(() => ({ ...DEFAULT_OPTIONS, ...rawOptions }), [rawOptions]);
  const model = useMemo(() => buildModel(data.series, options), [data.series, options]);
  const efficiency = options.view === 'efficiency';
  const eff = useMemo(
    () => (efficiency ? buildEfficiencyModel(data.series, options) : undefined),
    [efficiency, data.series, options]
  );
  const defaults = fieldConfig?.defaults;
  const colors = useMemo(
    () => resolveComponentColors(theme, data.series, options.splitLabel, defaults),
    [theme, data.series, options.splitLabel, defaults]
  );
  const fmt = useMemo(
    () => makeFormatters(defaults?.unit || DEFAULT_UNIT, defaults?.decimals, options.currencyUnit),
    [defaults?.unit, defaults?.decimals, options.currencyUnit]
  );
  const linkFor = useCallback(
    (row: JobRow) => buildJobLink(options.jobLinkUrl, row, replaceVariables),
    [options.jobLinkUrl, replaceVariables]
  );

  const wrapperRef = useRef<HTMLDivElement>(null);
  const [hover, setHover] = useState<HoverState | null>(null);
  const onHover = useCallback((row: JobRow, e: MouseEvent) => {
    const rect = wrapperRef.current?.getBoundingClientRect();
    setHover({ row, x: e.clientX - (rect?.left ?? 0), y: e.clientY - (rect?.top ?? 0) });
  }, []);
  const onLeave = useCallback(() => setHover(null), []);

  if (eff ? eff.groups.length === 0 : model.rows.length === 0) {
    return (
      <div className={styles.empty} style={{ width, height }} data-testid={TestIds.empty}>
        {eff
          ? `No energy per unit of work (series with a "${options.unitLabel}" label) for this time range`
          : 'No energy data for this time range'}
      </div>
    );
  }

  const warnings: string[] = [];
  const skipped = eff ? eff.skippedSeries : model.skippedSeries;
  if (skipped > 0) {
    const labels = eff ? `"${options.groupByLabel}" or "${options.unitLabel}"` : `"${options.groupByLabel}"`;
    warnings.push(`${skipped} series without a ${labels} label ignored`);
  }
  if (options.co2Source === 'query' && model.carbonIntensity === undefined) {
    warnings.push(`no carbon intensity in query ${options.carbonRefId}`);
  }
  const viewProps = { model, colors, fmt, styles, linkFor, onHover, onLeave };
  const legendHeight = options.showLegend ? 28 : 0;

  return (
    <div
      ref={wrapperRef}
      className={styles.wrapper}
      style={{ width, height }}
      data-testid={TestIds.panel}
      data-view={options.view}
      data-theme={theme.colors.mode}
    >
      {warnings.length > 0 && (
        <div className={styles.warning} data-testid={TestIds.warning}>
          {warnings.join('; ')}
        </div>
      )}
      <div className={styles.body}>
        {eff ? (
          <EfficiencyView
            eff={eff}
            carbonIntensity={model.carbonIntensity}
            pricePerKWh={model.pricePerKWh}
            colors={colors}
            fmt={fmt}
            styles={styles}
            linkFor={linkFor}
          />
        ) : options.view === 'table' ? (
          <TableView {...viewProps} />
        ) : options.view === 'donut' ? (
          <DonutView {...viewProps} mode={options.donutMode} width={width} height={height - legendHeight} />
        ) : (
          <BarsView {...viewProps} />
        )}
      </div>
      {options.showLegend && <Legend model={model} colors={colors} fmt={fmt} styles={styles} namesOnly={efficiency} />}
      {hover && (
        <SplitTooltip
          row={hover.row}
          x={hover.x}
          y={hover.y}
          containerWidth={width}
          model={model}
          colors={colors}
          fmt={fmt}
          styles={styles}
        />
      )}
    </div>
  );
}
