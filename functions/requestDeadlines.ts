// Timer `requestDeadlines`, hourly: flags open data subject requests `dueSoon` (last 7 days) or `overdue`,
// auditing each raised flag once. The rule and the walk over tenants live in shared/requests/requestDeadlines.
import type { TimerFunction } from '../shared/hosting/functionDefinition';

export const requestDeadlines: TimerFunction = {
  kind: 'timer',
  name: 'requestDeadlines',
  schedule: '0 0 * * * *',
  async run(services, _timer, context) {
    const { failures, ...counts } = await services.deadlines.run(context.invocationId);
    context.log('Request deadlines checked', counts);
    if (failures.length > 0) {
      // Every other tenant was checked; failing the run makes the host report it (the next run retries).
      const list = failures.map((f) => `${f.tenantId}: ${f.reason}`).join('; ');
      throw new Error(`Deadlines of ${failures.length} tenant(s) could not be checked: ${list}`);
    }
  },
};
