import { bestGeography } from '../../../shared/residency/geography';
import { GEOGRAPHIES, type Geography } from '../../../shared/vocabulary/geographies';

const all = new Set<Geography>(GEOGRAPHIES);
const regionsOnly = new Set<Geography>(['NA', 'EU', 'APAC']);

describe('bestGeography', () => {
  it.each([
    ['US', 'NA'],
    ['DE', 'EU'],
    ['no', 'EU'],
    ['IS', 'EU'],
    ['JP', 'APAC'],
    ['SG', 'APAC'],
    ['AU', 'AU'],
    ['IN', 'IN'],
    ['CH', 'CH'],
  ])('puts %s in %s when every geography is open', (country, geography) => {
    expect(bestGeography(country, all)).toBe(geography);
  });

  it.each([
    ['AU', 'APAC'],
    ['IN', 'APAC'],
    ['CH', 'EU'],
  ])('falls back from a closed local geography: %s goes to %s', (country, geography) => {
    expect(bestGeography(country, regionsOnly)).toBe(geography);
  });

  it('answers undefined for a country no geography serves, or whose region is closed', () => {
    expect(bestGeography('BR', all)).toBeUndefined();
    expect(bestGeography('DE', new Set<Geography>(['NA']))).toBeUndefined();
  });
});
