// Timer `operatorAccessExpiry`, every 5 minutes: operator access requests nobody decided within 12 hours and
// grants past their end are recorded as expired in their tenant's audit log (once). Access itself never waits
// for this: every check compares times (shared/operatorAccess/accessRequest.ts statusAt).
import type { TimerFunction } from '../shared/hosting/functionDefinition';

export const operatorAccessExpiry: TimerFunction = {
  kind: 'timer',
  name: 'operatorAccessExpiry',
  schedule: '15 */5 * * * *',
  async run(services, _timer, context) {
    const { expired, failures } = await services.operatorAccess.expireDue(`operator-access-expiry`);
    context.log(`Operator access requests expired: ${expired}`);
    if (failures.length > 0) throw new Error(`Some expiries could not be recorded: ${failures.join('; ')}`);
  },
};
