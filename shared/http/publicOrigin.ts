// The origin callers reach the app at, for links it hands out (download links, the OpenAPI servers): the
// configured public address when the app sits behind a gateway (PUBLIC_BASE_URL), otherwise the address the
// request came in at.
import type { HttpRequest } from '@azure/functions';

import type { ServiceConfig } from '../config';

export const publicOrigin = (config: Pick<ServiceConfig, 'publicBaseUrl'>, request: HttpRequest): string =>
  config.publicBaseUrl ?? new URL(request.url).origin;
