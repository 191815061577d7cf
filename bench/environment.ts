// What every scenario runs against: an in-memory Azurite of its own, the product's Services built by the
// composition root with local tenant key files in a temporary folder, and a request counter on all of it.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';

import { accountNameOf, type AzuriteInstance, startAzurite } from '../local/azurite';
import { createServices, type Services } from '../shared/composition';
import { loadConfig } from '../shared/config';
import { Pseudonymizer } from '../shared/crypto/pseudonymizer';
import type { Geography } from '../shared/vocabulary/geographies';
import type { TenantScope } from '../shared/residency/tenantDirectory';
import { TABLES } from '../shared/storage/names';
import { RawSeeder } from './rawSeeder';
import { RequestCounter } from './requestCounter';

export interface Bench {
  azurite: AzuriteInstance;
  counter: RequestCounter;
  services: Services;
  /** A new tenant entered in the directory (country decides the geography). */
  newTenant(countryCode: string): Promise<TenantScope>;
  /** A raw SDK Table client on a geography's account, counted like the product's. */
  rawTable(geography: Geography, table: string): Promise<TableClient>;
  /** A raw SDK Table service client on a geography's account (not counted: for checks only). */
  rawTables(geography: Geography): TableServiceClient;
  /** A raw SDK Blob service client on a geography's account. */
  rawBlobs(geography: Geography): BlobServiceClient;
  /** A seeder writing the product's record layout for a tenant (into the product's tables by default). */
  seeder(
    tenant: TenantScope,
    concurrency: number,
    tables?: { records: string; lookups: string; expiry: string },
  ): Promise<RawSeeder>;
  stop(): Promise<void>;
}

export async function startBench(): Promise<Bench> {
  const azurite = await startAzurite({});
  const keyFolder = await mkdtemp(join(tmpdir(), 'privacy-bench-keys-'));
  try {
    const counter = new RequestCounter(azurite.ports);
    const config = loadConfig({
      AUTH_AUDIENCE: 'api://privacy-data-service',
      AUTH_ISSUER_TEMPLATE: 'https://login.microsoftonline.com/{tenantid}/v2.0',
      AUTH_JWKS_URI: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
      KEY_FILE_FOLDER: keyFolder,
      ...azurite.storageSettings(),
    });
    const tablePolicies = [{ policy: counter.tablePolicy, position: 'perRetry' as const }];
    const services = createServices(config, { storage: { tablePolicies } });
    const connectionString = (geography: Geography) => azurite.connectionString(accountNameOf(geography));
    const rawTable = async (geography: Geography, table: string) => {
      const client = TableClient.fromConnectionString(connectionString(geography), table, {
        additionalPolicies: tablePolicies,
        allowInsecureConnection: true,
      });
      await client.createTable();
      return client;
    };
    return {
      azurite,
      counter,
      services,
      async newTenant(countryCode) {
        const { entry } = await services.directory.provision({
          tenantId: randomUUID(),
          countryCode,
          displayName: `Bench ${countryCode}`,
        });
        return services.directory.scopeOf(entry);
      },
      rawTable,
      rawTables: (geography) =>
        TableServiceClient.fromConnectionString(connectionString(geography), {
          allowInsecureConnection: true,
        }),
      rawBlobs: (geography) => BlobServiceClient.fromConnectionString(connectionString(geography)),
      async seeder(tenant, concurrency, tables) {
        // The pseudonymisation key is the tenant's own (one row in tenantSecrets), as RecordStore uses it.
        const pseudonymKey = await new Pseudonymizer().keyFor(tenant);
        const records = tables
          ? await rawTable(tenant.geography, tables.records)
          : await tenant.account.table(TABLES.records);
        const lookups = tables
          ? await rawTable(tenant.geography, tables.lookups)
          : await tenant.account.table(TABLES.recordLookup);
        const expiry = tables
          ? await rawTable(tenant.geography, tables.expiry)
          : await tenant.account.table(TABLES.expiry);
        return new RawSeeder(
          tenant.tenantId,
          pseudonymKey,
          tenant.keys,
          { records, lookups, expiry },
          concurrency,
        );
      },
      async stop() {
        await azurite.stop();
        await rm(keyFolder, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await azurite.stop();
    await rm(keyFolder, { recursive: true, force: true });
    throw error;
  }
}
