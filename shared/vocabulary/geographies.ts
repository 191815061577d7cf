// The data residency geographies (SPEC §8): where a tenant's data may live. Storage, configuration and
// residency all speak of them.

export const GEOGRAPHIES = ['NA', 'EU', 'APAC', 'AU', 'IN', 'CH'] as const;
export type Geography = (typeof GEOGRAPHIES)[number];
