// Timer `residencyRecovery`, every 5 minutes: a residency move that has not saved progress for 10 minutes
// (its message lost, or a step after the switch that kept failing) gets a new `residency-work` message.
import type { TimerFunction } from '../shared/hosting/functionDefinition';

export const STALLED_AFTER_MS = 10 * 60 * 1000;

export const residencyRecovery: TimerFunction = {
  kind: 'timer',
  name: 'residencyRecovery',
  schedule: '30 */5 * * * *',
  async run(services, _timer, context) {
    const resumed = await services.residency.resumeStalled(STALLED_AFTER_MS);
    context.log(`Residency moves resumed: ${resumed}`);
  },
};
