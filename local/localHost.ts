// The local Functions host: serves the registry's HTTP functions under /api, runs its timers on their NCRONTAB
// schedules and consumes its queues with the Azure host's semantics, always through shared/hosting/invoke.ts.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { format } from 'node:util';

import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';

import type { Services } from '../shared/composition';
import { storageSettingName } from '../shared/config';
import { DomainError } from '../shared/errors';
import type { FunctionDefinition, HttpFunction, QueueFunction } from '../shared/hosting/functionDefinition';
import { invokeHttp, invokeQueue, invokeTimer } from '../shared/hosting/invoke';
import { MAX_DEQUEUE_COUNT } from '../shared/hosting/queueFailures';
import { HTTP_METHODS } from '../shared/http/apiOperation';
import { errorResponse } from '../shared/http/errorResponse';
import { GEOGRAPHIES } from '../shared/vocabulary/geographies';
import { consoleLog, describeError, type HostLog } from './hostLog';
import { type HostSettings, readHostSettings } from './hostSettings';
import { headersOf, readBody, writeResponse } from './httpExchange';
import { QueueListener } from './queueListener';
import { joinPath, pathSegments, RouteTable, safeDecode } from './routeTable';
import { repoRoot } from './settings';
import { nextOccurrence, TimerSchedules } from './timers';

