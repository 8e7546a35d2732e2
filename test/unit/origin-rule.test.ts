// The outbound rule: a URL a referring server hands back is followed only under the base URL of its
// registered Endpoint (same scheme, host, port, and path at or below the base's); a log names only origins.
import { describe, expect, it } from '@jest/globals';
import { originOf, withinBase } from '../../src/outbound/origin-rule.js';

const base = 'https://ehr.example:8443/fhir/r4/';

describe('within the Endpoint', () => {
  it.each([
    'https://ehr.example:8443/fhir/r4',
    'https://ehr.example:8443/fhir/r4/Patient/1',
    'https://ehr.example:8443/fhir/r4?_getpages=abc&_page=2',
    'https://EHR.example:8443/fhir/r4/Binary/9',
  ])('%s is followed', (url) => {
    expect(withinBase(base, url)).toBe(true);
  });

  it.each([
    ['another scheme', 'http://ehr.example:8443/fhir/r4/Patient/1'],
    ['another port', 'https://ehr.example/fhir/r4/Patient/1'],
    ['another host', 'https://files.example:8443/fhir/r4/Binary/9'],
    ['a host that only starts the same', 'https://ehr.example.attacker.test:8443/fhir/r4/Patient/1'],
    ['a sibling path', 'https://ehr.example:8443/fhir/r4-other/Patient/1'],
    ['a path above the base', 'https://ehr.example:8443/fhir/Patient/1'],
    ['a way up out of the base', 'https://ehr.example:8443/fhir/r4/../admin'],
    ['credentials in the URL', 'https://user:secret@ehr.example:8443/fhir/r4/Patient/1'],
    ['a relative URL', '/fhir/r4/Patient/1'],
    ['no URL at all', 'not a url'],
  ])('%s is refused', (_why, url) => {
    expect(withinBase(base, url)).toBe(false);
  });

  it('a log line gets the origin only, never a path or query', () => {
    expect(originOf('https://ehr.example:8443/fhir/r4/Patient?name=Smith')).toBe('https://ehr.example:8443');
    expect(originOf('::')).toBe('(not a URL)');
  });
});
