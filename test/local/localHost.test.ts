import type { Timer } from '@azure/functions';
import { z } from 'zod';

import type { HttpFunction } from '../../shared/hosting/functionDefinition';
import {
  echoRoute,
  queueFunction,
  startHost,
  stopHosts,
  timerFunction,
  uniqueQueue,
} from './localHostFixtures';

afterEach(stopHosts);

describe('LocalHost HTTP', () => {
  it('routes to the matching template with decoded parameters, ignoring the case of literals', async () => {
    const { baseUrl } = await startHost([
      echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}'),
      echoRoute('dsrApprove', 'tenants/{tenantId}/dsr/{requestId}/approve'),
      echoRoute('dsrExport', 'tenants/{tenantId}/dsr/export'),
    ]);
    const get = async (path: string) => (await fetch(`${baseUrl}${path}`)).json();

    expect(await get('/api/tenants/T1/dsr/r%201')).toEqual({
      fn: 'dsrRead',
      params: { tenantId: 'T1', requestId: 'r 1' },
    });
    expect(await get('/API/Tenants/T1/DSR/r1/Approve')).toEqual({
      fn: 'dsrApprove',
      params: { tenantId: 'T1', requestId: 'r1' },
    });
    expect(await get('/api/tenants/T1/dsr/r1/')).toMatchObject({ fn: 'dsrRead' });
  });

  it('prefers the template with more literal segments over an earlier registered one', async () => {
    const { baseUrl } = await startHost([
      echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}'),
      echoRoute('dsrExport', 'tenants/{tenantId}/dsr/export'),
    ]);
    expect(await (await fetch(`${baseUrl}/api/tenants/T1/dsr/EXPORT`)).json()).toEqual({
      fn: 'dsrExport',
      params: { tenantId: 'T1' },
    });
    expect(await (await fetch(`${baseUrl}/api/tenants/T1/dsr/exports`)).json()).toMatchObject({
      fn: 'dsrRead',
    });
  });

  it('answers an unknown path with 404 NotFound in the error shape and an x-request-id', async () => {
    const { baseUrl } = await startHost([echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}')]);
    for (const path of [
      '/api/nothing',
      '/api/tenants/T1/dsr/r1/approve/extra',
      '/api/tenants/T1/dsr',
      '/elsewhere',
    ]) {
      const response = await fetch(`${baseUrl}${path}`);
      expect(response.status).toBe(404);
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(await response.json()).toEqual({ error: { code: 'NotFound', message: expect.any(String) } });
    }
  });

  it('hands the function method, headers, query and body, and returns its status, headers and body', async () => {
    const things: HttpFunction = {
      kind: 'http',
      name: 'things',
      route: 'things/{thingId}',
      operations: {
        POST: {
          operationId: 'createThing',
          summary: 'Create a thing',
          access: { kind: 'public' },
          params: z.object({ thingId: z.string() }),
          body: z.object({ name: z.string() }),
          responses: [],
          handle: async ({ request, body, params }) => ({
            status: 201,
            headers: { location: `/api/things/${String(request.params.thingId)}`, 'x-echo': 'yes' },
            body: {
              method: request.method,
              header: request.headers.get('x-custom'),
              query: request.query.getAll('tag'),
              params,
              body,
            },
          }),
        },
      },
    };
    const { baseUrl } = await startHost([things]);

    const response = await fetch(`${baseUrl}/api/things/t-1?tag=a&tag=b`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'hello', 'x-request-id': 'client-42' },
      body: JSON.stringify({ name: 'lamp' }),
    });

    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe('/api/things/t-1');
    expect(response.headers.get('x-echo')).toBe('yes');
    expect(response.headers.get('x-request-id')).toBe('client-42');
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      method: 'POST',
      header: 'hello',
      query: ['a', 'b'],
      params: { thingId: 't-1' },
      body: { name: 'lamp' },
    });

    const wrongMethod = await fetch(`${baseUrl}/api/things/t-1`);
    expect(wrongMethod.status).toBe(405);
    expect(await wrongMethod.json()).toMatchObject({ error: { code: 'MethodNotAllowed' } });
  });

  it('lets the edge refuse a body over 64 KiB with 413, even one larger than the host buffers', async () => {
    const upload: HttpFunction = {
      kind: 'http',
      name: 'upload',
      route: 'upload',
      operations: {
        POST: {
          operationId: 'upload',
          summary: 'Upload',
          access: { kind: 'public' },
          body: z.object({ data: z.string() }),
          responses: [],
          handle: async () => ({ status: 204 }),
        },
      },
    };
    const { baseUrl } = await startHost([upload]);
    for (const size of [70 * 1024, 2 * 1024 * 1024]) {
      const response = await fetch(`${baseUrl}/api/upload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: 'x'.repeat(size) }),
      });
      expect(response.status).toBe(413);
      expect(await response.json()).toMatchObject({ error: { code: 'PayloadTooLarge' } });
    }
  });
});

describe('LocalHost admin endpoint', () => {
  const post = (baseUrl: string, name: string, body?: unknown) =>
    fetch(`${baseUrl}/admin/functions/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('runs a timer function at once with a Timer like the Azure host passes, and answers 202', async () => {
    const timers: Timer[] = [];
    const { baseUrl } = await startHost([
      timerFunction('yearlyReport', '0 0 0 1 1 *', async (_services, timer) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        timers.push(timer);
      }),
    ]);

    const response = await post(baseUrl, 'YearlyReport', {});

    expect(response.status).toBe(202);
    // The run has finished when the answer comes.
    expect(timers).toHaveLength(1);
    expect(timers[0]).toMatchObject({ isPastDue: false, schedule: { adjustForDST: false } });
    expect(timers[0]!.scheduleStatus.next).toMatch(/-01-01T00:00:00\.000Z$/);
  });

  it('runs a queue function with the input as its message: JSON when it parses, the text otherwise', async () => {
    const received: { message: unknown; dequeueCount: unknown }[] = [];
    const fn = queueFunction(uniqueQueue(), async (_services, message, context) => {
      received.push({ message, dequeueCount: context.triggerMetadata?.dequeueCount });
    });
    const { baseUrl } = await startHost([fn]);

    expect((await post(baseUrl, fn.name, { input: '{"type":"ping","n":1}' })).status).toBe(202);
    expect((await post(baseUrl, fn.name, { input: 'plain text' })).status).toBe(202);

    expect(received).toEqual([
      { message: { type: 'ping', n: 1 }, dequeueCount: 1 },
      { message: 'plain text', dequeueCount: 1 },
    ]);
  });

  it('answers 500 in the error shape when the function throws', async () => {
    const fn = queueFunction(uniqueQueue(), async () => {
      throw new Error('boom');
    });
    const { baseUrl } = await startHost([fn]);

    const response = await post(baseUrl, fn.name, { input: '{}' });

    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: { code: 'Internal', message: expect.any(String) } });
  });

  it('answers 404 for an unknown name and for an HTTP function', async () => {
    const { baseUrl } = await startHost([echoRoute('health', 'health')]);
    for (const name of ['nothing', 'health']) {
      const response = await post(baseUrl, name, {});
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: 'NotFound' } });
    }
  });
});
