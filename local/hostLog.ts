// How the local host reports what happens: one line per message with its level, and failures by their message.
import type { LogLevel } from '@azure/functions';

export type HostLog = (level: LogLevel, message: string) => void;

/** The default log: information and up to the console, errors to stderr. */
export const consoleLog: HostLog = (level, message) => {
  if (level === 'trace' || level === 'debug' || level === 'none') return;
  (level === 'error' || level === 'critical' ? console.error : console.log)(message);
};

export const describeError = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
