// Starts Azurite from its npm package with one storage account per geography plus the global one (and the
// development account the Functions host itself uses), and tells which ports it chose.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';

import { GEOGRAPHIES, type Geography } from '../shared/vocabulary/geographies';
import { storageSettingName } from '../shared/config';

/** Azurite's well-known development key; local accounts only. */
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const DEV_ACCOUNT = 'devstoreaccount1';

export const accountNameOf = (account: Geography | 'GLOBAL'): string => `privacy${account.toLowerCase()}`;

export interface AzuritePorts {
  blob: number;
  queue: number;
  table: number;
}

export interface AzuriteOptions {
  /** Data folder; omitted: in memory (tests). */
  location?: string;
  /** 0 lets the OS choose a free port. */
  ports?: AzuritePorts;
  /** Geographies to create accounts for; default all. */
  geographies?: readonly Geography[];
  log?: (line: string) => void;
}

export interface AzuriteInstance {
  ports: AzuritePorts;
  /** Its process (the bench reads its CPU time). */
  pid: number | undefined;
  connectionString(accountName: string): string;
  /** STORAGE_* settings pointing at this instance. */
  storageSettings(): Record<string, string>;
  stop(): Promise<void>;
}

export function azuriteConnectionString(
  accountName: string,
  ports: AzuritePorts,
  host = '127.0.0.1',
): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${accountName}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=http://${host}:${ports.blob}/${accountName}`,
    `QueueEndpoint=http://${host}:${ports.queue}/${accountName}`,
    `TableEndpoint=http://${host}:${ports.table}/${accountName}`,
  ].join(';');
}

export function azuriteStorageSettings(
  ports: AzuritePorts,
  geographies: readonly Geography[] = GEOGRAPHIES,
): Record<string, string> {
  const settings: Record<string, string> = {
    [storageSettingName('GLOBAL')]: azuriteConnectionString(accountNameOf('GLOBAL'), ports),
  };
  for (const geography of geographies) {
    settings[storageSettingName(geography)] = azuriteConnectionString(accountNameOf(geography), ports);
  }
  return settings;
}

const LISTENING = /Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/[^:]+:(\d+)/;

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteInstance> {
  const ports = options.ports ?? { blob: 0, queue: 0, table: 0 };
  const geographies = options.geographies ?? GEOGRAPHIES;
  const accounts = [DEV_ACCOUNT, accountNameOf('GLOBAL'), ...geographies.map(accountNameOf)];
  const args = [
    require.resolve('azurite/dist/src/azurite.js'),
    '--blobPort',
    String(ports.blob),
    '--queuePort',
    String(ports.queue),
    '--tablePort',
    String(ports.table),
    '--skipApiVersionCheck',
    '--disableProductStyleUrl',
    '--disableTelemetry',
    '--loose',
  ];
  if (options.location) {
    mkdirSync(options.location, { recursive: true });
    args.push('--location', options.location);
  } else {
    args.push('--inMemoryPersistence');
  }
  const child = spawn(process.execPath, args, {
    env: { ...process.env, AZURITE_ACCOUNTS: accounts.map((a) => `${a}:${AZURITE_KEY}`).join(';') },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches only us, and we stop Azurite after the host.
    detached: true,
  });
  // Should this process die without stopping it, Azurite goes with it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const chosen = await waitForPorts(child, options.log);
  return {
    ports: chosen,
    pid: child.pid,
    connectionString: (accountName) => azuriteConnectionString(accountName, chosen),
    storageSettings: () => azuriteStorageSettings(chosen, geographies),
    stop: () => stopChild(child),
  };
}

function waitForPorts(child: ChildProcess, log?: (line: string) => void): Promise<AzuritePorts> {
  return new Promise((resolve, reject) => {
    const found: Partial<AzuritePorts> = {};
    let output = '';
    const timer = setTimeout(() => fail(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      for (const line of text.split('\n')) {
        if (line.trim()) log?.(line.trim());
        const match = LISTENING.exec(line);
        if (match?.[1] && match[2]) found[match[1].toLowerCase() as keyof AzuritePorts] = Number(match[2]);
      }
      if (found.blob && found.queue && found.table) {
        clearTimeout(timer);
        resolve(found as AzuritePorts);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => fail(new Error(`Azurite exited with code ${code}:\n${output}`)));
    child.once('error', fail);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
