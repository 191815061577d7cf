import { Readable } from 'node:stream';

import { HttpRequest } from '@azure/functions';

import type { Services } from '../../../shared/composition';
import type { ApiResult, Operations } from '../../../shared/http/apiOperation';
import { handleHttpRequest } from '../../../shared/http/httpEndpoint';
import { invocationContext } from '../../support/invocation';

/** Public operations never reach a service. */
const services = {} as unknown as Services;

/** A public GET that answers whatever `result` returns, as a package download would. */
const answering = (result: () => ApiResult): Operations => ({
  GET: {
    operationId: 'downloadPackage',
    summary: 'Download a package',
    access: { kind: 'public' },
    responses: [],
    handle: async () => result(),
  },
});

const get = (operations: Operations, headers: Record<string, string> = {}) =>
  handleHttpRequest(
    operations,
    services,
    new HttpRequest({ method: 'GET', url: 'http://localhost/api/packages/p-1', headers }),
    invocationContext('downloadPackage'),
  );

describe('handleHttpRequest response bodies', () => {
  it('passes a Readable body through as the same object, unread, with its own content-type and an x-request-id', async () => {
    const body = Readable.from([Buffer.from('PK\u0003\u0004')]);

    const response = await get(
      answering(() => ({
        status: 200,
        headers: { 'content-type': 'application/zip', 'content-disposition': 'attachment' },
        body,
      })),
    );

    expect(response.body).toBe(body);
    expect(body.readableDidRead).toBe(false);
    expect(response.status).toBe(200);
    expect(response.headers).toEqual({
      'content-type': 'application/zip',
      'content-disposition': 'attachment',
      'x-request-id': expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it('gives a Readable body no JSON content type when the handler sets none, and keeps the request id the caller sent', async () => {
    const body = Readable.from([]);

    const response = await get(
      answering(() => ({ status: 200, body })),
      { 'x-request-id': 'client-42' },
    );

    expect(response.body).toBe(body);
    expect(response.headers).toEqual({ 'x-request-id': 'client-42' });
  });

  it('still sends any other body as JSON with the JSON content type', async () => {
    const response = await get(answering(() => ({ status: 200, body: { packageId: 'p-1' } })));

    expect(response.body).toBe('{"packageId":"p-1"}');
    expect(response.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8' });
  });
});
