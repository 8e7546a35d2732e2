// One structured log line per request, with a request id that the response carries back
// (X-Request-Id) and every error line of the same request repeats. Never the URL or the body: ids
// and search values can identify a patient.
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from '../logger.js';

// A caller's own id is kept only when it cannot carry anything but an id.
const acceptableId = /^[A-Za-z0-9\-_.]{8,64}$/;

export function requestLog(log: Logger): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const given = req.get('X-Request-Id');
    const requestId = given && acceptableId.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    res.on('finish', () => {
      // The route pattern, never the URL.
      const route = `${req.baseUrl}${(req.route as { path?: string } | undefined)?.path ?? ''}` || 'unmatched';
      log.info({ requestId, method: req.method, route, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
    });
    next();
  };
}

/** The id of the request a response answers (for error lines). */
export function requestIdOf(res: Response): string | undefined {
  return res.locals.requestId as string | undefined;
}
