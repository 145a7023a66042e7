import { DataFrame, FieldColorModeId, FieldConfig, GrafanaTheme2 } from '@grafana/data';

import { COMPONENT_COLOR_NAMES, COMPONENT_KEYS, ComponentKey, toComponentKey } from './components';

/**
 * Fixed theme colour per component, overridable with a field override that sets a fixed colour on the series of
 * that component (e.g. "Fields with labels component=cooling" → Color scheme: Single color).
 */
export function resolveComponentColors(
  theme: GrafanaTheme2,
  frames: DataFrame[] | undefined,
  splitLabel: string,
  defaults?: FieldConfig
): Record<ComponentKey, string> {
  const colors = {} as Record<ComponentKey, string>;
  for (const k of COMPONENT_KEYS) {
    colors[k] =
      k === 'other' ? theme.colors.text.secondary : theme.visualization.getColorByName(COMPONENT_COLOR_NAMES[k]);
  }
  const defaultFixed = defaults?.color?.mode === FieldColorModeId.Fixed ? defaults.color.fixedColor : undefined;
  for (const frame of frames ?? []) {
    for (const field of frame.fields) {
      const c = field.config?.color;
      if (!c || c.mode !== FieldColorModeId.Fixed || !c.fixedColor || c.fixedColor === defaultFixed) {
        continue;
      }
      // Series shape: the component is a label; wide table shape: the column is named after the component.
      const raw = field.labels?.[splitLabel] ?? field.name;
      const key = toComponentKey(raw);
      if (key !== 'other' || String(raw).toLowerCase() === 'other') {
        colors[key] = theme.visualization.getColorByName(c.fixedColor);
      }
    }
  }
  return colors;
}
