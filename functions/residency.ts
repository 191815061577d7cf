// Data residency of a tenant (SPEC §8): GET .../residency (where it is, where it would go, its latest move),
// POST .../residency/migration (a dry run's plan, or the start of a move: 202 with Location) and
// GET .../residency/migration (the latest move's status, progress and manifest).
import { z } from 'zod';

import { actorOf } from '../shared/auth/principal';
import { operation } from '../shared/http/apiOperation';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { geographySchema, MIGRATION_STATUSES } from '../shared/migration/migrationJob';

const sideSchema = z.object({ count: z.number().int(), digest: z.string() });

export const migrationSchema = z
  .object({
    tenantId: z.string(),
    migrationId: z.string(),
    from: geographySchema,
    to: geographySchema,
    status: z.enum(MIGRATION_STATUSES),
    requestedBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    fencedAt: z.string().describe('When writes began to wait.'),
    copyAfter: z.string().describe('When the copy may start: every instance has seen the flag by then.'),
    switchedAt: z.string().optional().describe('When the directory entry moved to the target geography.'),
    completedAt: z.string().optional(),
    progress: z.object({
      copied: z.record(z.string(), z.number().int()),
      verified: z.record(z.string(), z.number().int()),
      deleted: z.record(z.string(), z.number().int()),
    }),
    cursor: z.object({ item: z.number().int(), continuationToken: z.string().optional() }),
    manifest: z
      .object({
        from: geographySchema,
        to: geographySchema,
        tables: z.record(
          z.string(),
          z.object({ source: sideSchema, target: sideSchema, matched: z.boolean() }),
        ),
        containers: z.record(
          z.string(),
          z.object({
            source: sideSchema.extend({ bytes: z.number().int() }),
            target: sideSchema.extend({ bytes: z.number().int() }),
            matched: z.boolean(),
          }),
        ),
        resynced: z.number().int(),
        sourceRemaining: z.record(z.string(), z.number().int()).optional(),
      })
      .optional()
      .describe(
        'Verification manifest: rows or blobs and SHA-256 digest on each side, per table and container.',
      ),
    failure: z.object({ code: z.string(), reason: z.string() }).optional(),
    rolledBack: z.boolean().optional(),
  })
  .meta({ id: 'Migration' });

export const residencySchema = z
  .object({
    tenantId: z.string(),
    countryCode: z.string(),
    geography: geographySchema,
    bestGeography: geographySchema.nullable(),
    eligible: z.boolean(),
    migration: migrationSchema.nullable(),
  })
  .meta({ id: 'Residency' });

export const migrationPlanSchema = z
  .object({
    from: geographySchema,
    to: geographySchema,
    tables: z.record(z.string(), z.object({ rows: z.number().int(), bytes: z.number().int() })),
    containers: z.record(z.string(), z.object({ blobs: z.number().int(), bytes: z.number().int() })),
    estimatedSeconds: z.number().int(),
  })
  .meta({ id: 'MigrationPlan' });

const migrationRequestSchema = z
  .strictObject({ dryRun: z.boolean().optional().describe('Only answer the plan; change nothing.') })
  .meta({ id: 'MigrationRequest' });

const READERS = ['Privacy.Admin', 'Privacy.Reader'] as const;
export const migrationLocation = (tenantId: string) => `/api/tenants/${tenantId}/residency/migration`;

export const residency: HttpFunction = {
  kind: 'http',
  name: 'residency',
  route: 'tenants/{tenantId}/residency',
  operations: {
    GET: operation({
      operationId: 'getResidency',
      summary: "The tenant's geography, country, the geography that best fits it now, and its latest move.",
      access: { kind: 'tenant', roles: [...READERS] },
      responses: [
        { status: 200, description: 'Where the tenant is.', schema: residencySchema },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant }) {
        return { status: 200, body: await services.residency.view(tenant) };
      },
    }),
  },
};

export const residencyMigration: HttpFunction = {
  kind: 'http',
  name: 'residencyMigration',
  route: 'tenants/{tenantId}/residency/migration',
  operations: {
    GET: operation({
      operationId: 'getResidencyMigration',
      summary: "The tenant's latest move: status, progress counts, manifest, or failure.",
      access: { kind: 'tenant', roles: [...READERS] },
      responses: [
        { status: 200, description: 'The latest move.', schema: migrationSchema },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant }) {
        return { status: 200, body: await services.residency.latest(tenant) };
      },
    }),
    POST: operation({
      operationId: 'startResidencyMigration',
      summary:
        'Move the tenant to the geography that now best fits its country (409 NotEligible when it is there). ' +
        'With {"dryRun":true}, only the plan.',
      access: { kind: 'tenant', roles: ['Privacy.Admin'] },
      body: migrationRequestSchema,
      idempotent: true,
      responses: [
        { status: 200, description: 'The plan of a dry run.', schema: migrationPlanSchema },
        { status: 202, description: 'The move started; follow Location.', schema: migrationSchema },
        ...BODY_ERRORS,
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, tenant, principal, body, requestId, idempotencyKey }) {
        if (body.dryRun) return { status: 200, body: await services.residency.plan(tenant) };
        const job = await services.residency.start(tenant, actorOf(principal), requestId, {
          ...(idempotencyKey ? { idempotencyKey } : {}),
        });
        return { status: 202, body: job, headers: { Location: migrationLocation(tenant.tenantId) } };
      },
    }),
  },
};
