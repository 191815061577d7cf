// GET /api/health (no auth): storage reachability per geography and poison-queue counts; 503 when unhealthy.
import { z } from 'zod';

import { healthReport } from '../shared/health/healthReport';
import { operation } from '../shared/http/apiOperation';
import type { HttpFunction } from '../shared/hosting/functionDefinition';

const accountHealth = z.object({
  reachable: z.boolean(),
  latencyMs: z.number(),
  error: z.string().optional(),
});
const healthSchema = z
  .object({
    status: z.enum(['healthy', 'unhealthy']),
    storage: z.record(z.string(), accountHealth),
    poisonMessages: z.record(z.string(), z.number().nullable()),
  })
  .meta({ id: 'Health' });

export const health: HttpFunction = {
  kind: 'http',
  name: 'health',
  route: 'health',
  operations: {
    GET: operation({
      operationId: 'getHealth',
      summary: 'Storage reachability per geography and poison-queue counts.',
      access: { kind: 'public' },
      responses: [
        { status: 200, description: 'Every storage account answers.', schema: healthSchema },
        { status: 503, description: 'Some storage account does not answer.', schema: healthSchema },
      ],
      async handle({ services, log }) {
        const report = await healthReport(services.storage, services.poison, (message, error) =>
          log.warn(message, error),
        );
        return {
          status: report.status === 'healthy' ? 200 : 503,
          body: report,
          headers: { 'cache-control': 'no-store' },
        };
      },
    }),
  },
};