export interface LocalHostOptions {
  functions: readonly FunctionDefinition[];
  services: Services;
  /** 0 lets the OS choose a free port. */
  port: number;
  /** Interface to listen on; default 127.0.0.1 (what `localhost` reaches). */
  hostname?: string;
  log?: HostLog;
  /** Overrides of host.json (tests shorten the queue waits). */
  settings?: Partial<HostSettings>;
  /** Default: host.json at the repository root. */
  hostJsonPath?: string;
  /** Where queue connections that are not a configured storage account are looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
}

const ROUTED_METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);

export class LocalHost {
  private readonly settings: HostSettings;
  private readonly log: HostLog;
  private readonly routes: RouteTable;
  private readonly timers: TimerSchedules;
  private readonly byName = new Map<string, FunctionDefinition>();
  private readonly listeners: QueueListener[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();

  private server?: Server;
  private baseUrl = '';
  private stopping?: Promise<void>;

  constructor(private readonly options: LocalHostOptions) {
    this.log = options.log ?? consoleLog;
    this.settings = {
      ...readHostSettings(options.hostJsonPath ?? join(repoRoot(), 'host.json')),
      ...options.settings,
    };
    if (this.settings.maxDequeueCount !== MAX_DEQUEUE_COUNT) {
      this.log(
        'warning',
        `host.json maxDequeueCount is ${this.settings.maxDequeueCount} but invokeQueue poisons after ` +
          `${MAX_DEQUEUE_COUNT} deliveries; messages may reach <queue>-poison without a reason.`,
      );
    }
    // Fail at start-up, as the Azure host does when indexing, rather than on the first request or tick.
    for (const fn of options.functions) {
      const key = fn.name.toLowerCase();
      if (this.byName.has(key)) throw new Error(`Two functions are named ${fn.name}.`);
      this.byName.set(key, fn);
      if (fn.kind === 'timer') nextOccurrence(fn.schedule, new Date());
    }
    this.routes = new RouteTable(options.functions.filter((fn): fn is HttpFunction => fn.kind === 'http'));
    this.timers = new TimerSchedules(
      (fn, timer) => invokeTimer(fn, this.options.services, timer, this.context(fn, 'timerTrigger')),
      this.log,
      (run) => void this.track(run),
    );
  }

  async start(): Promise<{ baseUrl: string }> {
    if (this.server) throw new Error('The local host is already started.');
    const server = createServer((req, res) => void this.track(this.serve(req, res)));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.hostname ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.baseUrl = `http://localhost:${(server.address() as AddressInfo).port}`;

    for (const fn of this.options.functions) {
      switch (fn.kind) {
        case 'http':
          this.log(
            'information',
            `  ${fn.name}: ${this.baseUrl}/${joinPath(this.settings.routePrefix, fn.route)}`,
          );
          break;
        case 'timer':
          this.log('information', `  ${fn.name}: timer (${fn.schedule})`);
          this.timers.start(fn);
          break;
        case 'queue': {
          this.log('information', `  ${fn.name}: queue ${fn.queueName} (${fn.connection})`);
          const listener = new QueueListener(
            fn,
            this.settings,
            this.log,
            (name) => this.openQueue(fn, name),
            (m, t) => this.track(this.runQueueFunction(fn, m, t)),
          );
          this.listeners.push(listener);
          listener.start();
          break;
        }
      }
    }
    return { baseUrl: this.baseUrl };
  }

  /** Stops taking work (HTTP, timers, queue polls), lets running invocations finish, then closes the server. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.timers.stop();
      const server = this.server;
      const closed = server
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
      await Promise.all(this.listeners.map((listener) => listener.stop()));
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      server?.closeAllConnections();
      await closed;
    })();
    return this.stopping;
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    const forget = () => this.inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  private context(fn: FunctionDefinition, trigger: string, triggerMetadata?: Record<string, unknown>) {
    return new InvocationContext({
      invocationId: randomUUID(),
      functionName: fn.name,
      ...(triggerMetadata ? { triggerMetadata } : {}),
      logHandler: (level, ...args) => this.log(level, `[${fn.name}] ${format(...args)}`),
      options: { trigger: { type: trigger, name: trigger === 'httpTrigger' ? 'request' : 'trigger' } },
    });
  }

  // ---- HTTP -------------------------------------------------------------------------------------------------

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    try {
      const url = new URL(req.url ?? '/', this.baseUrl);
      const segments = pathSegments(url.pathname);
      if (
        segments.length === 3 &&
        segments[0]?.toLowerCase() === 'admin' &&
        segments[1]?.toLowerCase() === 'functions'
      ) {
        await writeResponse(res, await this.serveAdmin(safeDecode(segments[2] ?? '') ?? '', req, requestId));
        return;
      }
      const prefix = pathSegments(this.settings.routePrefix);
      const underPrefix = prefix.every((p, i) => segments[i]?.toLowerCase() === p.toLowerCase());
      const match =
        underPrefix && ROUTED_METHODS.has(req.method ?? '')
          ? this.routes.match(segments.slice(prefix.length))
          : undefined;
      if (!match) {
        await writeResponse(res, notFound(`No function serves ${url.pathname}.`, requestId));
        return;
      }
      const body = await readBody(req);
      const request = new HttpRequest({
        method: req.method ?? 'GET',
        url: url.toString(),
        headers: headersOf(req),
        params: match.params,
        ...(body.length > 0 ? { body: { bytes: body } } : {}),
      });
      const context = this.context(match.fn, 'httpTrigger');
      let response: HttpResponseInit;
      try {
        response = await invokeHttp(match.fn, this.options.services, request, context);
      } catch (error) {
        response = errorResponse(error, requestId, context);
      }
      await writeResponse(res, response);
    } catch (error) {
      this.log('error', `Serving ${req.method} ${req.url} failed: ${describeError(error)}`);
      if (res.headersSent) res.destroy();
      else await writeResponse(res, errorResponse(error, requestId));
    }
  }

  /** `POST /admin/functions/{name}`: runs a timer or queue function now and answers when it has finished. */
  private async serveAdmin(name: string, req: IncomingMessage, requestId: string): Promise<HttpResponseInit> {
    const fn = this.byName.get(name.toLowerCase());
    if (!fn || fn.kind === 'http') return notFound(`No timer or queue function is named ${name}.`, requestId);
    if (req.method !== 'POST') {
      return errorResponse(
        new DomainError('MethodNotAllowed', `${req.method} is not allowed here; use POST.`, [], {
          Allow: 'POST',
        }),
        requestId,
      );
    }
    const text = (await readBody(req)).toString('utf8');
    let input: unknown;
    try {
      input = text.trim() === '' ? undefined : (JSON.parse(text) as { input?: unknown }).input;
    } catch {
      return errorResponse(
        new DomainError('InvalidJson', 'The body must be JSON: {"input":"..."}.'),
        requestId,
      );
    }
    const context = this.context(fn, fn.kind === 'timer' ? 'timerTrigger' : 'queueTrigger');
    try {
      if (fn.kind === 'timer') {
        await this.timers.runNow(fn);
      } else {
        const now = new Date();
        await this.runQueueFunction(fn, typeof input === 'string' ? parseJsonOrText(input) : (input ?? ''), {
          id: randomUUID(),
          dequeueCount: 1,
          insertionTime: now.toISOString(),
          expirationTime: new Date(now.getTime() + 7 * 24 * 3600_000).toISOString(),
          nextVisibleTime: now.toISOString(),
          popReceipt: '',
        });
      }
    } catch (error) {
      return errorResponse(error, requestId, context);
    }
    return { status: 202, headers: { 'x-request-id': requestId } };
  }

  // ---- Queues -----------------------------------------------------------------------------------------------

  private runQueueFunction(fn: QueueFunction, message: unknown, triggerMetadata: Record<string, unknown>) {
    return invokeQueue(fn, this.options.services, message, this.context(fn, 'queueTrigger', triggerMetadata));
  }

  /** A queue of the function's account: a configured storage account when the connection names one. */
  private async openQueue(fn: QueueFunction, name: string): Promise<QueueClient> {
    const storage = this.options.services.storage;
    if (fn.connection === storageSettingName('GLOBAL')) return storage.global.queue(name);
    const geography = GEOGRAPHIES.find((g) => storageSettingName(g) === fn.connection);
    if (geography && storage.openGeographies().has(geography))
      return storage.geography(geography).queue(name);
    const connectionString = (this.options.env ?? process.env)[fn.connection];
    if (!connectionString)
      throw new Error(`The app setting ${fn.connection} (connection of ${fn.name}) is not set.`);
    const client = new QueueClient(connectionString, name);
    await client.createIfNotExists();
    return client;
  }
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const notFound = (message: string, requestId: string): HttpResponseInit =>
  errorResponse(new DomainError('NotFound', message), requestId);
