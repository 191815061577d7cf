// What a request says when a step of its fulfilment keeps failing (SPEC §5): a code and words for people,
// never internals — the raw error goes to the log. Pure.
import { DomainError } from '../errors';

export interface StepFailure {
  code: string;
  reason: string;
}

/** Network failures Node reports by code: storage did not answer. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'REQUEST_SEND_ERROR',
]);

export function stepFailure(error: unknown): StepFailure {
  if (error instanceof DomainError && error.code !== 'Internal')
    return { code: error.code, reason: error.message };
  if (isStorageFault(error)) {
    return {
      code: 'StorageUnavailable',
      reason: 'Storage did not answer while this step ran. Retry the request: what it had done is kept.',
    };
  }
  return {
    code: 'Internal',
    reason: 'This step failed unexpectedly. Retry the request; if it fails again, quote its id to support.',
  };
}

/** A storage service's error answer (a status code) or a network failure on the way to it. */
function isStorageFault(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { statusCode, code } = error as { statusCode?: unknown; code?: unknown };
  return typeof statusCode === 'number' || (typeof code === 'string' && UNREACHABLE.has(code));
}
