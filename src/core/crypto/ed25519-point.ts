/**
 * Ed25519 public key checks without a crypto library (so the node backend need not load one):
 * the 32 bytes must be the canonical encoding of a point on the curve (RFC 8032 5.1.3), and the
 * point must not be of small order (the identity as a key would accept a forged signature on
 * any message).
 */
const P = (1n << 255n) - 19n;
const D = (-121665n * inv(121666n)) % P;

function mod(a: bigint): bigint {
  const r = a % P;
  return r >= 0n ? r : r + P;
}

function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  let x = mod(b);
  let k = e;
  while (k > 0n) {
    if (k & 1n) r = (r * x) % P;
    x = (x * x) % P;
    k >>= 1n;
  }
  return r;
}

function inv(a: bigint): bigint {
  return pow(mod(a), P - 2n);
}

function decodeY(hex: string): bigint {
  let y = 0n;
  for (let i = 31; i >= 0; i--) {
    const byte = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    y = (y << 8n) | BigInt(i === 31 ? byte & 0x7f : byte);
  }
  return y;
}

/**
 * The y coordinates of the eight small-order points (orders 1, 2, 4 and 8), refused whatever
 * the sign bit says. The order-8 encodings are those of libsodium's blocklist.
 */
const SMALL_ORDER_Y = new Set<bigint>([
  1n, // identity
  P - 1n, // order 2
  0n, // order 4
  decodeY('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'), // order 8
  decodeY('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'), // order 8
]);

/** sqrt returns a square root mod p, or undefined when there is none (p ≡ 5 mod 8). */
function sqrt(a: bigint): bigint | undefined {
  const x = mod(a);
  if (x === 0n) return 0n;
  let r = pow(x, (P + 3n) / 8n);
  if (mod(r * r) === x) return r;
  r = mod(r * pow(2n, (P - 1n) / 4n));
  return mod(r * r) === x ? r : undefined;
}

/**
 * ed25519PointProblem says why 32 bytes are not a usable Ed25519 public key, or returns
 * undefined when they are.
 */
export function ed25519PointProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length !== 32) return `expected 32 bytes, got ${bytes.length}`;
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  const y = decodeY(hex);
  const sign = ((bytes[31] as number) & 0x80) !== 0;
  if (y >= P) return 'not a canonical encoding (y ≥ p)';
  // x² = (y² − 1) / (d y² + 1)
  const y2 = mod(y * y);
  const x2 = mod((y2 - 1n) * inv(mod(D * y2 + 1n)));
  const x = sqrt(x2);
  if (x === undefined) return 'not a point on the curve';
  if (x === 0n && sign) return 'not a canonical encoding (x = 0 with the sign bit set)';
  if (SMALL_ORDER_Y.has(y)) return 'a small-order point is not a usable key';
  return undefined;
}
