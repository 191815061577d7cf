// One storage account (the global one or a geography's): Table, Queue and Blob clients built once from
// configuration, with the service's tables, queues and containers created on first use.
import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import {
  BlobSASPermissions,
  BlobServiceClient,
  newPipeline as newBlobPipeline,
  type RequestPolicyFactory as BlobRequestPolicyFactory,
  type ContainerClient,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
  type UserDelegationKey,
} from '@azure/storage-blob';
import {
  newPipeline as newQueuePipeline,
  type QueueClient,
  QueueServiceClient,
  type RequestPolicyFactory as QueueRequestPolicyFactory,
} from '@azure/storage-queue';

import type { StorageAccountSetting } from '../config';
import { blobResidencyPolicy, tableResidencyPolicy, type WriteFence } from './residencyGuard';
import { guardedDeletePolicy } from './tableBatches';

export interface StorageClientOptions {
  /** Extra pipeline policies for Table clients (the benchmarks count requests with one). */
  tablePolicies?: TableServiceClientOptions['additionalPolicies'];
  /**
   * Extra request policies for Blob and Queue clients, outermost first (tests inject storage faults with
   * them; these SDKs take request policy factories, not pipeline policies).
   */
  blobPolicies?: BlobRequestPolicyFactory[];
  queuePolicies?: QueueRequestPolicyFactory[];
  /** Table retry timing (tests with injected faults shorten it; production keeps the SDK's). */
  tableRetry?: TableServiceClientOptions['retryOptions'];
  /** Blob and Queue retry timing, likewise. */
  blobRetry?: { retryDelayInMs: number; maxRetryDelayInMs: number };
}

let sharedCredential: TokenCredential | undefined;
const credential = (): TokenCredential => (sharedCredential ??= new DefaultAzureCredential());

