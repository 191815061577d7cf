// functions/index.ts is what the Azure host loads: it must decode the configuration at load time, refuse
/* eslint-disable @typescript-eslint/no-require-imports -- modules are loaded inside jest.isolateModules on purpose */
// to start without it, and register every function of the registry.
import type { app } from '@azure/functions';

import { functionRegistry } from '../../functions/registry';
import { testConfig } from '../support/testStorage';

describe('functions/index.ts', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
    jest.restoreAllMocks();
  });

  it('registers every function of the registry with its trigger', () => {
    testConfig(); // the test Azurite is configured
    process.env.AUTH_AUDIENCE = 'api://privacy-data-service';
    process.env.AUTH_ISSUER_TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';
    process.env.AUTH_JWKS_URI = 'https://login.microsoftonline.com/common/discovery/v2.0/keys';
    let spies!: { http: jest.SpyInstance; queue: jest.SpyInstance; timer: jest.SpyInstance };
    jest.isolateModules(() => {
      // The module registry is fresh here: spy on the @azure/functions instance functions/index.ts will see.
      const fresh = (require('@azure/functions') as { app: typeof app }).app;
      spies = {
        http: jest.spyOn(fresh, 'http').mockImplementation(() => undefined),
        queue: jest.spyOn(fresh, 'storageQueue').mockImplementation(() => undefined),
        timer: jest.spyOn(fresh, 'timer').mockImplementation(() => undefined),
      };
      require('../../functions/index');
    });
    const { http, queue, timer } = spies;
    const registered = [...http.mock.calls, ...queue.mock.calls, ...timer.mock.calls]
      .map(([name]) => name)
      .sort();
    expect(registered).toEqual(functionRegistry.map((fn) => fn.name).sort());
    const dsr = http.mock.calls.find(([name]) => name === 'dsrRequests')?.[1];
    expect(dsr).toMatchObject({ route: 'tenants/{tenantId}/dsr', authLevel: 'anonymous' });
    expect(dsr?.methods).toEqual(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
    expect(queue.mock.calls[0]?.[1]).toMatchObject({
      queueName: 'personal-data-events',
      connection: 'STORAGE_GLOBAL',
    });
  });

  it('stops loading with the names of missing settings', () => {
    delete process.env.AUTH_AUDIENCE;
    delete process.env.STORAGE_GLOBAL;
    expect(() => jest.isolateModules(() => require('../../functions/index'))).toThrow(
      /AUTH_AUDIENCE: is required[\s\S]*STORAGE_GLOBAL: is required/,
    );
  });
});
