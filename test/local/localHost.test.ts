import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import type { InvocationContext, Timer } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';

import { type HostSettings, LocalHost, nextOccurrence, readHostSettings } from '../../local/localHost';
import type { Services } from '../../shared/composition';
import type {
  FunctionDefinition,
  HttpFunction,
  QueueFunction,
  TimerFunction,
} from '../../shared/hosting/functionDefinition';
import { type PoisonedMessage, PoisonQueue } from '../../shared/hosting/queueFailures';
import { poisonQueueOf } from '../../shared/storage/names';
import { decodeMessage, encodeMessage } from '../../shared/storage/queueMessages';
import { testStorage } from '../support/testStorage';

const storage = testStorage();
const services = {
  storage,
  poison: new PoisonQueue(storage.global, () => new Date()),
} as unknown as Services;
/** Short waits so redeliveries happen in milliseconds rather than host.json's seconds. */
const FAST: Partial<HostSettings> = {
  minPollingIntervalMs: 20,
  maxPollingIntervalMs: 100,
  visibilityTimeoutSeconds: 0,
};

const hosts: LocalHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.stop()));
});

async function startHost(
  functions: FunctionDefinition[],
  options: { settings?: Partial<HostSettings>; env?: NodeJS.ProcessEnv } = {},
) {
  const log: string[] = [];
  const host = new LocalHost({
    functions,
    services,
    port: 0,
    log: (level, message) => log.push(`${level}: ${message}`),
    settings: { ...FAST, ...options.settings },
    ...(options.env ? { env: options.env } : {}),
  });
  hosts.push(host);
  const { baseUrl } = await host.start();
  return { host, baseUrl, log };
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const uniqueQueue = () => `local-host-${randomUUID().slice(0, 8)}`;
const messageCount = async (queue: QueueClient) =>
  (await queue.getProperties()).approximateMessagesCount ?? 0;

/** An HTTP function whose GET answers with its own name and the route parameters it received. */
const echoRoute = (name: string, route: string): HttpFunction => ({
  kind: 'http',
  name,
  route,
  operations: {
    GET: {
      operationId: name,
      summary: name,
      access: { kind: 'public' },
      responses: [],
      handle: async ({ request }) => ({ status: 200, body: { fn: name, params: request.params } }),
    },
  },
});

/** An HTTP function whose GET answers the stream `open()` returns, as a package download does. */
const streamRoute = (name: string, route: string, open: () => Readable): HttpFunction => ({
  kind: 'http',
  name,
  route,
  operations: {
    GET: {
      operationId: name,
      summary: name,
      access: { kind: 'public' },
      responses: [],
      handle: async () => ({ status: 200, headers: { 'content-type': 'application/zip' }, body: open() }),
    },
  },
});

const PACKAGE_CHUNK_BYTES = 64 * 1024;

/**
 * A package that exists only as it is read: each chunk is made when the stream asks for it, and hashed, so
 * `produced` says how far the reader has pulled. With `failAfter` it breaks after that many chunks.
 */
class LazyPackage extends Readable {
  produced = 0;
  private readonly hash = createHash('sha256');

  constructor(
    readonly chunks: number,
    private readonly failAfter?: number,
  ) {
    super();
  }

  override _read(): void {
    if (this.produced === this.failAfter) {
      this.destroy(new Error('The package blob could not be read.'));
    } else if (this.produced === this.chunks) {
      this.push(null);
    } else {
      const chunk = randomBytes(PACKAGE_CHUNK_BYTES);
      this.hash.update(chunk);
      this.produced++;
      this.push(chunk);
    }
  }

  /** SHA-256 of everything produced; call once, after the end. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Reads a fetch body chunk by chunk, hashing it; `onChunk` sees each chunk as it arrives. */
async function readBodyHashing(response: Response, onChunk: (chunk: Uint8Array) => void = () => undefined) {
  const hash = createHash('sha256');
  let bytes = 0;
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes, sha256: hash.digest('hex') };
    onChunk(value);
    hash.update(value);
    bytes += value.length;
  }
}

const timerFunction = (name: string, schedule: string, run: TimerFunction['run']): TimerFunction => ({
  kind: 'timer',
  name,
  schedule,
  run,
});

const queueFunction = (queueName: string, handle: QueueFunction['handle'], connection = 'STORAGE_GLOBAL') =>
  ({ kind: 'queue', name: `consume-${queueName}`, queueName, connection, handle }) satisfies QueueFunction;

