// GET /api/geographies (no auth): the data residency geographies, which are open (a geography is open when
// its storage setting exists), and where every country's tenants go now (SPEC §8), from the very table
// provisioning applies.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { bestGeography, COUNTRY_GEOGRAPHIES, GEOGRAPHY_SERVES } from '../shared/residency/geography';
import { GEOGRAPHIES } from '../shared/vocabulary/geographies';

const geographyCode = z.enum(GEOGRAPHIES);

export const geographiesSchema = z
  .object({
    geographies: z.array(
      z.object({
        code: geographyCode,
        serves: z.string(),
        local: z.boolean().describe('A local geography serves its own country first, when it is open.'),
        open: z.boolean().describe('Whether this deployment has a storage account for it.'),
      }),
    ),
    countries: z.array(
      z.object({
        code: z.string().describe('ISO 3166-1 alpha-2'),
        name: z.string(),
        region: z.enum(['NA', 'EU', 'APAC']),
        local: geographyCode.optional(),
        geography: geographyCode
          .nullable()
          .describe(
            'Where a tenant of this country is provisioned now; null while none of its geographies is open.',
          ),
      }),
    ),
  })
  .meta({ id: 'Geographies' });

export const geographies: HttpFunction = {
  kind: 'http',
  name: 'geographies',
  route: 'geographies',
  operations: {
    GET: operation({
      operationId: 'getGeographies',
      summary: 'The data residency geographies, which are open, and where each country is served.',
      access: { kind: 'public' },
      responses: [{ status: 200, description: 'The geographies and countries.', schema: geographiesSchema }],
      async handle({ services }) {
        const open = services.storage.openGeographies();
        const body: z.infer<typeof geographiesSchema> = {
          geographies: GEOGRAPHIES.map((code) => ({
            code,
            serves: GEOGRAPHY_SERVES[code],
            local: code !== 'NA' && code !== 'EU' && code !== 'APAC',
            open: open.has(code),
          })),
          countries: COUNTRY_GEOGRAPHIES.map((country) => ({
            ...country,
            geography: bestGeography(country.code, open) ?? null,
          })),
        };
        return { status: 200, body, headers: { 'cache-control': 'public, max-age=300' } };
      },
    }),
  },
};
