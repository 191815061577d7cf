// "404 means absent": a read or delete of a row, blob or message that is not (or no longer) there is an
// answer (nothing there), not a failure; every other error still is one.
import { RestError } from '@azure/data-tables';

/**
 * Whether a storage call failed because what it names is not there. Table, Blob and Queue clients all throw
 * core-rest-pipeline's RestError (which @azure/data-tables re-exports).
 */
export const isAbsent = (error: unknown): boolean => error instanceof RestError && error.statusCode === 404;

/** What the storage call answers, or undefined when what it names is not there. */
export async function orAbsent<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isAbsent(error)) return undefined;
    throw error;
  }
}
