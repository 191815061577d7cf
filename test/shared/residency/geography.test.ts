import { countries } from 'countries-list';

import { bestGeography, COUNTRY_GEOGRAPHIES, regionOf } from '../../../shared/residency/geography';
import { GEOGRAPHIES, type Geography } from '../../../shared/vocabulary/geographies';

const all = new Set<Geography>(GEOGRAPHIES);
const regionsOnly = new Set<Geography>(['NA', 'EU', 'APAC']);

describe('bestGeography', () => {
  it.each([
    ['US', 'NA'],
    ['CA', 'NA'],
    ['BR', 'NA'],
    ['MX', 'NA'],
    ['DE', 'EU'],
    ['no', 'EU'],
    ['IS', 'EU'],
    ['GB', 'EU'],
    ['UA', 'EU'],
    ['ZA', 'EU'],
    ['NG', 'EU'],
    ['AE', 'EU'],
    ['IL', 'EU'],
    ['TR', 'EU'],
    ['RU', 'EU'],
    ['JP', 'APAC'],
    ['SG', 'APAC'],
    ['HK', 'APAC'],
    ['KR', 'APAC'],
    ['NZ', 'APAC'],
    ['KZ', 'APAC'],
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

  it('answers undefined for a code that names no country, or whose region is closed', () => {
    expect(bestGeography('XX', all)).toBeUndefined();
    expect(bestGeography('DE', new Set<Geography>(['NA']))).toBeUndefined();
  });
});

describe('the country table', () => {
  it('serves every ISO 3166 country, each once, in one of the three regions', () => {
    const codes = COUNTRY_GEOGRAPHIES.map((country) => country.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.sort()).toEqual(Object.keys(countries).sort());
    expect(codes.length).toBeGreaterThanOrEqual(249);
    for (const country of COUNTRY_GEOGRAPHIES) expect(['NA', 'EU', 'APAC']).toContain(country.region);
    expect(COUNTRY_GEOGRAPHIES.filter((country) => country.local).map((c) => [c.code, c.local])).toEqual([
      ['AU', 'AU'],
      ['CH', 'CH'],
      ['IN', 'IN'],
    ]);
  });

  it('has every country of the Americas in NA, and none of elsewhere', () => {
    for (const [code, country] of Object.entries(countries)) {
      const americas = country.continent === 'NA' || country.continent === 'SA';
      expect({ code, inNa: regionOf(code) === 'NA' }).toEqual({ code, inNa: americas });
    }
  });
});
