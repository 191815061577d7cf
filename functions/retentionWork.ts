// Queue trigger on `retention-work`: purges what is due in one tenant; idempotent and resumable.
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { retentionWorkMessageSchema } from '../shared/purge/retentionPurge';
import { QUEUE_CONNECTION, QUEUES } from '../shared/storage/names';

export const retentionWork: QueueFunction = {
  kind: 'queue',
  name: 'retentionWork',
  queueName: QUEUES.retentionWork,
  connection: QUEUE_CONNECTION,
  async handle(services, message, context) {
    const work = await services.poison.decode(
      QUEUES.retentionWork,
      retentionWorkMessageSchema,
      message,
      context,
    );
    if (!work) return;
    const report = await services.retention.purgeTenant(work);
    if (report) context.log(`Retention purge of ${report.tenantId}: ${JSON.stringify(report)}`);
  },
};
