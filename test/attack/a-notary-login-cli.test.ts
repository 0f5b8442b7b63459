/**
 * attack-a: end to end through the CLI: `tufa notary verify IMG --server <notary on the
 * registry's host:port> --username U --password-stdin` sends the notary password to the registry.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ecdsaKey,
  forgeCollection,
  forgeRoot,
  forgedCrawl,
  Openssl,
  x509Key,
} from '../support/notary-forge.js';
import { OciSim } from '../support/oci-sim.js';
import { TUFA_BIN } from '../support/paths.js';

const SECRET = 'notary-only-password';

describe('attack-a: notary login via the CLI', function () {
  this.timeout(60_000);
  it('BROKEN? tufa notary verify sends the --password-stdin notary password to the registry of the same host (docs: "never for the registry")', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'attack-a-cli-'));
    const reg = await OciSim.start({ auth: { kind: 'basic', username: 'reg', password: 'reg-pw' } });
    try {
      const img = reg.pushImage('team/app', '1', [new TextEncoder().encode('layer')]);
      const gun = `${reg.host}/team/app`;
      const o = new Openssl(tmp);
      const leaf = o.cert({ cn: gun, days: 3650 });
      const keys = {
        root: [x509Key(leaf.pem, leaf.privateKey)],
        targets: [ecdsaKey()],
        snapshot: [ecdsaKey()],
        timestamp: [ecdsaKey()],
      };
      const c = forgeCollection({
        roots: [forgeRoot(1, keys)],
        keys,
        tags: { '1': new TextDecoder('latin1').decode(img.bytes) },
      });
      const files = forgedCrawl(reg.origin, gun, c).files as Map<string, Uint8Array>;
      const prefix = `/v2/${gun}/_trust/tuf/`;
      reg.intercept = (req, res) => {
        if (!req.url?.startsWith(prefix)) return false;
        const b = files.get(req.url.slice(prefix.length));
        if (b === undefined) res.writeHead(404);
        res.end(b === undefined ? undefined : Buffer.from(b));
        return true;
      };
      const r = await new Promise<{ code: number; out: string }>((ok) => {
        const p = execFile(
          process.execPath,
          [TUFA_BIN, 'notary', 'verify', `${gun}:1`, '--server', reg.origin, '--tofu',
            '--cache-dir', join(tmp, 'cache'), '--username', 'ci', '--password-stdin'],
          { timeout: 30_000, env: { ...process.env, DOCKER_CONFIG: join(tmp, 'nodocker') } },
          (e, stdout, stderr) => ok({ code: e ? Number((e as { code?: number }).code) : 0, out: stdout + stderr }),
        );
        p.stdin?.end(`${SECRET}\n`);
      });
      const b64 = Buffer.from(`ci:${SECRET}`).toString('base64');
      const toRegistry = reg.requests.filter(
        (q) => !q.path.includes('/_trust/') && String(q.headers.authorization ?? '').includes(b64),
      );
      assert.ok(reg.requests.some((q) => !q.path.includes('/_trust/')), `the registry was asked (exit ${r.code}): ${r.out}`);
      assert.deepEqual(
        toRegistry.map((q) => `${q.method} ${q.path}`),
        [],
        'the notary password went to the registry',
      );
    } finally {
      await reg.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
