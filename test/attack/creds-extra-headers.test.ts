/**
 * Attack on the fetcher's promise for its extra headers: HttpFetcher's constructor documents
 * `headers` (e.g. for a private repository) as "sent to the first origin only, never across a
 * redirect to another origin", but only Authorization/Cookie/Proxy-Authorization are dropped:
 * an API-key header (`X-API-Key`, GitLab `Private-Token`, `X-JFrog-Art-Api`) follows the redirect.
 */
import assert from 'node:assert/strict';
import { HttpFetcher } from '../../src/client/http-fetcher.js';
import { Srv } from './servers.js';

describe('attack: TUF fetcher extra credential headers across a redirect', function () {
  this.timeout(10_000);
  it('an API-key header given to HttpFetcher does not reach a redirect target on another origin', async () => {
    const a = await new Srv().start();
    const b = await new Srv().start();
    a.handler = (_q, r) => void r.writeHead(302, { location: `${b.url}/1.root.json` }).end();
    b.handler = (_q, r) => void r.writeHead(200).end('{}');
    const f = new HttpFetcher(
      { retries: 0 },
      { 'x-api-key': 'APIKEY-SECRET', 'private-token': 'GITLAB-SECRET', authorization: 'Bearer AUTH-SECRET' },
    );
    try {
      await f.fetch(`${a.url}/1.root.json`, 1000);
    } finally {
      await f.close();
      await Promise.all([a.stop(), b.stop()]);
    }
    assert.equal(a.log[0]?.headers['x-api-key'], 'APIKEY-SECRET', 'the first origin gets it');
    const leaked = b.log.flatMap((s) =>
      Object.entries(s.headers).filter(([, v]) => /SECRET/.test(String(v))).map(([k]) => k),
    );
    assert.deepEqual(leaked, [], `sent to the redirect target: ${leaked.join(', ')}`);
  });
});
