// GET /api/openapi.json and GET /api/health need no token and describe the running service.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { HttpRequest } from '@azure/functions';

import { openApiFunction } from '../../functions/openApi';
import { functionRegistry } from '../../functions/registry';
import { CATEGORY_WORDS } from '../../shared/vocabulary/categoryWords';
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

  it('names the roles of every operation that needs a token, and documents Idempotency-Key where honoured', async () => {
    const doc = (await host.call('GET', '/api/openapi.json')).body;
    for (const fn of functionRegistry) {
      if (fn.kind !== 'http') continue;
      for (const [method, op] of Object.entries(fn.operations)) {
        const documented = doc.paths[`/api/${fn.route}`][method.toLowerCase()];
        const where = `${method} ${fn.route}`;
        if (op.access.kind === 'public') {
          expect({ where, security: documented.security }).toEqual({ where, security: [] });
          continue;
        }
        const roles = op.access.roles === 'anyUser' ? ['any signed-in user'] : op.access.roles;
        for (const role of roles)
          expect({ where, description: documented.description }).toEqual({
            where,
            description: expect.stringContaining(role),
          });
        const header = (documented.parameters ?? []).some(
          (p: { in: string; name: string }) => p.in === 'header' && p.name === 'Idempotency-Key',
        );
        expect({ where, idempotencyKey: header }).toEqual({ where, idempotencyKey: op.idempotent === true });
      }
    }
  });

  it('describes the categories in the words of the one table the register and the report read', async () => {
    const doc = (await host.call('GET', '/api/openapi.json')).body;
    const description: string = doc.components.schemas.RecordCategory.description;
    for (const [category, words] of Object.entries(CATEGORY_WORDS)) {
      expect(description).toContain(`\`${category}\` (${words.label})`);
    }
  });

  it('names the server it is served from', async () => {
    const doc = (await host.call('GET', '/api/openapi.json')).body;
    expect(doc.servers).toEqual([{ url: host.baseUrl }]);
    // The paths carry the /api prefix, so the server is the bare origin.
    expect(Object.keys(doc.paths).every((path) => path.startsWith('/api/'))).toBe(true);
  });

  it('names the public address instead when the app is reached through a gateway (PUBLIC_BASE_URL)', async () => {
    const served = await openApiFunction(() => functionRegistry).operations.GET!.handle({
      services: { config: { publicBaseUrl: 'https://privacy.contoso.com' } },
      request: new HttpRequest({ url: 'http://10.0.0.4:7071/api/openapi.json', method: 'GET' }),
    } as never);
    expect(JSON.parse(served.body as string).servers).toEqual([{ url: 'https://privacy.contoso.com' }]);
  });

  it("passes Redocly's recommended rules with no error", async () => {
    const served = await host.call('GET', '/api/openapi.json');
    const problems = redoclyLint(JSON.stringify(served.body));
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    // The linter does apply the recommended rules: the same document without its servers fails.
    const { servers: _servers, ...serverless } = served.body;
    expect(redoclyLint(JSON.stringify(serverless))).toContainEqual(
      expect.objectContaining({ ruleId: 'no-empty-servers', severity: 'error' }),
    );
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

interface LintProblem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  pointer?: string;
}

// @redocly/openapi-core is an ES module, which jest's CommonJS loader cannot load untransformed: it runs in a
// node of its own, offline, with the recommended ruleset (what `npx @redocly/cli lint` applies by default).
const LINT_SCRIPT = `
import { createConfig, lintFromString } from '@redocly/openapi-core';
let source = '';
for await (const chunk of process.stdin) source += chunk;
const config = await createConfig({ extends: ['recommended'] });
const problems = await lintFromString({ source, absoluteRef: 'openapi.json', config });
process.stdout.write(JSON.stringify(problems.map((p) => ({
  ruleId: p.ruleId, severity: p.severity, message: p.message, pointer: p.location[0]?.pointer,
}))));
`;

function redoclyLint(document: string): LintProblem[] {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', LINT_SCRIPT], {
    input: document,
    cwd: join(__dirname, '..', '..'),
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (run.status !== 0) throw new Error(`Redocly lint did not run: ${run.stderr || run.error}`);
  return JSON.parse(run.stdout) as LintProblem[];
}

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
      'alert-data-work-poison',
      'dsr-work-poison',
      'personal-data-events-poison',
      'retention-work-poison',
    ]);
    for (const count of Object.values(result.body.poisonMessages)) expect(count).toEqual(expect.any(Number));
  });
});
