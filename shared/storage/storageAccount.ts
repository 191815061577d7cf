// One storage account (the global one or a geography's): Table, Queue and Blob clients built once from
// configuration, with the service's tables, queues and containers created on first use.
import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { type QueueClient, QueueServiceClient } from '@azure/storage-queue';

import type { StorageAccountSetting } from '../config';

export interface StorageClientOptions {
  /** Extra pipeline policies for Table clients (the benchmarks count requests with one). */
  tablePolicies?: TableServiceClientOptions['additionalPolicies'];
}

let sharedCredential: TokenCredential | undefined;
const credential = (): TokenCredential => (sharedCredential ??= new DefaultAzureCredential());

export class StorageAccount {
  private readonly tables = new Map<string, TableClient>();
  private readonly queues = new Map<string, QueueClient>();
  private readonly containers = new Map<string, ContainerClient>();
  private readonly queueService: QueueServiceClient;
  private readonly blobService: BlobServiceClient;
  private readonly ensured = new Map<string, Promise<void>>();

  constructor(
    /** `GLOBAL` or a geography code; used in health reports and logs. */
    readonly label: string,
    private readonly setting: StorageAccountSetting,
    private readonly options: StorageClientOptions = {},
  ) {
    if (setting.kind === 'connectionString') {
      this.queueService = QueueServiceClient.fromConnectionString(setting.connectionString);
      this.blobService = BlobServiceClient.fromConnectionString(setting.connectionString);
    } else {
      const base = (service: string) => `https://${setting.accountName}.${service}.${setting.endpointSuffix}`;
      this.queueService = new QueueServiceClient(base('queue'), credential());
      this.blobService = new BlobServiceClient(base('blob'), credential());
    }
  }

  /** A Table client for one table of this account; the table is created on first use. */
  async table(name: string): Promise<TableClient> {
    const client = this.tableClient(name);
    await this.once(`table:${name}`, () => client.createTable());
    return client;
  }

  /** A Queue client for one queue of this account; the queue is created on first use. */
  async queue(name: string): Promise<QueueClient> {
    const client = cached(this.queues, name, () => this.queueService.getQueueClient(name));
    await this.once(`queue:${name}`, () => client.createIfNotExists());
    return client;
  }

  /** A Blob container client of this account; the container is created on first use. */
  async container(name: string): Promise<ContainerClient> {
    const client = cached(this.containers, name, () => this.blobService.getContainerClient(name));
    await this.once(`container:${name}`, () => client.createIfNotExists());
    return client;
  }

  /** Round trip to the Table service; used by the health report. */
  async ping(): Promise<void> {
    const iterator = this.tableClient('tenants').listEntities({ queryOptions: { select: ['PartitionKey'] } });
    try {
      await iterator.byPage({ maxPageSize: 1 }).next();
    } catch (error) {
      // A table that does not exist yet still proves the account answers.
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }

  private tableClient(name: string): TableClient {
    return cached(this.tables, name, () => {
      const options = { additionalPolicies: this.options.tablePolicies, allowInsecureConnection: true };
      return this.setting.kind === 'connectionString'
        ? TableClient.fromConnectionString(this.setting.connectionString, name, options)
        : new TableClient(
            `https://${this.setting.accountName}.table.${this.setting.endpointSuffix}`,
            name,
            credential(),
            options,
          );
    });
  }

  /** Runs a creation once per process; a failure is forgotten so the next call tries again. */
  private once(key: string, create: () => Promise<unknown>): Promise<void> {
    let pending = this.ensured.get(key);
    if (!pending) {
      pending = create().then(
        () => undefined,
        (error: unknown) => {
          this.ensured.delete(key);
          throw error;
        },
      );
      this.ensured.set(key, pending);
    }
    return pending;
  }
}

function cached<T>(map: Map<string, T>, name: string, create: () => T): T {
  let value = map.get(name);
  if (value === undefined) {
    value = create();
    map.set(name, value);
  }
  return value;
}
