import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../config';
import type { JobAccess } from './job-access';
import { isDenial } from './job-access';
import { exporterRoutes, jsonOnlyGuard, methodGuard, originGuard } from './request-guards';
import type { ServerLimits, WebFront } from './web-server';

/** The web layer's wiring: limits from the configuration, and the guards mounted before every route. */

export function serverLimits(config: Config): ServerLimits {
  return {
    headersTimeoutMs: config.web.headerTimeout,
    requestTimeoutMs: config.web.requestTimeout,
    keepAliveTimeoutMs: config.web.keepAliveTimeout,
    maxConnections: config.web.maxConnections,
  };
}

function onApi(g: RequestHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => (req.path.startsWith('/api/') ? g(req, res, next) : next());
}

/** In order: headers and basic auth, then 405 for unserved methods, then the API's origin and content-type checks. */
export function webGuards(front: WebFront, telemetryPath: string): RequestHandler[] {
  return [front.guard, methodGuard(exporterRoutes(telemetryPath)), onApi(originGuard(front.tls)), onApi(jsonOnlyGuard)];
}

/**
 * With basic auth configured, the jobs API also takes its own credentials instead: the bearer
 * token, or a local caller the kernel names by uid (so `jouleflow run` on the node keeps working).
 */
export function apiCredentialsExempt(access: JobAccess): (req: Request) => Promise<boolean> {
  return async (req) => {
    if (!req.path.startsWith('/api/')) return false;
    const caller = await access.identify(req);
    return !isDenial(caller) && caller.kind !== 'remote';
  };
}