describe('LocalHost HTTP', () => {
  it('routes to the matching template with decoded parameters, ignoring the case of literals', async () => {
    const { baseUrl } = await startHost([
      echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}'),
      echoRoute('dsrApprove', 'tenants/{tenantId}/dsr/{requestId}/approve'),
      echoRoute('dsrExport', 'tenants/{tenantId}/dsr/export'),
    ]);
    const get = async (path: string) => (await fetch(`${baseUrl}${path}`)).json();

    expect(await get('/api/tenants/T1/dsr/r%201')).toEqual({
      fn: 'dsrRead',
      params: { tenantId: 'T1', requestId: 'r 1' },
    });
    expect(await get('/API/Tenants/T1/DSR/r1/Approve')).toEqual({
      fn: 'dsrApprove',
      params: { tenantId: 'T1', requestId: 'r1' },
    });
    expect(await get('/api/tenants/T1/dsr/r1/')).toMatchObject({ fn: 'dsrRead' });
  });

  it('prefers the template with more literal segments over an earlier registered one', async () => {
    const { baseUrl } = await startHost([
      echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}'),
      echoRoute('dsrExport', 'tenants/{tenantId}/dsr/export'),
    ]);
    expect(await (await fetch(`${baseUrl}/api/tenants/T1/dsr/EXPORT`)).json()).toEqual({
      fn: 'dsrExport',
      params: { tenantId: 'T1' },
    });
    expect(await (await fetch(`${baseUrl}/api/tenants/T1/dsr/exports`)).json()).toMatchObject({
      fn: 'dsrRead',
    });
  });

  it('answers an unknown path with 404 NotFound in the error shape and an x-request-id', async () => {
    const { baseUrl } = await startHost([echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}')]);
    for (const path of [
      '/api/nothing',
      '/api/tenants/T1/dsr/r1/approve/extra',
      '/api/tenants/T1/dsr',
      '/elsewhere',
    ]) {
      const response = await fetch(`${baseUrl}${path}`);
      expect(response.status).toBe(404);
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(await response.json()).toEqual({ error: { code: 'NotFound', message: expect.any(String) } });
    }
  });

  it('hands the function method, headers, query and body, and returns its status, headers and body', async () => {
    const things: HttpFunction = {
      kind: 'http',
      name: 'things',
      route: 'things/{thingId}',
      operations: {
        POST: {
          operationId: 'createThing',
          summary: 'Create a thing',
          access: { kind: 'public' },
          params: z.object({ thingId: z.string() }),
          body: z.object({ name: z.string() }),
          responses: [],
          handle: async ({ request, body, params }) => ({
            status: 201,
            headers: { location: `/api/things/${String(request.params.thingId)}`, 'x-echo': 'yes' },
            body: {
              method: request.method,
              header: request.headers.get('x-custom'),
              query: request.query.getAll('tag'),
              params,
              body,
            },
          }),
        },
      },
    };
    const { baseUrl } = await startHost([things]);

    const response = await fetch(`${baseUrl}/api/things/t-1?tag=a&tag=b`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'hello', 'x-request-id': 'client-42' },
      body: JSON.stringify({ name: 'lamp' }),
    });

    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe('/api/things/t-1');
    expect(response.headers.get('x-echo')).toBe('yes');
    expect(response.headers.get('x-request-id')).toBe('client-42');
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      method: 'POST',
      header: 'hello',
      query: ['a', 'b'],
      params: { thingId: 't-1' },
      body: { name: 'lamp' },
    });

    const wrongMethod = await fetch(`${baseUrl}/api/things/t-1`);
    expect(wrongMethod.status).toBe(405);
    expect(await wrongMethod.json()).toMatchObject({ error: { code: 'MethodNotAllowed' } });
  });

  it('lets the edge refuse a body over 64 KiB with 413, even one larger than the host buffers', async () => {
    const upload: HttpFunction = {
      kind: 'http',
      name: 'upload',
      route: 'upload',
      operations: {
        POST: {
          operationId: 'upload',
          summary: 'Upload',
          access: { kind: 'public' },
          body: z.object({ data: z.string() }),
          responses: [],
          handle: async () => ({ status: 204 }),
        },
      },
    };
    const { baseUrl } = await startHost([upload]);
    for (const size of [70 * 1024, 2 * 1024 * 1024]) {
      const response = await fetch(`${baseUrl}/api/upload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: 'x'.repeat(size) }),
      });
      expect(response.status).toBe(413);
      expect(await response.json()).toMatchObject({ error: { code: 'PayloadTooLarge' } });
    }
  });
});

describe('LocalHost streamed responses', () => {
  it("sends every byte of a 16 MB stream body in order, chunked, with the handler's headers", async () => {
    let sent!: LazyPackage;
    const { baseUrl } = await startHost([
      streamRoute('packageDownload', 'packages/{packageId}', () => (sent = new LazyPackage(256))),
    ]);

    const response = await fetch(`${baseUrl}/api/packages/p-1`);
    const received = await readBodyHashing(response);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/zip');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('content-length')).toBeNull();
    expect(response.headers.get('transfer-encoding')).toBe('chunked');
    expect(received).toEqual({ bytes: 256 * PACKAGE_CHUNK_BYTES, sha256: sent.digest() });
  });

  it('delivers the headers and a first body chunk before the stream has produced its last chunk', async () => {
    let sent!: LazyPackage;
    const { baseUrl } = await startHost([
      streamRoute('packageDownload', 'packages/{packageId}', () => (sent = new LazyPackage(256))),
    ]);

    const response = await fetch(`${baseUrl}/api/packages/p-1`);
    const producedAtHeaders = sent.produced;
    let producedAtFirstChunk: number | undefined;
    await readBodyHashing(response, () => {
      producedAtFirstChunk ??= sent.produced;
    });

    expect(producedAtHeaders).toBeLessThan(sent.chunks);
    expect(producedAtFirstChunk).toBeLessThan(sent.chunks);
    expect(sent.produced).toBe(sent.chunks);
  });

  it('breaks the connection when the stream body fails after the headers, so the client read fails', async () => {
    const { baseUrl, log } = await startHost([
      streamRoute('packageDownload', 'packages/{packageId}', () => new LazyPackage(256, 20)),
    ]);

    const response = await fetch(`${baseUrl}/api/packages/p-1`);

    expect(response.status).toBe(200);
    await expect(readBodyHashing(response)).rejects.toThrow();
    expect(log).toContainEqual(expect.stringMatching(/^error: .*The package blob could not be read\./));
  });

  it('still sends a JSON body whole, with its content-length', async () => {
    const { baseUrl } = await startHost([echoRoute('dsrRead', 'tenants/{tenantId}/dsr/{requestId}')]);

    const response = await fetch(`${baseUrl}/api/tenants/T1/dsr/r1`);
    const text = await response.text();

    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(response.headers.get('transfer-encoding')).toBeNull();
    expect(JSON.parse(text)).toEqual({ fn: 'dsrRead', params: { tenantId: 'T1', requestId: 'r1' } });
  });
});

describe('LocalHost admin endpoint', () => {
  const post = (baseUrl: string, name: string, body?: unknown) =>
    fetch(`${baseUrl}/admin/functions/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('runs a timer function at once with a Timer like the Azure host passes, and answers 202', async () => {
    const timers: Timer[] = [];
    const { baseUrl } = await startHost([
      timerFunction('yearlyReport', '0 0 0 1 1 *', async (_services, timer) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        timers.push(timer);
      }),
    ]);

    const response = await post(baseUrl, 'YearlyReport', {});

    expect(response.status).toBe(202);
    // The run has finished when the answer comes.
    expect(timers).toHaveLength(1);
    expect(timers[0]).toMatchObject({ isPastDue: false, schedule: { adjustForDST: false } });
    expect(timers[0]!.scheduleStatus.next).toMatch(/-01-01T00:00:00\.000Z$/);
  });

  it('runs a queue function with the input as its message: JSON when it parses, the text otherwise', async () => {
    const received: { message: unknown; dequeueCount: unknown }[] = [];
    const fn = queueFunction(uniqueQueue(), async (_services, message, context) => {
      received.push({ message, dequeueCount: context.triggerMetadata?.dequeueCount });
    });
    const { baseUrl } = await startHost([fn]);

    expect((await post(baseUrl, fn.name, { input: '{"type":"ping","n":1}' })).status).toBe(202);
    expect((await post(baseUrl, fn.name, { input: 'plain text' })).status).toBe(202);

    expect(received).toEqual([
      { message: { type: 'ping', n: 1 }, dequeueCount: 1 },
      { message: 'plain text', dequeueCount: 1 },
    ]);
  });

  it('answers 500 in the error shape when the function throws', async () => {
    const fn = queueFunction(uniqueQueue(), async () => {
      throw new Error('boom');
    });
    const { baseUrl } = await startHost([fn]);

    const response = await post(baseUrl, fn.name, { input: '{}' });

    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: { code: 'Internal', message: expect.any(String) } });
  });

  it('answers 404 for an unknown name and for an HTTP function', async () => {
    const { baseUrl } = await startHost([echoRoute('health', 'health')]);
    for (const name of ['nothing', 'health']) {
      const response = await post(baseUrl, name, {});
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: 'NotFound' } });
    }
  });
});

