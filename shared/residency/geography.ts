// Data residency geographies and the pure rule that picks a tenant's geography from its country (SPEC §8):
// one typed table of every country, built from the `countries-list` package's ISO 3166 list and continents.
import { countries } from 'countries-list';

import type { Geography } from '../vocabulary/geographies';

/** The three regions; every country belongs to one. */
export type Region = 'NA' | 'EU' | 'APAC';

export interface CountryGeography {
  /** ISO 3166-1 alpha-2. */
  code: string;
  name: string;
  region: Region;
  /** A local geography that serves the country first, when it is open. */
  local?: Geography;
}

/** What each geography serves, in the words of SPEC §8 (GET /api/geographies shows them). */
export const GEOGRAPHY_SERVES: Readonly<Record<Geography, string>> = {
  NA: 'The United States, and the rest of the Americas',
  EU: 'EU and EFTA countries, and the United Kingdom, the rest of Europe, the Middle East and Africa',
  APAC: 'Australia, Hong Kong, India, Japan, Singapore, South Korea and the rest of Asia Pacific',
  AU: 'Australia (local geography)',
  IN: 'India (local geography)',
  CH: 'Switzerland (local geography)',
};

/** SPEC §8's regions follow the continents: the Americas, Europe with Africa, Asia with Oceania… */
const REGION_OF_CONTINENT: Readonly<Record<string, Region>> = {
  NA: 'NA',
  SA: 'NA',
  EU: 'EU',
  AF: 'EU',
  AS: 'APAC',
  OC: 'APAC',
  // Antarctic territories follow the country that administers most of them (Norway, the UK, France).
  AN: 'EU',
};

/** …except where they cut across a continent: the Middle East, the Caucasus and Russia are served by EU. */
const REGION_EXCEPTIONS: Readonly<Record<string, Region>> = {
  ...Object.fromEntries(
    'AE BH IL IQ IR JO KW LB OM PS QA SA SY TR YE AM AZ GE RU'
      .split(' ')
      .map((code) => [code, 'EU' as const]),
  ),
  // Heard Island and McDonald Islands: Australian.
  HM: 'APAC',
};

const LOCAL_GEOGRAPHIES: Readonly<Record<string, Geography>> = { AU: 'AU', IN: 'IN', CH: 'CH' };

/** Every country the service serves, by code: the one table the rule reads. */
export const COUNTRY_GEOGRAPHIES: readonly CountryGeography[] = Object.entries(countries)
  .map(([code, country]): CountryGeography => {
    const region = REGION_EXCEPTIONS[code] ?? REGION_OF_CONTINENT[country.continent];
    if (!region) throw new Error(`Country ${code} is on no continent the regions cover.`);
    const local = LOCAL_GEOGRAPHIES[code];
    return { code, name: country.name, region, ...(local ? { local } : {}) };
  })
  .sort((a, b) => a.code.localeCompare(b.code));

const BY_CODE = new Map(COUNTRY_GEOGRAPHIES.map((country) => [country.code, country]));

/** The region a country belongs to, or undefined for a code that names no country. */
export function regionOf(countryCode: string): Region | undefined {
  return BY_CODE.get(countryCode.toUpperCase())?.region;
}

/**
 * The geography that best fits a country, given which geographies are open: its local geography when
 * that is open, otherwise its region when open. Undefined when neither is open.
 */
export function bestGeography(countryCode: string, open: ReadonlySet<Geography>): Geography | undefined {
  const country = BY_CODE.get(countryCode.toUpperCase());
  if (!country) return undefined;
  if (country.local && open.has(country.local)) return country.local;
  return open.has(country.region) ? country.region : undefined;
}
