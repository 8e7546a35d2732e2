// What every request meets before the FHIR layer: security headers (no-store among them), CORS only
// for the origins configured, a rate limit per client with 429 and Retry-After, and a cap on JSON nesting depth.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import cors from 'cors';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { decodeJwt } from 'jose';
import helmet from 'helmet';
import { badRequest, outcomeOf } from '../fhir/outcome.js';

export interface HardeningOptions {
  /** Origins allowed to call from a browser; none: no CORS headers at all. */
  corsOrigins: string[];
  /** Requests a client may make in a minute; 0: no limit. */
  ratePerMinute: number;
}

export function hardening(options: HardeningOptions): RequestHandler[] {
  const handlers: RequestHandler[] = [
    helmet({ crossOriginResourcePolicy: { policy: 'same-site' } }),
    // Answers carry patient data or credentials: no browser, proxy or CDN keeps a copy.
    (_req, res, next) => {
      res.setHeader('Cache-Control', 'no-store');
      next();
    },
  ];
  if (options.corsOrigins.length) {
    handlers.push(cors({ origin: options.corsOrigins, exposedHeaders: ['ETag', 'Location', 'Last-Modified', 'Content-Location', 'Retry-After', 'WWW-Authenticate', 'X-Progress', 'X-Request-Id'] }));
  }
  if (options.ratePerMinute > 0) {
    handlers.push(
      rateLimit({
        windowMs: 60_000,
        limit: options.ratePerMinute,
        standardHeaders: 'draft-7',
        legacyHeaders: false,
        skip: (req) => req.path === '/healthz' || req.path === '/readyz',
        keyGenerator: clientKey,
        handler: (_req, res) => {
          res
            .status(429)
            .type('application/fhir+json')
            .send(JSON.stringify(outcomeOf([{ severity: 'error', code: 'throttled', details: { text: `More than ${options.ratePerMinute} requests a minute from this client; try again after the Retry-After time` } }])));
        },
      }),
    );
  }
  return handlers;
}

/**
 * Whom a request is counted against: the client its bearer token names (read, not yet verified: a
 * forged one is refused at authentication, counted under the name it forged), else its address.
 */
function clientKey(req: Request): string {
  const [scheme, token] = (req.get('authorization') ?? '').trim().split(/\s+/);
  if (scheme?.toLowerCase() === 'bearer' && token) {
    try {
      const { iss, sub } = decodeJwt(token);
      if (typeof sub === 'string') return `client ${String(iss)} ${sub}`;
    } catch {
      // not a JWT: counted by address
    }
  }
  return `address ${ipKeyGenerator(req.ip ?? '')}`;
}

/** Refuses a parsed body nested deeper than `maxDepth` (counted without recursion, so any depth is safe to measure). */
export function jsonDepthLimit(maxDepth: number): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    next(depthExceeds(req.body, maxDepth) ? badRequest(`The request body nests deeper than ${maxDepth} levels`) : undefined);
  };
}

function depthExceeds(value: unknown, maxDepth: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (node === null || typeof node !== 'object') continue;
    if (depth >= maxDepth) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}
