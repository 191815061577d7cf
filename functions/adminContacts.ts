// Admin contact information (SPEC §9): GET|PUT|DELETE /api/tenants/{tid}/admin-contacts/me lets every
// signed-in user of the tenant view, correct and delete their own contact data (keyed by their object id);
// GET .../admin-contacts lists them for Privacy.Admin.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { collection, collectionSchema, pageRequestOf, pagingQuery } from '../shared/http/paging';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { notFound } from '../shared/errors';
import type { Principal } from '../shared/auth/principal';
import { adminContactSchema } from '../shared/records/adminContacts';

const contactViewSchema = adminContactSchema
  .extend({ objectId: z.string(), upn: z.string().optional(), updatedAt: z.string() })
  .meta({ id: 'AdminContactView' });

const adminOf = (principal: Principal) => ({
  objectId: principal.objectId,
  ...(principal.upn ? { upn: principal.upn } : {}),
});

export const adminContactMe: HttpFunction = {
  kind: 'http',
  name: 'adminContactMe',
  route: 'tenants/{tenantId}/admin-contacts/me',
  operations: {
    GET: operation({
      operationId: 'getMyAdminContact',
      summary: 'Your own contact data as this tenant holds it.',
      access: { kind: 'tenant', roles: 'anyUser' },
      responses: [
        { status: 200, description: 'Your contact data.', schema: contactViewSchema },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, principal }) {
        const contact = await services.adminContacts.get(tenant, adminOf(principal));
        if (!contact) throw notFound('Your contact data');
        return { status: 200, body: contact };
      },
    }),
    PUT: operation({
      operationId: 'putMyAdminContact',
      summary: 'Create or correct your own contact data (the whole of it).',
      access: { kind: 'tenant', roles: 'anyUser' },
      body: adminContactSchema,
      responses: [
        { status: 200, description: 'Your contact data now.', schema: contactViewSchema },
        ...BODY_ERRORS,
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, tenant, principal, body }) {
        return { status: 200, body: await services.adminContacts.put(tenant, adminOf(principal), body) };
      },
    }),
    DELETE: operation({
      operationId: 'deleteMyAdminContact',
      summary: 'Delete your own contact data.',
      access: { kind: 'tenant', roles: 'anyUser' },
      responses: [{ status: 204, description: 'Deleted.' }, ...TENANT_ERRORS, ...WRITE_ERRORS],
      async handle({ services, tenant, principal }) {
        if (!(await services.adminContacts.delete(tenant, adminOf(principal))))
          throw notFound('Your contact data');
        return { status: 204 };
      },
    }),
  },
};

export const adminContactList: HttpFunction = {
  kind: 'http',
  name: 'adminContactList',
  route: 'tenants/{tenantId}/admin-contacts',
  operations: {
    GET: operation({
      operationId: 'listAdminContacts',
      summary: "The tenant's admin contacts.",
      access: { kind: 'tenant', roles: ['Privacy.Admin'] },
      query: z.strictObject({ ...pagingQuery }),
      responses: [
        { status: 200, description: 'A page of contacts.', schema: collectionSchema(contactViewSchema) },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query, request }) {
        const page = await services.adminContacts.list(tenant, pageRequestOf(query));
        return { status: 200, body: collection(page, request.url) };
      },
    }),
  },
};
