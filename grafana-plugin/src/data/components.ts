/** Components jouleflow splits energy into (design §3), plus "other" for unknown label values. */
export const KNOWN_COMPONENTS = ['compute', 'transmit', 'store', 'cooling'] as const;
export type KnownComponent = (typeof KNOWN_COMPONENTS)[number];
export type ComponentKey = KnownComponent | 'other';
export const COMPONENT_KEYS: readonly ComponentKey[] = [...KNOWN_COMPONENTS, 'other'];

export const COMPONENT_LABELS: Record<ComponentKey, string> = {
  compute: 'Compute',
  transmit: 'Transmit',
  store: 'Store',
  cooling: 'Cooling',
  other: 'Other',
};

/** Theme colour names (resolved through theme.visualization.getColorByName). */
export const COMPONENT_COLOR_NAMES: Record<ComponentKey, string> = {
  compute: 'blue',
  transmit: 'purple',
  store: 'orange',
  cooling: 'green',
  other: 'text-secondary',
};

export function toComponentKey(raw: unknown): ComponentKey {
  const s = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
  return (KNOWN_COMPONENTS as readonly string[]).includes(s) ? (s as KnownComponent) : 'other';
}

export function emptyValues(): Record<ComponentKey, number> {
  return { compute: 0, transmit: 0, store: 0, cooling: 0, other: 0 };
}
