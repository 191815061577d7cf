// Data residency geographies and the pure rule that picks a tenant's geography from its country (SPEC §8).

import type { Geography } from '../vocabulary/geographies';

const REGION_BY_COUNTRY: Readonly<Record<string, 'NA' | 'EU' | 'APAC'>> = (() => {
  const map: Record<string, 'NA' | 'EU' | 'APAC'> = { US: 'NA' };
  // EU member states and EFTA countries.
  for (const c of 'AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO CH'.split(
    ' ',
  )) {
    map[c] = 'EU';
  }
  // Asia Pacific.
  for (const c of [
    ...'AU HK IN JP SG KR NZ CN TW MO MY TH ID PH VN BD LK PK NP BT MV MM KH LA BN MN TL PG FJ SB VU NC PF WS TO KI NR TV FM MH PW CK NU'.split(
      ' ',
    ),
  ]) {
    map[c] = 'APAC';
  }
  return map;
})();

/** Local geographies take precedence over their region when they are open. */
const LOCAL_BY_COUNTRY: Readonly<Record<string, Geography>> = { AU: 'AU', IN: 'IN', CH: 'CH' };

/** The region a country belongs to, or undefined when the service does not serve it. */
export function regionOf(countryCode: string): 'NA' | 'EU' | 'APAC' | undefined {
  return REGION_BY_COUNTRY[countryCode.toUpperCase()];
}

/**
 * The geography that best fits a country, given which geographies are open: its local geography when
 * that is open, otherwise its region when open. Undefined when neither is open.
 */
export function bestGeography(countryCode: string, open: ReadonlySet<Geography>): Geography | undefined {
  const code = countryCode.toUpperCase();
  const local = LOCAL_BY_COUNTRY[code];
  if (local && open.has(local)) return local;
  const region = regionOf(code);
  return region && open.has(region) ? region : undefined;
}
