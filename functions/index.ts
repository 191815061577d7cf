// Entry point of the Azure Functions host (package.json "main"): decodes the configuration once, then
// registers every function of the registry with @azure/functions.
import { app, type HttpMethod as AzureHttpMethod } from '@azure/functions';

import { createServices } from '../shared/composition';
import { loadConfig } from '../shared/config';
import { HTTP_METHODS } from '../shared/http/apiOperation';
import { invokeHttp, invokeQueue, invokeTimer } from '../shared/hosting/invoke';
import { functionRegistry } from './registry';

// A missing or malformed setting stops start-up here, with the list of what is wrong.
const services = createServices(loadConfig());

// Response bodies that are streams (package downloads) reach the client as they are read instead of being
// buffered whole; request bodies still read with request.text(). Needs Functions host 4.28 or later.
app.setup({ enableHttpStream: true });

for (const fn of functionRegistry) {
  switch (fn.kind) {
    case 'http':
      app.http(fn.name, {
        route: fn.route,
        // Every method reaches the edge, which answers 405 MethodNotAllowed in the spec's error shape.
        methods: [...HTTP_METHODS] as AzureHttpMethod[],
        authLevel: 'anonymous',
        handler: (request, context) => invokeHttp(fn, services, request, context),
      });
      break;
    case 'timer':
      app.timer(fn.name, {
        schedule: fn.schedule,
        handler: (timer, context) => invokeTimer(fn, services, timer, context),
      });
      break;
    case 'queue':
      app.storageQueue(fn.name, {
        queueName: fn.queueName,
        connection: fn.connection,
        handler: (message, context) => invokeQueue(fn, services, message, context),
      });
      break;
  }
}
