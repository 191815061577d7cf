// GET /api/tenants/{tenantId}/audit lists the tenant's audit events in chain order (filters from, to, actor,
// action). There is deliberately no route that edits or deletes audit events (SPEC §7).
import { z } from 'zod';

import type { AuditFilter } from '../shared/audit/auditEvent';
import { operation } from '../shared/http/apiOperation';
import { collection, collectionSchema, pageRequestOf, pagingQuery } from '../shared/http/paging';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';

const ACTOR_TYPES = ['user', 'app', 'system', 'operator'] as const;
const OUTCOMES = ['success', 'failure', 'denied'] as const;

export const auditEventSchema = z
  .object({
    id: z.string(),
    sequence: z.number().int().min(1).describe('Position in the tenant chain, from 1.'),
    time: z.iso.datetime(),
    tenantId: z.string(),
    actor: z.object({ type: z.enum(ACTOR_TYPES), id: z.string(), upn: z.string().optional() }),
    action: z
      .string()
      .describe('For example dsr.created, dsr.approved, export.linkIssued, retention.purged.'),
    target: z.object({ type: z.string(), id: z.string() }),
    outcome: z.enum(OUTCOMES),
    correlationId: z.string(),
    details: z.record(z.string(), z.unknown()),
    previousHash: z.string().describe('Hash of the previous event (64 zeros for the first).'),
    hash: z.string().describe('SHA-256 (hex) of the RFC 8785 canonical JSON of every other field.'),
  })
  .meta({ id: 'AuditEvent' });

const dateTime = z.iso.datetime({ offset: true });

const auditQuery = z
  .strictObject({
    ...pagingQuery,
    from: dateTime.optional().describe('Events at or after this instant.'),
    to: dateTime.optional().describe('Events at or before this instant.'),
    actor: z.string().trim().min(1).max(256).optional().describe('Actor id (object id) or UPN.'),
    action: z.string().trim().min(1).max(128).optional(),
  })
  .refine((query) => !query.from || !query.to || Date.parse(query.from) <= Date.parse(query.to), {
    message: '`from` must not be after `to`.',
    path: ['to'],
  });

export const auditEvents: HttpFunction = {
  kind: 'http',
  name: 'auditEvents',
  route: 'tenants/{tenantId}/audit',
  operations: {
    GET: operation({
      operationId: 'listAuditEvents',
      summary: 'List audit events, oldest first.',
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      query: auditQuery,
      responses: [
        { status: 200, description: 'A page of audit events.', schema: collectionSchema(auditEventSchema) },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query, request }) {
        const filter: AuditFilter = {
          ...(query.from ? { from: new Date(query.from) } : {}),
          ...(query.to ? { to: new Date(query.to) } : {}),
          ...(query.actor ? { actor: query.actor } : {}),
          ...(query.action ? { action: query.action } : {}),
        };
        const page = await services.audit.list(tenant, filter, pageRequestOf(query));
        return { status: 200, body: collection(page, request.url) };
      },
    }),
  },
};
