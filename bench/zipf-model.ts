// What hit ratio to expect from Zipf traffic, to read the measured one
// against: each key's reads are taken as a Poisson stream of rate
// λk = reads/s × pk, and writes are ignored (they only lower the ratio).
//
// - From a cold cache, a read at time t hits if its key was read before:
//   1 − e^(−λk·t), averaged over the measured window. (The window is shorter
//   than the TTL, so nothing expires in it.)
// - In steady state with TTL T (fill on miss, expire T later): each miss is
//   followed by λk·T hits on average, so the key's ratio is λk·T / (1 + λk·T).

function zipfWeights(n: number, s: number): Float64Array {
  const p = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) sum += p[k - 1] = 1 / Math.pow(k, s);
  for (let i = 0; i < n; i++) p[i]! /= sum;
  return p;
}

export interface ZipfExpectation {
  /** Expected over the measured window, starting cold `fromSeconds` before it. */
  coldWindow: number;
  /** Expected once warm, at the same read rate and TTL. */
  steadyState: number;
}

export function expectedHitRatios(
  n: number,
  s: number,
  readsPerSecond: number,
  ttlSeconds: number,
  fromSeconds: number,
  windowSeconds: number,
): ZipfExpectation {
  const p = zipfWeights(n, s);
  let cold = 0;
  let steady = 0;
  for (const pk of p) {
    const l = readsPerSecond * pk;
    if (l === 0) continue;
    cold += pk * (1 - (Math.exp(-l * fromSeconds) - Math.exp(-l * (fromSeconds + windowSeconds))) / (l * windowSeconds));
    steady += pk * ((l * ttlSeconds) / (1 + l * ttlSeconds));
  }
  return { coldWindow: Math.round(cold * 1000) / 1000, steadyState: Math.round(steady * 1000) / 1000 };
}
