// Timer `alertRequestRecovery`, every 5 minutes: side effects left on an alert data request are carried
// out, and work that stopped is put back on `alert-data-work` (or, after three times, the request ends
// failed). The rules live in shared/alertRequests/alertRequestRecovery.
import type { TimerFunction } from '../shared/hosting/functionDefinition';

export const alertRequestRecovery: TimerFunction = {
  kind: 'timer',
  name: 'alertRequestRecovery',
  schedule: '30 */5 * * * *',
  async run(services, _timer, context) {
    const { failures, ...counts } = await services.alertRecovery.run();
    context.log('Alert data requests recovered', counts);
    if (failures.length > 0) {
      // Every other tenant was looked at; failing the run makes the host report it (the next run retries).
      const list = failures.map((f) => `${f.tenantId}: ${f.reason}`).join('; ');
      throw new Error(`Alert data requests of ${failures.length} tenant(s) could not be recovered: ${list}`);
    }
  },
};
