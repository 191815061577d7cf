// The local Functions host: serves the registry's HTTP functions under /api, runs its timers on their NCRONTAB
// schedules and consumes its queues with the Azure host's semantics, always through shared/hosting/invoke.ts.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import { format } from 'node:util';

import {
  HttpRequest,
  HttpResponse,
  type HttpResponseInit,
  InvocationContext,
  type LogLevel,
  type Timer,
} from '@azure/functions';
import { type DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import { CronExpressionParser } from 'cron-parser';

import type { Services } from '../shared/composition';
import { storageSettingName } from '../shared/config';
import { DomainError } from '../shared/errors';
import type {
  FunctionDefinition,
  HttpFunction,
  QueueFunction,
  TimerFunction,
} from '../shared/hosting/functionDefinition';
import { invokeHttp, invokeQueue, invokeTimer } from '../shared/hosting/invoke';
import { MAX_DEQUEUE_COUNT } from '../shared/hosting/queueFailures';
import { HTTP_METHODS } from '../shared/http/apiOperation';
import { errorResponse } from '../shared/http/errorResponse';
import { GEOGRAPHIES } from '../shared/residency/geography';
import { poisonQueueOf } from '../shared/storage/names';
import { decodeMessage } from '../shared/storage/queueMessages';
import { repoRoot } from './settings';

export type HostLog = (level: LogLevel, message: string) => void;

/** host.json `extensions.queues` (and the route prefix), in the units the local host works with. */
export interface HostSettings {
  routePrefix: string;
  /** Longest wait between two polls of an empty queue. */
  maxPollingIntervalMs: number;
  /** First wait after an empty poll; it doubles up to maxPollingIntervalMs, as the Azure host's backoff does. */
  minPollingIntervalMs: number;
  /** How long a failed message stays invisible before its next delivery. */
  visibilityTimeoutSeconds: number;
  batchSize: number;
  newBatchThreshold: number;
  maxDequeueCount: number;
  /** How long a received message stays invisible while it runs; renewed at half-time like the host's lease. */
  leaseSeconds: number;
}

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

/** Request bodies are buffered up to this size; the HTTP edge refuses anything over 64 KiB anyway. */
const MAX_BUFFERED_BODY_BYTES = 1024 * 1024;
/** The Queue service hands out at most 32 messages per receive. */
const MAX_RECEIVE_BATCH = 32;
/** setTimeout cannot wait longer than this; longer waits for a timer are taken in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const ROUTED_METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);

const consoleLog: HostLog = (level, message) => {
  if (level === 'trace' || level === 'debug' || level === 'none') return;
  (level === 'error' || level === 'critical' ? console.error : console.log)(message);
};

export class LocalHost {
  private readonly settings: HostSettings;
  private readonly log: HostLog;
  private readonly routes: RouteTable;
  private readonly byName = new Map<string, FunctionDefinition>();
  private readonly listeners: QueueListener[] = [];
  private readonly timerHandles = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * What the Azure host's schedule monitor would hold for a timer: `last` is the occurrence of the last run,
   * `next` the occurrence awaited. A run receives the status as it was before the run, so `next` is its own
   * occurrence.
   */
  private readonly timerStatus = new Map<string, Timer['scheduleStatus']>();

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
          this.scheduleTimer(fn, undefined, nextOccurrence(fn.schedule, new Date()));
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
      for (const handle of this.timerHandles) clearTimeout(handle);
      this.timerHandles.clear();
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
      this.log('error', `Serving ${req.method} ${req.url} failed: ${describe(error)}`);
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
        await this.runTimerFunction(fn);
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

  // ---- Timers -----------------------------------------------------------------------------------------------

  private scheduleTimer(fn: TimerFunction, last: Date | undefined, due: Date): void {
    this.timerStatus.set(fn.name, {
      // The Azure host reports DateTime.MinValue before the first run.
      last: last?.toISOString() ?? '0001-01-01T00:00:00',
      next: due.toISOString(),
      lastUpdated: new Date().toISOString(),
    });
    this.armTimer(fn, due);
  }

  private armTimer(fn: TimerFunction, due: Date): void {
    if (this.stopping) return;
    const wait = due.getTime() - Date.now();
    const handle = setTimeout(
      () => {
        this.timerHandles.delete(handle);
        if (Date.now() < due.getTime()) return this.armTimer(fn, due);
        void this.track(this.fireTimer(fn, due));
      },
      Math.max(0, Math.min(wait, MAX_TIMEOUT_MS)),
    );
    this.timerHandles.add(handle);
  }

  private async fireTimer(fn: TimerFunction, due: Date): Promise<void> {
    try {
      await this.runTimerFunction(fn);
    } catch (error) {
      this.log('error', `[${fn.name}] failed: ${describe(error)}`);
    }
    // Like the Azure host's singleton timer: the next run waits for this one, and occurrences missed meanwhile
    // are skipped rather than run in a burst.
    this.scheduleTimer(fn, due, nextOccurrence(fn.schedule, new Date(Math.max(due.getTime(), Date.now()))));
  }

  private runTimerFunction(fn: TimerFunction): Promise<void> {
    const timer: Timer = {
      isPastDue: false,
      schedule: { adjustForDST: false },
      scheduleStatus: this.timerStatus.get(fn.name) ?? {
        last: '0001-01-01T00:00:00',
        next: nextOccurrence(fn.schedule, new Date()).toISOString(),
        lastUpdated: new Date().toISOString(),
      },
    };
    return invokeTimer(fn, this.options.services, timer, this.context(fn, 'timerTrigger'));
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

// ---- Queue listener ---------------------------------------------------------------------------------------------

type RunQueueFunction = (message: unknown, triggerMetadata: Record<string, unknown>) => Promise<void>;

/** Polls one queue and runs each message with the Azure host's delivery, retry and poison semantics. */
class QueueListener {
  private readonly abort = new AbortController();
  private readonly processing = new Set<Promise<void>>();
  private slotWaiters: (() => void)[] = [];
  private loop?: Promise<void>;
  private queue?: QueueClient;
  private poison?: QueueClient;
  private failing = false;

  constructor(
    private readonly fn: QueueFunction,
    private readonly settings: HostSettings,
    private readonly log: HostLog,
    private readonly open: (name: string) => Promise<QueueClient>,
    private readonly run: RunQueueFunction,
  ) {}

  start(): void {
    this.loop = this.poll();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeSlotWaiters();
    await this.loop;
    await Promise.allSettled([...this.processing]);
  }

  private async poll(): Promise<void> {
    const { batchSize, newBatchThreshold, minPollingIntervalMs, maxPollingIntervalMs, leaseSeconds } =
      this.settings;
    let idleMs = minPollingIntervalMs;
    while (!this.abort.signal.aborted) {
      // A new batch is fetched once the running ones drop to newBatchThreshold, never beyond batchSize at once.
      if (this.processing.size > newBatchThreshold || this.processing.size >= batchSize) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        continue;
      }
      let messages: DequeuedMessageItem[] = [];
      try {
        this.queue ??= await this.open(this.fn.queueName);
        const response = await this.queue.receiveMessages({
          numberOfMessages: Math.min(MAX_RECEIVE_BATCH, batchSize - this.processing.size),
          visibilityTimeout: leaseSeconds,
        });
        messages = response.receivedMessageItems;
        if (this.failing)
          this.log('information', `[${this.fn.name}] queue ${this.fn.queueName} is reachable again.`);
        this.failing = false;
      } catch (error) {
        if (!this.failing) {
          this.log(
            'error',
            `[${this.fn.name}] cannot receive from queue ${this.fn.queueName}: ${describe(error)}`,
          );
        }
        this.failing = true;
      }
      // Messages already received are still run when a stop is under way, so none waits out its lease.
      for (const message of messages) this.begin(message);
      if (messages.length > 0) {
        idleMs = minPollingIntervalMs;
        continue;
      }
      await sleep(idleMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
      idleMs = Math.min(idleMs * 2, maxPollingIntervalMs);
    }
  }

  private begin(message: DequeuedMessageItem): void {
    const work = this.process(message).catch((error: unknown) => {
      this.log('error', `[${this.fn.name}] message ${message.messageId}: ${describe(error)}`);
    });
    this.processing.add(work);
    void work.finally(() => {
      this.processing.delete(work);
      this.wakeSlotWaiters();
    });
  }

  private wakeSlotWaiters(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const wake of waiters) wake();
  }

  private async process(message: DequeuedMessageItem): Promise<void> {
    const queue = this.queue!;
    const { maxDequeueCount, visibilityTimeoutSeconds } = this.settings;
    // Its lease ran out after its last allowed delivery (a crash or a stop mid-run): it is not run again.
    if (message.dequeueCount > maxDequeueCount) {
      await this.moveToPoison(message, message.popReceipt);
      return;
    }
    const lease = this.keepInvisible(message);
    let failure: unknown;
    try {
      await this.run(decodeMessage(message.messageText), {
        id: message.messageId,
        dequeueCount: message.dequeueCount,
        insertionTime: message.insertedOn.toISOString(),
        expirationTime: message.expiresOn.toISOString(),
        nextVisibleTime: message.nextVisibleOn.toISOString(),
        popReceipt: message.popReceipt,
      });
    } catch (error) {
      failure = error ?? new Error('The function failed.');
    }
    const popReceipt = await lease.release();
    if (failure === undefined) {
      await queue.deleteMessage(message.messageId, popReceipt);
      return;
    }
    this.log(
      'warning',
      `[${this.fn.name}] failed on delivery ${message.dequeueCount} of ${maxDequeueCount}: ${describe(failure)}`,
    );
    if (message.dequeueCount >= maxDequeueCount) {
      await this.moveToPoison(message, popReceipt);
    } else {
      await queue.updateMessage(message.messageId, popReceipt, message.messageText, visibilityTimeoutSeconds);
    }
  }

  /** Copies the message text unchanged to `<queue>-poison`, as the Azure host does, then removes it. */
  private async moveToPoison(message: DequeuedMessageItem, popReceipt: string): Promise<void> {
    const poisonName = poisonQueueOf(this.fn.queueName);
    this.poison ??= await this.open(poisonName);
    await this.poison.sendMessage(message.messageText);
    await this.queue!.deleteMessage(message.messageId, popReceipt);
    this.log('warning', `[${this.fn.name}] message ${message.messageId} moved to ${poisonName}.`);
  }

  /** Renews the message's invisibility while the function runs, so a long run is not delivered twice. */
  private keepInvisible(message: DequeuedMessageItem): { release(): Promise<string> } {
    const queue = this.queue!;
    const { leaseSeconds } = this.settings;
    let popReceipt = message.popReceipt;
    let released = false;
    let renewal = Promise.resolve();
    const handle = setInterval(
      () => {
        renewal = renewal.then(async () => {
          if (released) return;
          try {
            const renewed = await queue.updateMessage(
              message.messageId,
              popReceipt,
              message.messageText,
              leaseSeconds,
            );
            if (renewed.popReceipt) popReceipt = renewed.popReceipt;
          } catch (error) {
            this.log(
              'warning',
              `[${this.fn.name}] could not renew message ${message.messageId}: ${describe(error)}`,
            );
          }
        });
      },
      (leaseSeconds * 1000) / 2,
    );
    return {
      release: async () => {
        released = true;
        clearInterval(handle);
        await renewal;
        return popReceipt;
      },
    };
  }
}

// ---- Schedules --------------------------------------------------------------------------------------------------

/**
 * The first occurrence of an NCRONTAB schedule (`{second} {minute} {hour} {day} {month} {day-of-week}`, UTC)
 * strictly after `after`. As in NCrontab, a schedule restricting both day and day-of-week needs both to match.
 */
export function nextOccurrence(schedule: string, after: Date): Date {
  if (schedule.trim().split(/\s+/).length !== 6) {
    throw new Error(
      `Schedule "${schedule}" is not NCRONTAB with six fields ({second} {minute} {hour} {day} {month} {day-of-week}).`,
    );
  }
  const expression = CronExpressionParser.parse(schedule, { currentDate: after, tz: 'UTC' });
  const { dayOfMonth, dayOfWeek } = expression.fields;
  // cron-parser follows Vixie cron (either day field may match); NCrontab requires both.
  const bothDays = !dayOfMonth.isWildcard && !dayOfWeek.isWildcard;
  for (let i = 0; i < 10_000; i++) {
    const candidate = expression.next().toDate();
    if (!bothDays) return candidate;
    const days: readonly unknown[] = dayOfMonth.values;
    const weekdays: readonly unknown[] = dayOfWeek.values;
    if (days.includes(candidate.getUTCDate()) && weekdays.includes(candidate.getUTCDay())) return candidate;
  }
  throw new Error(`Schedule "${schedule}" has no occurrence that matches both its day and day-of-week.`);
}

// ---- Routes -----------------------------------------------------------------------------------------------------

type RouteSegment =
  | { kind: 'literal'; text: string }
  | {
      kind: 'parameter';
      name: string;
      optional: boolean;
      catchAll: boolean;
      accepts: (value: string) => boolean;
    };

interface Route {
  fn: HttpFunction;
  segments: RouteSegment[];
  literals: number;
  variable: number;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  bool: /^(true|false)$/i,
  alpha: /^[a-z]+$/i,
  guid: /^[{(]?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}[)}]?$/i,
};

