// `npm start`: the whole service on this machine: Azurite, the development signing key, a demo tenant, and the
// local host running every function of the registry. Ctrl+C stops the host first, then Azurite.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { format } from 'node:util';

import { InvocationContext } from '@azure/functions';

import { functionRegistry } from '../functions/registry';
import { demoRecordEvents, demoRecordMessages } from './demoData';
import { createServices, type Services } from '../shared/composition';
import { ConfigurationError, loadConfig, storageSettingName } from '../shared/config';
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { invokeQueue } from '../shared/hosting/invoke';
import { type AzuriteInstance, type AzuritePorts, startAzurite } from './azurite';
import { loadOrCreateDevKey } from './devTokens';
import type { HostLog } from './hostLog';
import { LocalHost } from './localHost';
import { loadLocalSettings, repoRoot } from './settings';

const DEFAULT_AZURITE_PORTS: AzuritePorts = { blob: 10000, queue: 10001, table: 10002 };
const DEMO_EVENT_FUNCTION = 'personalDataEvents';

const log: HostLog = (level, message) => {
  if (level === 'trace' || level === 'debug' || level === 'none') return;
  const line = `${new Date().toISOString().slice(11, 23)} ${message}`;
  if (level === 'error' || level === 'critical') console.error(line);
  else if (level === 'warning') console.warn(line);
  else console.log(line);
};

/** The Azurite ports a connection string points at; the standard ones where it names none. */
function azuritePortsOf(connectionString: string | undefined): AzuritePorts {
  const portOf = (service: 'Blob' | 'Queue' | 'Table', fallback: number): number => {
    const endpoint = new RegExp(`(?:^|;)${service}Endpoint=([^;]+)`, 'i').exec(connectionString ?? '')?.[1];
    if (!endpoint) return fallback;
    try {
      const port = new URL(endpoint).port;
      return port ? Number(port) : fallback;
    } catch {
      return fallback;
    }
  };
  return {
    blob: portOf('Blob', DEFAULT_AZURITE_PORTS.blob),
    queue: portOf('Queue', DEFAULT_AZURITE_PORTS.queue),
    table: portOf('Table', DEFAULT_AZURITE_PORTS.table),
  };
}

/** Probes the ports Azurite will take, so a clash is reported as such instead of as an Azurite crash log. */
async function assertPortsFree(ports: AzuritePorts): Promise<void> {
  const taken: string[] = [];
  for (const [service, port] of Object.entries(ports)) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (!free) taken.push(`${port} (${service})`);
  }
  if (taken.length > 0) {
    const which = taken.length > 1 ? `Ports ${taken.join(', ')} are` : `Port ${taken.join(', ')} is`;
    throw new StartError(
      `${which} already in use, so Azurite cannot start. Another Azurite or \`npm start\` is probably ` +
        'running: stop it, or point the STORAGE_* settings of local.settings.json at other ports.',
    );
  }
}

class StartError extends Error {}

/** Provisions the demo tenant through the same queue function that handles `tenant.provisioned` events. */
async function provisionDemoTenant(
  services: Services,
  tenantId: string,
  countryCode: string,
): Promise<boolean> {
  const fn = functionRegistry.find(
    (candidate): candidate is QueueFunction =>
      candidate.kind === 'queue' && candidate.name === DEMO_EVENT_FUNCTION,
  );
  if (!fn) {
    log(
      'warning',
      `No queue function named ${DEMO_EVENT_FUNCTION} is registered; the demo tenant is not provisioned.`,
    );
    return false;
  }
  const deliver = (event: Record<string, unknown>) =>
    invokeQueue(
      fn,
      services,
      event,
      new InvocationContext({
        invocationId: randomUUID(),
        functionName: fn.name,
        triggerMetadata: { id: randomUUID(), dequeueCount: 1, insertionTime: new Date().toISOString() },
        logHandler: (level, ...args) => log(level, `[${fn.name}] ${format(...args)}`),
      }),
    );
  await deliver({
    type: 'tenant.provisioned',
    tenantId,
    eventId: 'demo-tenant-provisioned',
    countryCode,
    displayName: 'Contoso (demo)',
  });
  const now = new Date();
  const messages = demoRecordMessages(tenantId, now);
  for (const message of messages) await deliver(message);
  const records = demoRecordEvents(tenantId, now).length;
  log(
    'information',
    `Demo data: ${records} records of 3 people (adele.vance@contoso.com, ...) in ${messages.length} messages.`,
  );
  // An event the function refused went to the poison queue instead of throwing; say so rather than pretend.
  if (!(await services.directory.get(tenantId))) {
    log(
      'warning',
      `The demo tenant was not provisioned; see the queue ${fn.queueName}-poison for the reason.`,
    );
    return false;
  }
  return true;
}

