// Starts one in-memory Azurite on free ports for the whole test run (never the development ports) and
// publishes its settings through the environment that the test workers inherit.
import { startAzurite } from '../../local/azurite';

export default async function globalSetup(): Promise<void> {
  const azurite = await startAzurite();
  Object.assign(process.env, azurite.storageSettings(), {
    TEST_AZURITE_PORTS: JSON.stringify(azurite.ports),
  });
  (globalThis as { __azurite__?: typeof azurite }).__azurite__ = azurite;
}
