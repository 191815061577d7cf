import type { AzuriteInstance } from '../../local/azurite';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __azurite__?: AzuriteInstance }).__azurite__?.stop();
}