describe('LocalHost timers', () => {
  it('runs a timer on its schedule', async () => {
    const timers: Timer[] = [];
    await startHost([
      timerFunction('everySecond', '* * * * * *', async (_services, timer) => void timers.push(timer)),
    ]);

    await waitFor(() => timers.length >= 2, 'two scheduled runs', 5_000);

    expect(timers[0]).toMatchObject({ isPastDue: false, scheduleStatus: { last: '0001-01-01T00:00:00' } });
    // As on the Azure host, a run sees its own occurrence as `next` and the previous run's as `last`.
    expect(timers[1]!.scheduleStatus.last).toBe(timers[0]!.scheduleStatus.next);
    expect(Date.parse(timers[1]!.scheduleStatus.next) - Date.parse(timers[0]!.scheduleStatus.next)).toBe(
      1000,
    );
  });
});

describe('LocalHost queues', () => {
  it('consumes a base64 message, hands over its metadata, and deletes it', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const received: { message: unknown; metadata: Record<string, unknown> }[] = [];
    await startHost([
      queueFunction(queueName, async (_services, message, context: InvocationContext) => {
        received.push({ message, metadata: context.triggerMetadata ?? {} });
      }),
    ]);

    const sent = await queue.sendMessage(encodeMessage({ type: 'ping', n: 1 }));
    await queue.sendMessage(Buffer.from('not json', 'utf8').toString('base64'));
    await waitFor(() => received.length === 2, 'both messages');
    await waitFor(async () => (await messageCount(queue)) === 0, 'the messages to be deleted');

    const json = received.find((r) => r.metadata.id === sent.messageId);
    expect(json?.message).toEqual({ type: 'ping', n: 1 });
    expect(json?.metadata).toEqual({
      id: sent.messageId,
      dequeueCount: 1,
      insertionTime: sent.insertedOn.toISOString(),
      expirationTime: sent.expiresOn.toISOString(),
      nextVisibleTime: expect.any(String),
      popReceipt: expect.any(String),
    });
    expect(received.map((r) => r.message)).toContain('not json');
  });

  it('delivers a message that keeps failing 5 times, after which it is in <queue>-poison with the reason', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const poison = await storage.global.queue(poisonQueueOf(queueName));
    const deliveries: unknown[] = [];
    await startHost([
      queueFunction(queueName, async (_services, _message, context) => {
        deliveries.push(context.triggerMetadata?.dequeueCount);
        throw new Error('storage is on fire');
      }),
    ]);

    await queue.sendMessage(encodeMessage({ type: 'ping', n: 2 }));
    await waitFor(
      async () => (await poison.peekMessages()).peekedMessageItems.length > 0,
      'the poison message',
    );

    expect(deliveries).toEqual([1, 2, 3, 4, 5]);
    const [item] = (await poison.peekMessages()).peekedMessageItems;
    expect(decodeMessage(item!.messageText)).toMatchObject({
      queue: queueName,
      reason: 'Failed 5 times: storage is on fire',
      dequeueCount: 5,
      message: { type: 'ping', n: 2 },
    } satisfies Partial<PoisonedMessage>);
    await waitFor(async () => (await messageCount(queue)) === 0, 'the message to leave the queue');
  });

  it('copies the original text to <queue>-poison itself when host.json allows fewer deliveries', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const poison = await storage.global.queue(poisonQueueOf(queueName));
    let deliveries = 0;
    const { log } = await startHost(
      [
        queueFunction(queueName, async () => {
          deliveries++;
          throw new Error('no');
        }),
      ],
      { settings: { maxDequeueCount: 2 } },
    );

    const text = encodeMessage({ type: 'ping', n: 3 });
    await queue.sendMessage(text);
    await waitFor(
      async () => (await poison.peekMessages()).peekedMessageItems.length > 0,
      'the poison message',
    );

    expect(deliveries).toBe(2);
    expect((await poison.peekMessages()).peekedMessageItems[0]?.messageText).toBe(text);
    await waitFor(async () => (await messageCount(queue)) === 0, 'the message to leave the queue');
    expect(log.some((line) => line.startsWith('warning: host.json maxDequeueCount is 2'))).toBe(true);
  });

  it('runs at most batchSize messages of a queue at once', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    let running = 0;
    let mostAtOnce = 0;
    let done = 0;
    await startHost(
      [
        queueFunction(queueName, async () => {
          mostAtOnce = Math.max(mostAtOnce, ++running);
          await new Promise((resolve) => setTimeout(resolve, 150));
          running--;
          done++;
        }),
      ],
      { settings: { batchSize: 4, newBatchThreshold: 2 } },
    );

    await Promise.all(Array.from({ length: 12 }, (_, n) => queue.sendMessage(encodeMessage({ n }))));
    await waitFor(() => done === 12, 'all twelve messages');

    expect(mostAtOnce).toBeGreaterThan(1);
    expect(mostAtOnce).toBeLessThanOrEqual(4);
  });

  it('consumes a queue whose connection is an app setting holding a connection string', async () => {
    const queueName = uniqueQueue();
    const connectionString = process.env.STORAGE_EU!;
    const queue = new QueueClient(connectionString, queueName);
    await queue.createIfNotExists();
    const received: unknown[] = [];
    await startHost(
      [queueFunction(queueName, async (_services, message) => void received.push(message), 'OTHER_STORAGE')],
      { env: { OTHER_STORAGE: connectionString } },
    );

    await queue.sendMessage(encodeMessage({ account: 'eu' }));

    await waitFor(() => received.length === 1, 'the message');
    expect(received).toEqual([{ account: 'eu' }]);
  });

  it('keeps a message invisible while its function runs longer than the lease', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const deliveries: unknown[] = [];
    await startHost(
      [
        queueFunction(queueName, async (_services, _message, context) => {
          deliveries.push(context.triggerMetadata?.dequeueCount);
          await new Promise((resolve) => setTimeout(resolve, 2_200));
        }),
      ],
      { settings: { leaseSeconds: 1 } },
    );

    await queue.sendMessage(encodeMessage({ slow: true }));
    await waitFor(
      async () => deliveries.length > 0 && (await messageCount(queue)) === 0,
      'the message to be done',
    );

    expect(deliveries).toEqual([1]);
  });

  it('finishes a running invocation before stop() resolves', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    let started = false;
    let finished = false;
    const { host } = await startHost([
      queueFunction(queueName, async () => {
        started = true;
        await new Promise((resolve) => setTimeout(resolve, 300));
        finished = true;
      }),
    ]);
    await queue.sendMessage(encodeMessage({ slow: true }));
    await waitFor(() => started, 'the invocation to start');

    await host.stop();

    expect(finished).toBe(true);
    expect(await messageCount(queue)).toBe(0);
  });
});

