// GET /api/geographies needs no token and says which geographies are open and where each country goes now.
import { HttpRequest } from '@azure/functions';

import { geographies, geographiesSchema } from '../../functions/geographies';
import { createServices } from '../../shared/composition';
import { invokeHttp } from '../../shared/hosting/invoke';
import { invocationContext } from '../support/invocation';
import { testConfig } from '../support/testStorage';

async function served(omit: string[] = []) {
  const services = createServices(testConfig({}, omit));
  const response = await invokeHttp(
    geographies,
    services,
    new HttpRequest({ method: 'GET', url: 'http://localhost/api/geographies' }),
    invocationContext('geographies'),
  );
  expect(response.status).toBe(200);
  return geographiesSchema.parse(JSON.parse(String(response.body)));
}

describe('GET /api/geographies', () => {
  it('lists every geography with whether it is open, and every country with where it goes', async () => {
    const body = await served();
    expect(body.geographies.map((g) => [g.code, g.open, g.local])).toEqual([
      ['NA', true, false],
      ['EU', true, false],
      ['APAC', true, false],
      ['AU', true, true],
      ['IN', true, true],
      ['CH', true, true],
    ]);
    const where = new Map(body.countries.map((c) => [c.code, c.geography]));
    expect(body.countries.length).toBeGreaterThanOrEqual(249);
    expect([where.get('GB'), where.get('CA'), where.get('CH'), where.get('JP')]).toEqual([
      'EU',
      'NA',
      'CH',
      'APAC',
    ]);
  });

  it('sends a Swiss tenant to EU while CH is closed: a geography opens when its storage setting appears', async () => {
    const body = await served(['STORAGE_CH']);
    expect(body.geographies.find((g) => g.code === 'CH')).toMatchObject({ open: false });
    expect(body.countries.find((c) => c.code === 'CH')).toMatchObject({
      region: 'EU',
      local: 'CH',
      geography: 'EU',
    });
  });
});
