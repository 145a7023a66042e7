import { createTheme, FieldColorModeId } from '@grafana/data';

import { seriesFrames } from '../fixtures';
import { resolveComponentColors } from './colors';

describe('resolveComponentColors', () => {
  const theme = createTheme({ colors: { mode: 'dark' } });

  it('uses fixed theme colours per component', () => {
    const c = resolveComponentColors(theme, [], 'component');
    expect(c.compute).toBe(theme.visualization.getColorByName('blue'));
    expect(c.cooling).toBe(theme.visualization.getColorByName('green'));
    expect(c.other).toBe(theme.colors.text.secondary);
    expect(new Set(Object.values(c)).size).toBe(5);
  });

  it('follows the theme mode', () => {
    const light = resolveComponentColors(createTheme({ colors: { mode: 'light' } }), [], 'component');
    expect(light.compute).toBe(createTheme({ colors: { mode: 'light' } }).visualization.getColorByName('blue'));
  });

  it('is overridden by a fixed colour on a component series', () => {
    const frames = seriesFrames([{ job_id: 'a', values: { cooling: 1, compute: 2 } }]);
    frames[0].fields[1].config.color = { mode: FieldColorModeId.Fixed, fixedColor: '#123456' };
    const c = resolveComponentColors(theme, frames, 'component');
    expect(c.cooling).toBe('#123456');
    expect(c.compute).toBe(theme.visualization.getColorByName('blue'));
  });

  it('ignores a fixed colour that merely comes from the field defaults', () => {
    const frames = seriesFrames([{ job_id: 'a', values: { cooling: 1 } }]);
    const color = { mode: FieldColorModeId.Fixed, fixedColor: 'red' };
    frames[0].fields[1].config.color = color;
    expect(resolveComponentColors(theme, frames, 'component', { color }).cooling).toBe(
      theme.visualization.getColorByName('green')
    );
  });
});
