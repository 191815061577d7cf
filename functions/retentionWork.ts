// Queue trigger on `retention-work`: purges what is due in one tenant; idempotent and resumable.
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { validationDetails } from '../shared/http/errorResponse';
import { retentionWorkMessageSchema } from '../shared/retention/retentionPurge';
import { QUEUE_CONNECTION, QUEUES } from '../shared/storage/names';

export const retentionWork: QueueFunction = {
  kind: 'queue',
  name: 'retentionWork',
  queueName: QUEUES.retentionWork,
  connection: QUEUE_CONNECTION,
  async handle(services, message, context) {
    const parsed = retentionWorkMessageSchema.safeParse(message);
    if (!parsed.success) {
      await services.poison.put(
        QUEUES.retentionWork,
        message,
        'The message does not match the schema.',
        context,
        validationDetails(parsed.error),
      );
      return;
    }
    const report = await services.retention.purgeTenant(parsed.data);
    if (report) context.log(`Retention purge of ${report.tenantId}: ${JSON.stringify(report)}`);
  },
};