const PARAMETER = /^\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)((?::[a-z]+)*)(\?)?\}$/;

/** ASP.NET-style route templates: `{name}`, `{name:int}`, `{name?}` and `{*rest}` segments, literals ignoring case. */
class RouteTable {
  private readonly routes: Route[];

  constructor(functions: readonly HttpFunction[]) {
    const compiled = functions.map((fn) => compileRoute(fn));
    // As in ASP.NET routing, the more literal segments a template has the sooner it is tried; then the fewer
    // optional or catch-all parameters; the stable sort keeps registration order for the rest.
    this.routes = compiled.sort((a, b) => b.literals - a.literals || a.variable - b.variable);
  }

  match(segments: readonly string[]): { fn: HttpFunction; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      const params = matchRoute(route.segments, segments);
      if (params) return { fn: route.fn, params };
    }
    return undefined;
  }
}

function compileRoute(fn: HttpFunction): Route {
  const segments = pathSegments(fn.route).map((segment): RouteSegment => {
    const parameter = PARAMETER.exec(segment);
    if (!parameter) {
      if (/[{}]/.test(segment)) {
        throw new Error(
          `Route ${fn.route} of ${fn.name}: the local host does not support the segment "${segment}".`,
        );
      }
      return { kind: 'literal', text: segment.toLowerCase() };
    }
    const [, star, name = '', constraintList = '', question] = parameter;
    const patterns = constraintList
      .split(':')
      .filter(Boolean)
      .map((constraint) => {
        const pattern = CONSTRAINTS[constraint];
        if (!pattern)
          throw new Error(`Route ${fn.route} of ${fn.name}: unsupported constraint "${constraint}".`);
        return pattern;
      });
    return {
      kind: 'parameter',
      name,
      optional: Boolean(question) || Boolean(star),
      catchAll: Boolean(star),
      accepts: (value) => patterns.every((pattern) => pattern.test(value)),
    };
  });
  return {
    fn,
    segments,
    literals: segments.filter((s) => s.kind === 'literal').length,
    variable: segments.filter((s) => s.kind === 'parameter' && s.optional).length,
  };
}

