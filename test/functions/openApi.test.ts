// GET /api/openapi.json and GET /api/health need no token and describe the running service.
import { functionRegistry } from '../../functions/registry';
import { startTestHost, type TestHost } from '../support/testHost';

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost();
});
afterAll(() => host.stop());

describe('GET /api/openapi.json', () => {
  it('is an OpenAPI 3.1 document with every HTTP route and method of the registry', async () => {
    const result = await host.call('GET', '/api/openapi.json');
    expect(result.status).toBe(200);
    expect(result.body.openapi).toBe('3.1.0');
    for (const fn of functionRegistry) {
      if (fn.kind !== 'http') continue;
      const item = result.body.paths[`/api/${fn.route}`];
      expect(item).toBeDefined();
      for (const method of Object.keys(fn.operations)) expect(item[method.toLowerCase()]).toBeDefined();
    }
  });

  it('describes request bodies from the zod schemas that validate them', async () => {
    const doc = (await host.call('GET', '/api/openapi.json')).body;
    const create = doc.paths['/api/tenants/{tenantId}/dsr'].post;
    const ref: string = create.requestBody.content['application/json'].schema.$ref;
    const schema = doc.components.schemas[ref.split('/').pop()!];
    expect(schema.required).toEqual(expect.arrayContaining(['type', 'regulation', 'subject']));
    expect(schema.properties.type.enum).toEqual([
      'access',
      'export',
      'delete',
      'rectify',
      'restrict',
      'unrestrict',
    ]);
    expect(create.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ in: 'path', name: 'tenantId', required: true }),
        expect.objectContaining({ in: 'header', name: 'Idempotency-Key' }),
      ]),
    );
    const list = doc.paths['/api/tenants/{tenantId}/dsr'].get;
    expect(list.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          in: 'query',
          name: 'top',
          schema: expect.objectContaining({ maximum: 200 }),
        }),
      ]),
    );
  });
});

describe('GET /api/health', () => {
  it('reports every storage account reachable', async () => {
    const result = await host.call('GET', '/api/health');
    expect(result.status).toBe(200);
    expect(result.body.status).toBe('healthy');
    for (const account of ['GLOBAL', 'NA', 'EU', 'APAC', 'AU', 'IN', 'CH']) {
      expect(result.body.storage[account]).toMatchObject({ reachable: true });
    }
    // Every queue whose failures an operator must see, retention's included.
    expect(Object.keys(result.body.poisonMessages).sort()).toEqual([
      'dsr-work-poison',
      'personal-data-events-poison',
      'retention-work-poison',
    ]);
    for (const count of Object.values(result.body.poisonMessages)) expect(count).toEqual(expect.any(Number));
  });
});
