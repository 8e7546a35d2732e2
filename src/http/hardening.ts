// What every request meets before the FHIR layer: security headers (no-store among them), CORS only
// for the origins configured, a rate limit per client with 429 and Retry-After, and a cap on JSON nesting depth.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import cors from 'cors';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { decodeJwt } from 'jose';
import helmet from 'helmet';
import { badRequest, outcomeOf } from '../base/outcome.js';

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
    handlers.push(
      cors({
        origin: options.corsOrigins,
        exposedHeaders: ['ETag', 'Location', 'Last-Modified', 'Content-Location', 'Retry-After', 'WWW-Authenticate', 'X-Progress', 'X-Request-Id'],
      }),
    );
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
            .send(
              JSON.stringify(
                outcomeOf([
                  {
                    severity: 'error',
                    code: 'throttled',
                    details: { text: `More than ${options.ratePerMinute} requests a minute from this client; try again after the Retry-After time` },
                  },
                ]),
              ),
            );
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

/** Keys no FHIR element has, that JavaScript treats as an object's prototype: refused wherever they occur. */
const prototypeKeys = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses a parsed body nested deeper than `maxDepth` (counted without recursion, so any depth is safe
 * to measure), or holding a `__proto__`, `constructor` or `prototype` key anywhere (a transaction's
 * entries too), before anything reads it.
 */
export function jsonDepthLimit(maxDepth: number): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    next(shapeProblem(req.body, maxDepth));
  };
}

function shapeProblem(value: unknown, maxDepth: number): Error | undefined {
  const stack: [unknown, number, string][] = [[value, 0, '']];
  while (stack.length) {
    const [node, depth, path] = stack.pop() as [unknown, number, string];
    if (node === null || typeof node !== 'object') continue;
    if (depth >= maxDepth) return badRequest(`The request body nests deeper than ${maxDepth} levels`);
    for (const [key, child] of Object.entries(node)) {
      const at = Array.isArray(node) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
      if (!Array.isArray(node) && prototypeKeys.has(key)) return badRequest(`The request body holds the key "${key}", which no FHIR element has`, at);
      stack.push([child, depth + 1, at]);
    }
  }
  return undefined;
}
