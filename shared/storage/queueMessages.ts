// Queue messages are JSON, base64-encoded as the Functions host expects by default.
import type { QueueClient } from '@azure/storage-queue';

export const encodeMessage = (value: unknown): string =>
  Buffer.from(JSON.stringify(value), 'utf8').toString('base64');

/** Decodes like the Functions host: base64 text, then JSON when it parses, else the string itself. */
export function decodeMessage(messageText: string): unknown {
  const text = Buffer.from(messageText, 'base64').toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export async function sendJson(queue: QueueClient, value: unknown, visibilityTimeoutSeconds?: number) {
  await queue.sendMessage(encodeMessage(value), {
    ...(visibilityTimeoutSeconds ? { visibilityTimeout: visibilityTimeoutSeconds } : {}),
  });
}