/** User delegation keys are asked for this long, and renewed this long before they would expire. */
const DELEGATION_KEY_LIFETIME_MS = 60 * 60 * 1000;
const DELEGATION_KEY_RENEWAL_MS = 5 * 60 * 1000;
/** A key valid from slightly in the past still works on a server whose clock is behind ours. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export class StorageAccount {
  private readonly tables = new Map<string, TableClient>();
  private readonly queues = new Map<string, QueueClient>();
  private readonly containers = new Map<string, ContainerClient>();
  private readonly queueService: QueueServiceClient;
  private readonly blobService: BlobServiceClient;
  private readonly ensured = new Map<string, Promise<void>>();
  private delegationKey?: Promise<UserDelegationKey>;

  constructor(
    /** `GLOBAL` or a geography code; used in health reports and logs. */
    readonly label: string,
    private readonly setting: StorageAccountSetting,
    private readonly options: StorageClientOptions = {},
    /**
     * A geography account's residency guard: every Table and Blob write is checked against the fence before
     * it is sent (residencyGuard.ts). Omitted for the global account and for the residency mover's accounts.
     */
    private readonly fence?: WriteFence,
  ) {
    const queue =
      setting.kind === 'connectionString'
        ? QueueServiceClient.fromConnectionString(setting.connectionString)
        : new QueueServiceClient(base(setting, 'queue'), credential());
    const blob =
      setting.kind === 'connectionString'
        ? BlobServiceClient.fromConnectionString(setting.connectionString)
        : new BlobServiceClient(base(setting, 'blob'), credential());
    // Extra policies need a pipeline of our own, built with the same credential the SDK took.
    const signer = () =>
      setting.kind === 'connectionString' ? sharedKeyOf(setting.connectionString) : credential();
    const retryOptions = options.blobRetry ? { retryOptions: options.blobRetry } : {};
    this.queueService = options.queuePolicies?.length
      ? new QueueServiceClient(
          queue.url,
          withFactories(newQueuePipeline(signer(), retryOptions), options.queuePolicies),
        )
      : queue;
    const blobPolicies = [
      ...(fence ? [blobResidencyPolicy(fence, label, blob.url)] : []),
      ...(options.blobPolicies ?? []),
    ];
    this.blobService = blobPolicies.length
      ? new BlobServiceClient(blob.url, withFactories(newBlobPipeline(signer(), retryOptions), blobPolicies))
      : blob;
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

  /**
   * A read-only (`r`) SAS URL of one blob, valid until `expiresOn`. Signed with the account key when the
   * account is configured by connection string (http allowed only when the endpoint is http, as Azurite's
   * is), with a user delegation key under managed identity (https only).
   */
  async readOnlyBlobUrl(containerName: string, blobName: string, expiresOn: Date): Promise<string> {
    const blob = this.blobService.getContainerClient(containerName).getBlobClient(blobName);
    const values = { containerName, blobName, permissions: BlobSASPermissions.parse('r'), expiresOn };
    if (this.setting.kind === 'connectionString') {
      const key = this.blobService.credential;
      if (!(key instanceof StorageSharedKeyCredential)) {
        throw new Error(`Storage account ${this.label}: links need an account key in the connection string.`);
      }
      const protocol = blob.url.startsWith('http:') ? SASProtocol.HttpsAndHttp : SASProtocol.Https;
      return `${blob.url}?${generateBlobSASQueryParameters({ ...values, protocol }, key).toString()}`;
    }
    const key = await this.userDelegationKey(expiresOn);
    const sas = generateBlobSASQueryParameters(
      { ...values, protocol: SASProtocol.Https },
      key,
      this.setting.accountName,
    );
    return `${blob.url}?${sas.toString()}`;
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
      const options = {
        additionalPolicies: [
          ...(this.fence
            ? [{ policy: tableResidencyPolicy(this.fence, this.label), position: 'perCall' as const }]
            : []),
          ...(this.options.tablePolicies ?? []),
          { policy: guardedDeletePolicy, position: 'perCall' as const },
        ],
        allowInsecureConnection: true,
        ...(this.options.tableRetry ? { retryOptions: this.options.tableRetry } : {}),
      };
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

  /**
   * A user delegation key that outlives a link expiring at `linkExpiresOn`: one key serves every link until
   * shortly before it expires (a link is worthless after its key expires). Concurrent callers share a request.
   */
  private async userDelegationKey(linkExpiresOn: Date): Promise<UserDelegationKey> {
    const usable = (key: UserDelegationKey) =>
      key.signedExpiresOn.getTime() - DELEGATION_KEY_RENEWAL_MS >=
      Math.max(Date.now(), linkExpiresOn.getTime());
    const current = this.delegationKey;
    if (current) {
      const key = await current.catch(() => undefined);
      if (key && usable(key)) return key;
      // Another caller renewed it while this one waited: use theirs.
      if (this.delegationKey !== current) return this.userDelegationKey(linkExpiresOn);
    }
    const now = Date.now();
    const expiresOn = new Date(
      Math.max(now + DELEGATION_KEY_LIFETIME_MS, linkExpiresOn.getTime() + DELEGATION_KEY_RENEWAL_MS),
    );
    const pending = this.blobService.getUserDelegationKey(new Date(now - CLOCK_SKEW_MS), expiresOn);
    this.delegationKey = pending;
    pending.catch(() => {
      if (this.delegationKey === pending) this.delegationKey = undefined;
    });
    return pending;
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

const base = (setting: Extract<StorageAccountSetting, { kind: 'identity' }>, service: string) =>
  `https://${setting.accountName}.${service}.${setting.endpointSuffix}`;

/** The account key credential of a connection string (the Blob and Queue SDKs share the class). */
function sharedKeyOf(connectionString: string): StorageSharedKeyCredential {
  const parts = new Map(
    connectionString.split(';').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at), part.slice(at + 1)] as const;
    }),
  );
  const name = parts.get('AccountName');
  const key = parts.get('AccountKey');
  if (!name || !key)
    throw new Error('A connection string without AccountName and AccountKey cannot sign requests.');
  return new StorageSharedKeyCredential(name, key);
}

/** A Blob or Queue pipeline with extra request policies in front of the SDK's own (retries included). */
function withFactories<P extends { factories: F[] }, F>(pipeline: P, factories: readonly F[]): P {
  pipeline.factories.unshift(...factories);
  return pipeline;
}

function cached<T>(map: Map<string, T>, name: string, create: () => T): T {
  let value = map.get(name);
  if (value === undefined) {
    value = create();
    map.set(name, value);
  }
  return value;
}