describe('nextOccurrence', () => {
  const next = (schedule: string, after: string) => nextOccurrence(schedule, new Date(after)).toISOString();

  it('runs 0 0 2 * * * at 02:00 UTC, across month, leap-day and year ends', () => {
    expect(next('0 0 2 * * *', '2024-01-31T02:00:00.000Z')).toBe('2024-02-01T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2024-02-28T03:00:00.000Z')).toBe('2024-02-29T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2024-02-29T02:00:00.001Z')).toBe('2024-03-01T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2024-04-30T01:59:59.999Z')).toBe('2024-04-30T02:00:00.000Z');
    expect(next('0 0 2 * * *', '2023-12-31T23:00:00.000Z')).toBe('2024-01-01T02:00:00.000Z');
  });

  it('runs 0 */5 * * * * every five minutes, into the next month and year', () => {
    expect(next('0 */5 * * * *', '2024-04-30T23:58:30.000Z')).toBe('2024-05-01T00:00:00.000Z');
    expect(next('0 */5 * * * *', '2023-12-31T23:55:00.000Z')).toBe('2024-01-01T00:00:00.000Z');
    expect(next('0 */5 * * * *', '2024-02-29T23:50:00.000Z')).toBe('2024-02-29T23:55:00.000Z');
  });

  it('requires both the day and the day of week when a schedule restricts both, as NCrontab does', () => {
    // Friday the 13th, not every Friday and every 13th.
    expect(next('0 0 0 13 * 5', '2024-01-01T00:00:00.000Z')).toBe('2024-09-13T00:00:00.000Z');
  });

  it('refuses a schedule without the seconds field', () => {
    expect(() => nextOccurrence('0 2 * * *', new Date())).toThrow(/six fields/);
  });
});

describe('readHostSettings', () => {
  it('reads the queue settings of host.json as time spans, with the host defaults for the rest', () => {
    const folder = mkdtempSync(join(tmpdir(), 'host-json-'));
    const path = join(folder, 'host.json');
    writeFileSync(
      path,
      JSON.stringify({
        extensions: {
          queues: { maxPollingInterval: '00:00:02.5', visibilityTimeout: '1.00:00:01', batchSize: 8 },
        },
      }),
    );

    expect(readHostSettings(path)).toMatchObject({
      routePrefix: 'api',
      maxPollingIntervalMs: 2500,
      visibilityTimeoutSeconds: 86_401,
      batchSize: 8,
      newBatchThreshold: 4,
      maxDequeueCount: 5,
    });
  });
});