function matchRoute(
  template: readonly RouteSegment[],
  path: readonly string[],
): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const segment = template[i]!;
    if (segment.kind === 'parameter' && segment.catchAll) {
      const rest = path.slice(i).map(safeDecode);
      if (rest.some((part) => part === undefined)) return undefined;
      if (rest.length > 0) params[segment.name] = rest.join('/');
      return params;
    }
    const raw = path[i];
    if (raw === undefined) {
      // Only trailing optional parameters may be left out.
      return template.slice(i).every((s) => s.kind === 'parameter' && s.optional) ? params : undefined;
    }
    const value = safeDecode(raw);
    if (value === undefined || value === '') return undefined;
    if (segment.kind === 'literal') {
      if (value.toLowerCase() !== segment.text) return undefined;
    } else {
      if (!segment.accepts(value)) return undefined;
      params[segment.name] = value;
    }
  }
  return path.length === template.length ? params : undefined;
}

// ---- host.json and helpers --------------------------------------------------------------------------------------

/** Reads the queue settings and route prefix of host.json, with the Azure host's defaults for what is absent. */
export function readHostSettings(hostJsonPath: string): HostSettings {
  const hostJson = JSON.parse(readFileSync(hostJsonPath, 'utf8')) as {
    extensions?: { http?: { routePrefix?: string }; queues?: Record<string, unknown> };
  };
  const queues = hostJson.extensions?.queues ?? {};
  const number = (name: string, fallback: number) =>
    typeof queues[name] === 'number' ? queues[name] : fallback;
  const timeSpan = (name: string, fallbackMs: number) =>
    typeof queues[name] === 'string' ? parseTimeSpan(queues[name], `host.json queues.${name}`) : fallbackMs;
  const batchSize = Math.min(MAX_RECEIVE_BATCH, Math.max(1, number('batchSize', 16)));
  return {
    routePrefix: hostJson.extensions?.http?.routePrefix ?? 'api',
    maxPollingIntervalMs: timeSpan('maxPollingInterval', 60_000),
    minPollingIntervalMs: 100,
    visibilityTimeoutSeconds: Math.ceil(timeSpan('visibilityTimeout', 0) / 1000),
    batchSize,
    newBatchThreshold: number('newBatchThreshold', Math.floor(batchSize / 2)),
    maxDequeueCount: number('maxDequeueCount', 5),
    leaseSeconds: 60,
  };
}

