// Queue trigger on `residency-work`: one slice of a tenant's move between geographies (SPEC §8). A malformed
// message is poisoned with its reason; a slice that keeps failing before the switch fails the move, which
// rolls back; after the switch it stays for the stalled-job sweep (residencyRecovery).
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { dequeueCountOf, MAX_DEQUEUE_COUNT } from '../shared/hosting/queueFailures';
import { residencyWorkMessageSchema } from '../shared/migration/migrationJob';
import { QUEUE_CONNECTION, QUEUES } from '../shared/storage/names';
import { isTenantMigrating } from '../shared/storage/residencyGuard';

export const residencyWork: QueueFunction = {
  kind: 'queue',
  name: 'residencyWork',
  queueName: QUEUES.residencyWork,
  connection: QUEUE_CONNECTION,
  async handle(services, message, context) {
    const work = await services.poison.decode(
      QUEUES.residencyWork,
      residencyWorkMessageSchema,
      message,
      context,
    );
    if (!work) return;
    try {
      const job = await services.mover.run(work);
      if (job) context.log(`Migration ${job.migrationId} of ${job.tenantId}: ${job.status}`);
    } catch (error) {
      if (!isTenantMigrating(error) && dequeueCountOf(context) >= MAX_DEQUEUE_COUNT) {
        context.error(`Migration ${work.migrationId} of ${work.tenantId} failed for good:`, error);
        await services.mover.giveUp(work, error);
      }
      throw error;
    }
  },
};
