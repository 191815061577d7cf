// GET /api/retention-policy (no auth): the retention table of SPEC §6, served from the very value the purge
// applies, so the published policy cannot drift from what is done.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import {
  RETENTION_POLICY,
  type RetentionAction,
  type RetentionRule,
} from '../shared/retention/retentionPolicy';
import { categorySchema } from '../shared/vocabulary/categorySchema';

const RETENTION_ACTIONS = ['delete', 'anonymise'] as const satisfies readonly RetentionAction[];
const RETENTION_FROM = [
  'occurredAt',
  'deletedAt',
  'endedAt',
  'completedAt',
  'time',
] as const satisfies readonly RetentionRule['from'][];

export const retentionRuleSchema = z
  .object({
    name: z.string(),
    data: z.string(),
    action: z.enum(RETENTION_ACTIONS),
    after: z.union([
      z.strictObject({ days: z.number().int().positive() }),
      z.strictObject({ years: z.number().int().positive() }),
    ]),
    from: z.enum(RETENTION_FROM).describe('The moment the period counts from.'),
    categories: z.array(categorySchema).optional(),
  })
  .meta({ id: 'RetentionRule' });

export const retentionPolicySchema = z
  .object({ rules: z.array(retentionRuleSchema) })
  .meta({ id: 'RetentionPolicy' });

type RetentionPolicyBody = z.infer<typeof retentionPolicySchema>;

/** Typed against the schema, so a new action or `from` in the policy fails to compile until it is described. */
const body: RetentionPolicyBody = {
  rules: Object.entries(RETENTION_POLICY).map(([name, rule]: [string, RetentionRule]) => ({
    name,
    data: rule.data,
    action: rule.action,
    after: rule.after,
    from: rule.from,
    ...(rule.categories ? { categories: [...rule.categories] } : {}),
  })),
};

export const retentionPolicy: HttpFunction = {
  kind: 'http',
  name: 'retentionPolicy',
  route: 'retention-policy',
  operations: {
    GET: operation({
      operationId: 'getRetentionPolicy',
      summary: 'How long each kind of data is kept, and what happens to it then.',
      access: { kind: 'public' },
      responses: [{ status: 200, description: 'The retention rules.', schema: retentionPolicySchema }],
      async handle() {
        return { status: 200, body, headers: { 'cache-control': 'public, max-age=3600' } };
      },
    }),
  },
};
