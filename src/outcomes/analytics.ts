// The analysts' endpoints outside FHIR: GET /analytics/outcomes (the outcome report as JSON or CSV)
// and GET /analytics (a page of charts that holds no data: the analyst signs in as in the workbench,
// and it calls the JSON endpoint with that token, kept in the tab's sessionStorage, so it is in no URL
// and no server log). Outcome figures are for the analyst, coordinator and admin roles.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { mayReadOutcomes } from '../access/policy.js';
import { principalOf } from '../auth/bearer.js';
import { badRequest, notFound, outcomeOf } from '../base/outcome.js';
import { period, stratifierList } from './period.js';
import { reportCsv, type OutcomeReports } from './report.js';

const queryParameters = ['periodStart', 'periodEnd', 'by', 'format'];
const pageDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'outcomes', 'page');
/** The page's sign-in script, built by `npm run build` (scripts/build-workbench.ts) from web/analytics. */
const signInScript = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/analytics/sign-in.js');
const chartJs = path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');

/** 403 (an OperationOutcome) unless the verified caller has a role that may see outcome figures (the access policy's). */
export const requireAnalystRole: RequestHandler = (_req: Request, res: Response, next: NextFunction) => {
  if (mayReadOutcomes(principalOf(res)?.role)) return next();
  res
    .status(403)
    .type('application/fhir+json')
    .send(
      JSON.stringify(
        outcomeOf([{ severity: 'error', code: 'forbidden', details: { text: 'Outcome figures are for the analyst, coordinator and admin roles' } }]),
      ),
    );
};

/** `authenticate` and `scope` (the token's scopes must allow reading Measures) run before the role check. */
export function analyticsRoutes(reports: OutcomeReports, access: { authenticate: RequestHandler; scope: RequestHandler }): Router {
  const router = express.Router();
  const files = {
    page: readFileSync(path.join(pageDir, 'analytics.html')),
    script: readFileSync(path.join(pageDir, 'analytics.js')),
    chart: readFileSync(chartJs),
  };
  router.get('/analytics', (_req, res) => {
    res.type('html').send(files.page);
  });
  router.get('/analytics/analytics.js', (_req, res) => {
    res.type('js').send(files.script);
  });
  // Read when asked: a service without its build still answers the figures to API clients.
  router.get('/analytics/sign-in.js', (_req, res, next) => {
    if (!existsSync(signInScript)) return next(notFound('The analytics sign-in is not built on this server: run npm run build'));
    res.type('js').sendFile(signInScript);
  });
  router.get('/analytics/chart.umd.min.js', (_req, res) => {
    res.type('js').send(files.chart);
  });
  router.get('/analytics/outcomes', access.authenticate, access.scope, requireAnalystRole, async (req, res) => {
    const query = req.query as Record<string, unknown>;
    const unknown = Object.keys(query).find((name) => !queryParameters.includes(name));
    if (unknown !== undefined)
      throw badRequest(`Unknown parameter "${unknown.slice(0, 40)}": this endpoint takes ${queryParameters.join(', ')}`, unknown.slice(0, 40));
    const one = (name: string): string | undefined => {
      const value = query[name];
      if (Array.isArray(value) || (value !== undefined && typeof value !== 'string')) throw badRequest(`${name} is given once`, name);
      return value;
    };
    const format = one('format') ?? 'json';
    if (format !== 'json' && format !== 'csv') throw badRequest(`format is json or csv, not "${format.slice(0, 20)}"`, 'format');
    const by = stratifierList((one('by') ?? '').split(',').filter(Boolean), 'by');
    const report = await reports.report({ ...period(one('periodStart'), one('periodEnd'), 'periodStart', 'periodEnd'), by });
    res.setHeader('cache-control', 'no-store');
    if (format === 'csv') {
      res.type('text/csv').setHeader('content-disposition', `attachment; filename="outcomes-${report.periodStart}-${report.periodEnd}.csv"`);
      res.send(reportCsv(report));
    } else {
      res.json(report);
    }
  });
  return router;
}
