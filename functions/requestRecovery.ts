// Timer `requestRecovery`, every 5 minutes: side effects left on a request are carried out, and a step that
// stopped is put back on `dsr-work` (or, after three times, the request ends failed). The rules live in
// shared/requests/requestRecovery.
import type { TimerFunction } from '../shared/hosting/functionDefinition';

export const requestRecovery: TimerFunction = {
  kind: 'timer',
  name: 'requestRecovery',
  schedule: '0 */5 * * * *',
  async run(services, _timer, context) {
    const { failures, ...counts } = await services.recovery.run();
    context.log('Requests recovered', counts);
    if (failures.length > 0) {
      // Every other tenant was looked at; failing the run makes the host report it (the next run retries).
      const list = failures.map((f) => `${f.tenantId}: ${f.reason}`).join('; ');
      throw new Error(`Requests of ${failures.length} tenant(s) could not be recovered: ${list}`);
    }
  },
};