async function main(): Promise<void> {
  let azurite: AzuriteInstance | undefined;
  let host: LocalHost | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (stopping) process.exit(code);
    stopping = true;
    try {
      await host?.stop();
    } catch (error) {
      log('error', `Stopping the local host failed: ${(error as Error).message}`);
    }
    try {
      await azurite?.stop();
    } catch (error) {
      log('error', `Stopping Azurite failed: ${(error as Error).message}`);
    }
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (!stopping) log('information', 'Stopping...');
      void stop(stopping ? 1 : 0);
    });
  }

  try {
    const root = repoRoot();
    const settings = loadLocalSettings(root);
    log('information', `Settings: ${settings.file ?? 'none found; using the environment only'}`);

    const { jwksPath } = await loadOrCreateDevKey(join(root, '.local'));
    if (!process.env.AUTH_JWKS_URI && !process.env.AUTH_JWKS_FILE) process.env.AUTH_JWKS_FILE = jwksPath;

    const ports = azuritePortsOf(process.env[storageSettingName('GLOBAL')]);
    await assertPortsFree(ports);
    azurite = await startAzurite({ location: join(root, '.azurite'), ports });
    log(
      'information',
      `Azurite: blob ${ports.blob}, queue ${ports.queue}, table ${ports.table} (data in .azurite/)`,
    );

    let services: Services;
    try {
      services = createServices(loadConfig());
    } catch (error) {
      if (error instanceof ConfigurationError) throw new StartError(error.message);
      throw error;
    }

    const demoTenant = process.env.LOCAL_DEMO_TENANT?.trim().toLowerCase() !== 'false';
    const tenantId = (
      process.env.LOCAL_DEMO_TENANT_ID ?? 'c0ffee00-0000-4000-8000-000000000001'
    ).toLowerCase();
    const provisioned =
      demoTenant && (await provisionDemoTenant(services, tenantId, process.env.LOCAL_DEMO_COUNTRY ?? 'DE'));

    const port = Number(process.env.LOCAL_HOST_PORT ?? '7071');
    host = new LocalHost({ functions: functionRegistry, services, port, log });
    log('information', 'Functions:');
    let baseUrl: string;
    try {
      ({ baseUrl } = await host.start());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new StartError(`Port ${port} is already in use; stop what uses it or set LOCAL_HOST_PORT.`);
      }
      throw error;
    }

    const example = provisioned ? tenantId : '<tenant-id>';
    console.log(
      [
        '',
        `Local host listening on ${baseUrl}/api (admin: POST ${baseUrl}/admin/functions/{name})`,
        provisioned
          ? `Demo tenant: ${tenantId} (Contoso (demo))`
          : 'No demo tenant (LOCAL_DEMO_TENANT=false or failed).',
        '',
        'Get a token:',
        `  npm run token -- --tenant ${example} --roles Privacy.Admin`,
        'Then, for example:',
        `  TOKEN=$(npm run --silent token -- --tenant ${example} --roles Privacy.Admin)`,
        `  curl -H "Authorization: Bearer $TOKEN" ${baseUrl}/api/tenants/${example}/dsr`,
        '',
        'Press Ctrl+C to stop.',
      ].join('\n'),
    );
  } catch (error) {
    console.error(error instanceof StartError ? error.message : error);
    await stop(1);
  }
}

void main();
