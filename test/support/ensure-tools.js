// Installs the Debian packages the integration tests talk to, when they are missing:
// docker-registry (CNCF distribution), skopeo, umoci, apache2-utils (htpasswd), openssl.
// Runs apt-get only as root on a Debian-like system; otherwise it says which tests will skip.
import { spawnSync } from 'node:child_process';

const PACKAGES = [
  { bin: 'docker-registry', pkg: 'docker-registry' },
  { bin: 'skopeo', pkg: 'skopeo' },
  { bin: 'umoci', pkg: 'umoci' },
  { bin: 'htpasswd', pkg: 'apache2-utils' },
  { bin: 'openssl', pkg: 'openssl' },
  { bin: 'notary-server', pkg: 'notary' },
];

function has(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

export function ensureTools() {
  const missing = PACKAGES.filter((p) => !has(p.bin));
  if (missing.length === 0) return true;
  const names = missing.map((p) => p.pkg);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !has('apt-get')) {
    process.stderr.write(
      `tests: missing ${names.join(', ')} (not root or no apt-get): integration tests will skip\n`,
    );
    return false;
  }
  process.stderr.write(`tests: installing ${names.join(', ')} with apt-get\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const opts = { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 };
  spawnSync('apt-get', ['update', '-qq'], opts);
  const r = spawnSync(
    'apt-get',
    ['install', '-y', '-qq', '--no-install-recommends', ...names],
    opts,
  );
  if (r.status !== 0) {
    process.stderr.write(
      `tests: apt-get install failed (${r.status}): integration tests will skip\n`,
    );
    return false;
  }
  return PACKAGES.every((p) => has(p.bin));
}
