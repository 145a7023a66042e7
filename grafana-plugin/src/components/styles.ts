import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';

export const ROW_HEIGHT = 22;

export const getStyles = (theme: GrafanaTheme2) => ({
  wrapper: css({
    position: 'relative',
    display: 'flex',
    flexDirection: 'column',
    overflow: 'hidden',
    fontSize: theme.typography.bodySmall.fontSize,
    color: theme.colors.text.primary,
  }),
  body: css({
    flex: '1 1 auto',
    minHeight: 0,
    overflow: 'auto',
  }),
  empty: css({
    display: 'flex',
    alignItems: 'center',
    justifyContent: 'center',
    color: theme.colors.text.secondary,
    fontSize: theme.typography.body.fontSize,
  }),
  warning: css({
    color: theme.colors.warning.text,
    padding: theme.spacing(0, 0, 0.5, 0),
  }),
  barsGrid: css({
    display: 'grid',
    columnGap: theme.spacing(1),
    rowGap: theme.spacing(0.5),
    alignItems: 'center',
    padding: theme.spacing(0.5, 0),
  }),
  row: css({
    display: 'contents',
  }),
  label: css({
    overflow: 'hidden',
    textOverflow: 'ellipsis',
    whiteSpace: 'nowrap',
    a: {
      color: theme.colors.text.link,
      '&:hover': { textDecoration: 'underline' },
    },
  }),
  muted: css({
    color: theme.colors.text.secondary,
    fontStyle: 'italic',
  }),
  track: css({
    position: 'relative',
    display: 'flex',
    height: ROW_HEIGHT,
    minWidth: 0,
    overflow: 'hidden',
    background: theme.colors.background.secondary,
    borderRadius: theme.shape.radius.default,
  }),
  segment: css({
    height: '100%',
    flex: '0 0 auto',
    cursor: 'default',
    '&:hover': { filter: 'brightness(1.15)' },
  }),
  mutedSegment: css({
    opacity: 0.55,
  }),
  invalid: css({
    position: 'absolute',
    right: theme.spacing(0.5),
    top: '50%',
    transform: 'translateY(-50%)',
    padding: theme.spacing(0, 0.5),
    borderRadius: theme.shape.radius.default,
    border: `1px dashed ${theme.colors.error.border}`,
    color: theme.colors.error.text,
    background: theme.colors.background.primary,
    whiteSpace: 'nowrap',
    fontSize: theme.typography.bodySmall.fontSize,
  }),
  clipped: css({
    position: 'absolute',
    right: theme.spacing(0.5),
    top: '50%',
    transform: 'translateY(-50%)',
    color: theme.colors.text.maxContrast,
    fontWeight: theme.typography.fontWeightBold,
  }),
  number: css({
    textAlign: 'right',
    whiteSpace: 'nowrap',
    fontVariantNumeric: 'tabular-nums',
  }),
  effGroup: css({
    marginBottom: theme.spacing(1.5),
  }),
  effTitle: css({
    fontWeight: theme.typography.fontWeightMedium,
    marginBottom: theme.spacing(0.5),
  }),
  header: css({
    color: theme.colors.text.secondary,
    whiteSpace: 'nowrap',
  }),
  legend: css({
    display: 'flex',
    flexWrap: 'wrap',
    gap: theme.spacing(0.5, 2),
    padding: theme.spacing(0.5, 0, 0, 0),
    flex: '0 0 auto',
  }),
  legendItem: css({
    display: 'inline-flex',
    alignItems: 'center',
    gap: theme.spacing(0.5),
    whiteSpace: 'nowrap',
  }),
  swatch: css({
    display: 'inline-block',
    width: 12,
    height: 12,
    borderRadius: 2,
  }),
  tooltip: css({
    position: 'absolute',
    zIndex: theme.zIndex.tooltip,
    pointerEvents: 'none',
    background: theme.colors.background.elevated,
    border: `1px solid ${theme.colors.border.weak}`,
    boxShadow: theme.shadows.z2,
    borderRadius: theme.shape.radius.default,
    padding: theme.spacing(1),
    minWidth: 220,
    table: { borderCollapse: 'collapse', width: '100%' },
    td: { padding: theme.spacing(0.25, 0.5) },
  }),
  tooltipTitle: css({
    fontWeight: theme.typography.fontWeightMedium,
    marginBottom: theme.spacing(0.5),
  }),
  donutGrid: css({
    display: 'flex',
    flexWrap: 'wrap',
    gap: theme.spacing(2),
    justifyContent: 'center',
    alignItems: 'flex-start',
  }),
  donutCell: css({
    display: 'flex',
    flexDirection: 'column',
    alignItems: 'center',
    maxWidth: '100%',
  }),
  donutCaption: css({
    textAlign: 'center',
    maxWidth: 160,
    overflow: 'hidden',
    textOverflow: 'ellipsis',
    whiteSpace: 'nowrap',
  }),
  table: css({
    width: '100%',
    borderCollapse: 'collapse',
    th: {
      position: 'sticky',
      top: 0,
      background: theme.colors.background.primary,
      color: theme.colors.text.secondary,
      fontWeight: theme.typography.fontWeightMedium,
      textAlign: 'right',
      padding: theme.spacing(0.5, 1),
      borderBottom: `1px solid ${theme.colors.border.medium}`,
      whiteSpace: 'nowrap',
    },
    'th:first-child': { textAlign: 'left' },
    td: {
      padding: theme.spacing(0.5, 1),
      borderBottom: `1px solid ${theme.colors.border.weak}`,
      textAlign: 'right',
      whiteSpace: 'nowrap',
      fontVariantNumeric: 'tabular-nums',
    },
    'td:first-child': { textAlign: 'left', maxWidth: 240, overflow: 'hidden', textOverflow: 'ellipsis' },
  }),
  invalidText: css({
    color: theme.colors.error.text,
  }),
});

export type Styles = ReturnType<typeof getStyles>;
