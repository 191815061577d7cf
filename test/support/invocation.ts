// A real InvocationContext for calling functions directly, as a host would, with its log kept for asserts.
import { InvocationContext } from '@azure/functions';

export function invocationContext(functionName: string, triggerMetadata: Record<string, unknown> = {}) {
  const logs: string[] = [];
  const context = new InvocationContext({
    functionName,
    invocationId: `test-${Math.random().toString(16).slice(2)}`,
    triggerMetadata: { dequeueCount: 1, ...triggerMetadata },
    logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(' ')}`),
  });
  return Object.assign(context, { logs });
}
