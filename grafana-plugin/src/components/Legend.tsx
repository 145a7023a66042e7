import React from 'react';

import { COMPONENT_LABELS, ComponentKey } from '../data/components';
import { Formatters } from '../data/format';
import { PanelModel } from '../data/model';
import { TestIds } from '../testIds';
import { Styles } from './styles';

interface Props {
  model: PanelModel;
  colors: Record<ComponentKey, string>;
  fmt: Formatters;
  styles: Styles;
  /** Names only: the efficiency view's values are per unit, and summing them across units means nothing. */
  namesOnly?: boolean;
}

export function Legend({ model, colors, fmt, styles, namesOnly }: Props) {
  return (
    <div className={styles.legend} data-testid={TestIds.legend}>
      {model.components.map((k) => (
        <span key={k} className={styles.legendItem} data-testid={TestIds.legendItem} data-component={k}>
          <span className={styles.swatch} style={{ background: colors[k] }} />
          {COMPONENT_LABELS[k]}
          {!namesOnly && (
            <span className={styles.header}>
              {fmt.energy(model.componentTotals[k])} · {fmt.percent(model.componentTotals[k], model.grandTotal)}
            </span>
          )}
        </span>
      ))}
    </div>
  );
}