/** A .NET TimeSpan (`[d.]hh:mm:ss[.fffffff]`) in milliseconds. */
function parseTimeSpan(value: string, what: string): number {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!match) throw new Error(`${what}: "${value}" is not a time span like 00:00:02.`);
  const [, days = '0', hours = '0', minutes = '0', seconds = '0', fraction = ''] = match;
  return (
    ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 +
    Number(seconds) * 1000 +
    Math.round(Number(`0.${fraction || '0'}`) * 1000)
  );
}

/** The segments of a path; a leading or trailing slash adds none. */
const pathSegments = (path: string): string[] =>
  path.split('/').filter((segment, index, all) => segment !== '' || (index > 0 && index < all.length - 1));

const joinPath = (...parts: string[]): string => parts.flatMap(pathSegments).join('/');

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Buffers the body up to MAX_BUFFERED_BODY_BYTES and discards the rest; the edge answers 413 long before. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size < MAX_BUFFERED_BODY_BYTES) chunks.push(chunk.subarray(0, MAX_BUFFERED_BODY_BYTES - size));
      size += chunk.length;
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** Statuses whose responses carry no body; HttpResponse drops one given with them. */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([204, 205, 304]);

/**
 * Writes a function's response the way the @azure/functions library converts it (jsonBody, streams, ...).
 * A stream body is piped to the client as it is read, as the Azure host does with enableHttpStream.
 */
