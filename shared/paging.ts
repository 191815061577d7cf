// One page of a collection. The continuation is opaque to callers; the HTTP edge hands it out as skipToken.
export interface Page<T> {
  items: T[];
  continuation?: string;
}

export interface PageRequest {
  top: number;
  continuation?: string;
}

/** Continuations are base64url JSON; a malformed one is the caller's mistake, never a crash. */
export function encodeContinuation(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export function decodeContinuation<T>(
  token: string | undefined,
  isValid: (v: unknown) => v is T,
): T | undefined {
  if (token === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!isValid(value)) throw new InvalidContinuationError();
  return value;
}

export class InvalidContinuationError extends Error {
  constructor() {
    super('The skipToken is not valid.');
    this.name = 'InvalidContinuationError';
  }
}
