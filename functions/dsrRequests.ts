// POST /api/tenants/{tenantId}/dsr takes in a data subject request; GET lists them (filters status, type).
import { Readable } from 'node:stream';

import { z } from 'zod';

import { actorOf } from '../shared/auth/principal';
import { operation } from '../shared/http/apiOperation';
import { accepts } from '../shared/http/contentNegotiation';
import { collection, collectionSchema, pageRequestOf, pagingQuery } from '../shared/http/paging';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { everyItem } from '../shared/paging';
import { csvHeader, csvRow } from '../shared/requests/requestCsv';
import {
  createRequestSchema,
  REQUEST_STATUSES,
  REQUEST_TYPES,
  requestViewSchema,
} from '../shared/requests/dataSubjectRequest';

export const requestLocation = (tenantId: string, requestId: string) =>
  `/api/tenants/${tenantId}/dsr/${requestId}`;

export const dsrRequests: HttpFunction = {
  kind: 'http',
  name: 'dsrRequests',
  route: 'tenants/{tenantId}/dsr',
  operations: {
    POST: operation({
      operationId: 'createDataSubjectRequest',
      summary: 'Take in a data subject request; discovery starts at once.',
      access: { kind: 'tenant', roles: ['Privacy.Admin'] },
      body: createRequestSchema,
      idempotent: true,
      responses: [
        { status: 202, description: 'Accepted; Location points at the request.', schema: requestViewSchema },
        ...BODY_ERRORS,
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, tenant, principal, body, requestId, idempotencyKey }) {
        const created = await services.requests.create(
          tenant,
          body,
          { actor: actorOf(principal), correlationId: requestId },
          idempotencyKey,
        );
        return {
          status: 202,
          body: created,
          headers: { Location: requestLocation(tenant.tenantId, created.id) },
        };
      },
    }),
    GET: operation({
      operationId: 'listDataSubjectRequests',
      summary: 'List data subject requests, newest first.',
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      query: z.strictObject({
        ...pagingQuery,
        status: z.enum(REQUEST_STATUSES).optional(),
        type: z.enum(REQUEST_TYPES).optional(),
      }),
      responses: [
        {
          status: 200,
          description:
            'A page of requests; with Accept: text/csv, every matching request as CSV (id, received, type, ' +
            'regulation, status, decision, decisionReason, completed, daysTaken) for record keeping.',
          schema: collectionSchema(requestViewSchema),
        },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query, request }) {
        const { status, type } = query;
        const filter = { ...(status ? { status } : {}), ...(type ? { type } : {}) };
        if (wantsCsv(request.headers.get('accept'))) {
          // Every matching request (paging does not apply), streamed page by page as it is read.
          const rows = async function* () {
            yield csvHeader();
            for await (const item of everyItem((page) => services.requests.list(tenant, filter, page))) {
              yield csvRow(item);
            }
          };
          return {
            status: 200,
            body: Readable.from(rows()),
            headers: {
              'content-type': 'text/csv; charset=utf-8',
              'content-disposition': `attachment; filename="dsr-${tenant.tenantId}.csv"`,
            },
          };
        }
        const page = await services.requests.list(tenant, filter, pageRequestOf(query));
        return { status: 200, body: collection(page, request.url) };
      },
    }),
  },
};

/** Whether the caller asked for CSV (`Accept: text/csv`, alone or preferred among others). */
export const wantsCsv = (accept: string | null): boolean => accepts(accept, 'text/csv');