async function writeResponse(res: ServerResponse, init: HttpResponseInit): Promise<void> {
  const stream = init.jsonBody === undefined ? streamOf(init.body) : undefined;
  if (stream && !NULL_BODY_STATUSES.has(init.status ?? 200)) return writeStreamedResponse(res, init, stream);
  // Nobody will read it: let its source (a blob download, say) close now.
  stream?.destroy();
  const response = new HttpResponse(stream ? { ...init, body: undefined } : init);
  const body = Buffer.from(await response.arrayBuffer());
  const headers = responseHeaders(response);
  if (response.status !== 204 && response.status !== 304) headers['content-length'] = String(body.length);
  res.writeHead(response.status, headers);
  res.end(body);
}

/**
 * Sends the headers, then the body with backpressure: the stream is read only as fast as the client takes
 * it, and never held whole. Without a content-length of the handler's, Node sends it chunked.
 */
async function writeStreamedResponse(
  res: ServerResponse,
  init: HttpResponseInit,
  body: Readable,
): Promise<void> {
  const response = new HttpResponse({ ...init, body: undefined });
  res.writeHead(response.status, responseHeaders(response));
  // The first bytes of a decrypted download may be a while coming; the client learns the status meanwhile.
  res.flushHeaders();
  try {
    await pipeline(body, res);
  } catch (error) {
    // The status is sent: only a broken connection tells the client that the body is incomplete, where a
    // clean end would pass a truncated package off as whole and a kept-open one would leave it waiting.
    res.destroy();
    throw new Error(`The response body failed after its headers were sent: ${describe(error)}`, {
      cause: error,
    });
  }
}

/** A body that is a stream (Node Readable, web ReadableStream, or async iterable of bytes) as a Node Readable. */
function streamOf(body: HttpResponseInit['body']): Readable | undefined {
  if (body instanceof Readable) return body;
  if (body instanceof ReadableStream) return Readable.fromWeb(body);
  if (typeof body === 'object' && body !== null && Symbol.asyncIterator in body) {
    return Readable.from(body as AsyncIterable<Uint8Array>);
  }
  return undefined;
}

function responseHeaders(response: HttpResponse): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  return headers;
}

const notFound = (message: string, requestId: string): HttpResponseInit =>
  errorResponse(new DomainError('NotFound', message), requestId);

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));
