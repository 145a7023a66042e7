import { standardEditorsRegistry } from '@grafana/data';

import { EnergySplitPanel } from './components/EnergySplitPanel';
import { plugin } from './module';
import { DEFAULT_OPTIONS } from './types';

const EDITORS = ['text', 'number', 'boolean', 'radio', 'select', 'slider', 'color', 'unit', 'links'];

beforeAll(() => {
  // Outside Grafana the option editors are not registered; the builders need them to compute defaults.
  standardEditorsRegistry.setInit(() => EDITORS.map((id) => ({ id, name: id, editor: () => null })));
});

describe('plugin module', () => {
  it('exports the energy split panel', () => {
    expect(plugin.panel).toBe(EnergySplitPanel);
  });

  it('has option defaults equal to DEFAULT_OPTIONS', () => {
    expect(plugin.defaults).toEqual(DEFAULT_OPTIONS);
  });
});
