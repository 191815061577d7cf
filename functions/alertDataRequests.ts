// Alert data requests (SPEC §9), for the tenant's Security.Admin: POST takes one in (extract or delete the
// alerts of up to 100 devices; the work runs on `alert-data-work`), GET lists or reads them, and
// `.../{requestId}/export` issues a 15-minute download link to an extraction's package
// (functions/packageDownload.ts serves it). Every step is an audit event in the tenant's chain.
import { z } from 'zod';

import { actorOf } from '../shared/auth/principal';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { operation } from '../shared/http/apiOperation';
import { collection, collectionSchema, pageRequestOf, pagingQuery } from '../shared/http/paging';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import {
  ALERT_REQUEST_STATUSES,
  alertRequestViewSchema,
  createAlertDataRequestSchema,
} from '../shared/alertRequests/alertDataRequest';
import { downloadLinkSchema } from './dsrExport';
import { publicOrigin } from '../shared/http/publicOrigin';

const ROLES = ['Security.Admin'] as const;

const alertRequestParams = z.object({ alertRequestId: z.string().min(1).max(64) });

export const alertRequestLocation = (tenantId: string, requestId: string) =>
  `/api/tenants/${tenantId}/alert-data-requests/${requestId}`;

export const alertDataRequests: HttpFunction = {
  kind: 'http',
  name: 'alertDataRequests',
  route: 'tenants/{tenantId}/alert-data-requests',
  operations: {
    POST: operation({
      operationId: 'createAlertDataRequest',
      summary:
        "Take in an alert data request: extract the named devices' alerts into a package, or delete their personal fields as the 180-day rule does.",
      access: { kind: 'tenant', roles: ROLES },
      body: createAlertDataRequestSchema,
      idempotent: true,
      responses: [
        {
          status: 202,
          description: 'Accepted; Location points at the request.',
          schema: alertRequestViewSchema,
        },
        ...BODY_ERRORS,
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, tenant, principal, body, requestId, idempotencyKey }) {
        const created = await services.alertRequests.create(
          tenant,
          body,
          { actor: actorOf(principal), correlationId: requestId },
          idempotencyKey,
        );
        return {
          status: 202,
          body: created,
          headers: { Location: alertRequestLocation(tenant.tenantId, created.id) },
        };
      },
    }),
    GET: operation({
      operationId: 'listAlertDataRequests',
      summary: 'List alert data requests, newest first.',
      access: { kind: 'tenant', roles: ROLES },
      query: z.strictObject({ ...pagingQuery, status: z.enum(ALERT_REQUEST_STATUSES).optional() }),
      responses: [
        { status: 200, description: 'A page of requests.', schema: collectionSchema(alertRequestViewSchema) },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query, request }) {
        const filter = query.status ? { status: query.status } : {};
        const page = await services.alertRequests.list(tenant, filter, pageRequestOf(query));
        return { status: 200, body: collection(page, request.url) };
      },
    }),
  },
};

export const alertDataRequest: HttpFunction = {
  kind: 'http',
  name: 'alertDataRequest',
  route: 'tenants/{tenantId}/alert-data-requests/{alertRequestId}',
  operations: {
    GET: operation({
      operationId: 'getAlertDataRequest',
      summary: 'Read an alert data request: its status, devices, reason, times and result counts.',
      access: { kind: 'tenant', roles: ROLES },
      params: alertRequestParams,
      responses: [
        { status: 200, description: 'The request.', schema: alertRequestViewSchema },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, params }) {
        return { status: 200, body: await services.alertRequests.get(tenant, params.alertRequestId) };
      },
    }),
  },
};

export const alertDataExport: HttpFunction = {
  kind: 'http',
  name: 'alertDataExport',
  route: 'tenants/{tenantId}/alert-data-requests/{alertRequestId}/export',
  operations: {
    GET: operation({
      operationId: 'getAlertDataRequestPackageLink',
      summary:
        'Issue a 15-minute download link to the package of a completed extraction; the app decrypts the package as it serves it.',
      access: { kind: 'tenant', roles: ROLES },
      params: alertRequestParams,
      responses: [
        { status: 200, description: 'The link.', schema: downloadLinkSchema },
        ...TENANT_ERRORS,
        { status: 409, description: 'InvalidState: the request has no package (yet), or is a deletion.' },
      ],
      async handle({ services, tenant, principal, params, request, requestId }) {
        const baseUrl = publicOrigin(services.config, request);
        const link = await services.alertRequests.packageLink(
          tenant,
          params.alertRequestId,
          { actor: actorOf(principal), correlationId: requestId },
          baseUrl,
        );
        return { status: 200, body: link, headers: { 'cache-control': 'no-store' } };
      },
    }),
  },
};
