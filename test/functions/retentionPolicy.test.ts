// GET /api/retention-policy needs no token and serves the policy the purge applies.
import { retentionPolicySchema } from '../../functions/retentionPolicy';
import { RETENTION_POLICY } from '../../shared/retention/retentionPolicy';
import { startTestHost, type TestHost } from '../support/testHost';

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost();
});
afterAll(() => host.stop());

describe('GET /api/retention-policy', () => {
  it('serves every rule of RETENTION_POLICY, by name, without a token', async () => {
    const result = await host.call('GET', '/api/retention-policy');
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toMatch(/application\/json/);
    const { rules } = retentionPolicySchema.parse(result.body);
    expect(rules.map((r) => r.name)).toEqual(Object.keys(RETENTION_POLICY));
    for (const [name, rule] of Object.entries(RETENTION_POLICY)) {
      expect(rules.find((r) => r.name === name)).toEqual({ name, ...rule });
    }
  });

  it('states the SPEC §6 periods', async () => {
    const { rules } = (await host.call('GET', '/api/retention-policy')).body as {
      rules: { name: string; action: string; after: object; from: string; categories?: string[] }[];
    };
    const byName = new Map(rules.map((r) => [r.name, r]));
    expect(byName.get('alertAnonymisation')).toMatchObject({
      action: 'anonymise',
      after: { days: 180 },
      from: 'occurredAt',
      categories: ['alert'],
    });
    expect(byName.get('alertDeletion')).toMatchObject({ action: 'delete', after: { years: 2 } });
    expect(byName.get('shortLived')).toMatchObject({
      after: { days: 30 },
      categories: ['windowsDiagnostic', 'usage', 'deviceDiagnostics', 'systemLog'],
    });
    expect(byName.get('auditEvents')).toMatchObject({ action: 'delete', after: { years: 1 } });
    expect(byName.get('exportPackages')).toMatchObject({ after: { days: 30 }, from: 'completedAt' });
    expect(byName.get('softDeleted')).not.toHaveProperty('categories');
  });

  it('is described in the OpenAPI document as a public operation with its response schema', async () => {
    const doc = (await host.call('GET', '/api/openapi.json')).body;
    const get = doc.paths['/api/retention-policy'].get;
    expect(get.operationId).toBe('getRetentionPolicy');
    expect(get.security).toEqual([]);
    const ref: string = get.responses['200'].content['application/json'].schema.$ref;
    const schema = doc.components.schemas[ref.split('/').pop()!];
    expect(schema.properties.rules.type).toBe('array');
    const rule = doc.components.schemas.RetentionRule;
    expect(rule.required).toEqual(expect.arrayContaining(['name', 'data', 'action', 'after', 'from']));
    expect(rule.properties.action.enum).toEqual(['delete', 'anonymise']);
  });
});
