import type { MouseEvent } from 'react';

import { ComponentKey } from '../data/components';
import { Formatters } from '../data/format';
import { PanelModel } from '../data/model';
import { JobRow } from '../data/rows';
import { Styles } from './styles';

export interface ViewProps {
  model: PanelModel;
  colors: Record<ComponentKey, string>;
  fmt: Formatters;
  styles: Styles;
  linkFor: (row: JobRow) => string | undefined;
  onHover: (row: JobRow, event: MouseEvent) => void;
  onLeave: () => void;
}
