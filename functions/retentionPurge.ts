// Timer `retentionPurge`, daily at 02:00 UTC: one retention-work message per tenant (SPEC §6).
import type { TimerFunction } from '../shared/hosting/functionDefinition';

export const retentionPurge: TimerFunction = {
  kind: 'timer',
  name: 'retentionPurge',
  schedule: '0 0 2 * * *',
  async run(services, _timer, context) {
    const tenants = await services.retention.fanOut();
    context.log(`Retention purge queued for ${tenants} tenant(s).`);
  },
};
