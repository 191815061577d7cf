// End-to-end harness: the local host serving the real function registry on a free port, against the test
// Azurite, trusting a key made for this run. Tenants are provisioned over the queue, as in production.
import { randomUUID } from 'node:crypto';

import { functionRegistry } from '../../functions/registry';
import { LocalHost } from '../../local/localHost';
import { createServices, type Services } from '../../shared/composition';
import { QUEUES } from '../../shared/storage/names';
import { sendJson } from '../../shared/storage/queueMessages';
import { testConfig } from './testStorage';
import { createTestIssuer, type TestIssuer } from './tokens';

export interface TestHost {
  baseUrl: string;
  services: Services;
  issuer: TestIssuer;
  /** Puts `tenant.provisioned` on the queue and waits until the host has processed it. */
  provisionTenant(countryCode?: string, tenantId?: string): Promise<string>;
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  stop(): Promise<void>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Raw body text; sent as is. */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface TestHostOptions {
  /** Extra settings (RESIDENCY_FENCE_SECONDS, ...). */
  env?: Record<string, string>;
  /** Settings to leave out (STORAGE_CH: a geography not open yet). */
  omit?: readonly string[];
  migrationSliceMs?: number;
  /** The services' clock (tokens are still checked against real time). */
  clock?: () => Date;
}

export async function startTestHost(options: TestHostOptions = {}): Promise<TestHost> {
  const issuer = await createTestIssuer();
  const services = createServices(
    testConfig({ AUTH_JWKS_FILE: issuer.jwksPath, ...options.env }, options.omit),
    {
      ...(options.migrationSliceMs !== undefined ? { migrationSliceMs: options.migrationSliceMs } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    },
  );
  const host = new LocalHost({ functions: functionRegistry, services, port: 0, log: () => undefined });
  const { baseUrl } = await host.start();

  const call = async (method: string, path: string, options: CallOptions = {}): Promise<CallResult> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(new URL(path, baseUrl), {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed };
  };

  const provisionTenant = async (countryCode = 'DE', tenantId: string = randomUUID()): Promise<string> => {
    const queue = await services.storage.global.queue(QUEUES.personalDataEvents);
    await sendJson(queue, {
      type: 'tenant.provisioned',
      tenantId,
      eventId: `provision-${tenantId}`,
      countryCode,
      displayName: `Tenant ${tenantId.slice(0, 8)}`,
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (await services.directory.get(tenantId)) return tenantId;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`Tenant ${tenantId} was not provisioned within 20 s`);
  };

  return { baseUrl, services, issuer, provisionTenant, call, stop: () => host.stop() };
}
