/**
 * Symbolic dimension arithmetic. A symbolic dim is a string; this module reads it as a polynomial
 * with integer coefficients over atoms (dim_param names such as 'N', or `floor(P/k)` terms) and
 * prints results back in one canonical form, so equal expressions get equal strings:
 *
 *   dimMul('N', 3) = 'N*3'    dimAdd('H', -2) = 'H-2'    dimFloorDiv('H-1', 2) = 'floor((H-1)/2)'
 *   dimFloorDiv('N*6+1', 3) = 'N*2'    dimDiv('N*T*64', 'N*4') = 'T*16'
 *
 * '?' is an unknown dim and poisons everything it touches. A string that does not parse as an
 * expression (say 'batch size') is one opaque atom; non-identifier atoms print as `[batch size]`.
 * Symbols stand for dimensions, so comparisons assume every plain symbol is ≥ 1.
 */
import type { Dim } from '../ir/graph.js';

interface Term {
  coef: number;
  /** Sorted atom names; empty for the constant term. */
  atoms: string[];
}
/** Terms keyed by `atoms.join('*')`; no zero coefficients. */
type Poly = Map<string, Term>;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function constPoly(c: number): Poly {
  return c === 0 ? new Map() : new Map([['', { coef: c, atoms: [] }]]);
}

function atomPoly(name: string): Poly {
  return new Map([[name, { coef: 1, atoms: [name] }]]);
}

function addTerm(p: Poly, t: Term): void {
  const key = t.atoms.join('*');
  const coef = (p.get(key)?.coef ?? 0) + t.coef;
  if (coef === 0) p.delete(key);
  else p.set(key, { coef, atoms: t.atoms });
}

function polyAdd(a: Poly, b: Poly, sign = 1): Poly {
  const out: Poly = new Map(a);
  for (const t of b.values()) addTerm(out, { coef: sign * t.coef, atoms: t.atoms });
  return out;
}

function polyMul(a: Poly, b: Poly): Poly {
  const out: Poly = new Map();
  for (const x of a.values()) {
    for (const y of b.values()) addTerm(out, { coef: x.coef * y.coef, atoms: [...x.atoms, ...y.atoms].sort() });
  }
  return out;
}

function constantOf(p: Poly): number | undefined {
  if (p.size === 0) return 0;
  if (p.size === 1 && p.has('')) return p.get('')!.coef;
  return undefined;
}

// ---------- printing ----------

function printAtom(a: string): string {
  return IDENT.test(a) || a.startsWith('floor(') ? a : `[${a}]`;
}

function printTerm(t: Term): string {
  const atoms = t.atoms.map(printAtom);
  const mag = Math.abs(t.coef);
  if (atoms.length === 0) return String(mag);
  return mag === 1 ? atoms.join('*') : `${atoms.join('*')}*${mag}`;
}

function printPoly(p: Poly): Dim {
  const c = constantOf(p);
  if (c !== undefined) return c;
  const only = p.size === 1 ? [...p.values()][0]! : undefined;
  if (only && only.coef === 1 && only.atoms.length === 1) return only.atoms[0]!; // a symbol keeps its own name
  const terms = [...p.values()].sort((x, y) => {
    if (x.atoms.length === 0) return 1;
    if (y.atoms.length === 0) return -1;
    return x.atoms.join('*') < y.atoms.join('*') ? -1 : 1;
  });
  let s = '';
  for (const t of terms) {
    const body = printTerm(t);
    s += s === '' ? (t.coef < 0 ? `-${body}` : body) : t.coef < 0 ? `-${body}` : `+${body}`;
  }
  return s;
}

// ---------- parsing ----------

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  parse(): Poly | undefined {
    const p = this.expr();
    this.skip();
    return p && this.pos === this.s.length ? p : undefined;
  }

  private skip(): void {
    while (this.s[this.pos] === ' ') this.pos++;
  }

  private eat(tok: string): boolean {
    this.skip();
    if (this.s.startsWith(tok, this.pos)) {
      this.pos += tok.length;
      return true;
    }
    return false;
  }

  private expr(): Poly | undefined {
    let sign = this.eat('-') ? -1 : 1;
    let acc: Poly = new Map();
    for (;;) {
      const t = this.term();
      if (!t) return undefined;
      acc = polyAdd(acc, t, sign);
      if (this.eat('+')) sign = 1;
      else if (this.eat('-')) sign = -1;
      else return acc;
    }
  }

  private term(): Poly | undefined {
    let acc = this.factor();
    while (acc && this.peekStar()) {
      this.eat('*');
      const f = this.factor();
      acc = f && polyMul(acc, f);
    }
    return acc;
  }

  private peekStar(): boolean {
    this.skip();
    return this.s[this.pos] === '*';
  }

  private factor(): Poly | undefined {
    this.skip();
    const rest = this.s.slice(this.pos);
    if (rest.startsWith('floor(')) {
      this.pos += 6;
      const inner = this.expr();
      if (!inner || !this.eat('/')) return undefined;
      const k = this.factor();
      const kc = k && constantOf(k);
      if (!inner || kc === undefined || kc <= 0 || !this.eat(')')) return undefined;
      return floorDivPoly(inner, kc);
    }
    if (rest.startsWith('(')) {
      this.pos++;
      const inner = this.expr();
      return inner && this.eat(')') ? inner : undefined;
    }
    if (rest.startsWith('[')) {
      const end = this.s.indexOf(']', this.pos);
      if (end < 0) return undefined;
      const name = this.s.slice(this.pos + 1, end);
      this.pos = end + 1;
      return atomPoly(name);
    }
    const num = /^[0-9]+/.exec(rest);
    if (num) {
      this.pos += num[0].length;
      return constPoly(Number(num[0]));
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (id) {
      this.pos += id[0].length;
      return atomPoly(id[0]);
    }
    return undefined;
  }
}

/** The polynomial a dim denotes; undefined for '?'. */
function toPoly(d: Dim): Poly | undefined {
  if (typeof d === 'number') return Number.isFinite(d) ? constPoly(d) : undefined;
  if (d === '?' || d === '') return undefined;
  if (IDENT.test(d)) return atomPoly(d);
  return new Parser(d).parse() ?? atomPoly(d);
}

function integral(p: Poly): boolean {
  for (const t of p.values()) if (!Number.isInteger(t.coef)) return false;
  return true;
}

/** floor(p / k) for an integer k > 0: terms divisible by k leave the floor, the rest stays in one atom. */
function floorDivPoly(p: Poly, k: number): Poly {
  if (k === 1) return p;
  const q: Poly = new Map();
  const r: Poly = new Map();
  for (const t of p.values()) {
    if (t.coef % k === 0) addTerm(q, { coef: t.coef / k, atoms: t.atoms });
    else addTerm(r, t);
  }
  const rc = constantOf(r);
  if (rc !== undefined) return polyAdd(q, constPoly(Math.floor(rc / k)));
  const printed = printPoly(r);
  const inner = typeof printed === 'number' || IDENT.test(printed) ? String(printed) : `(${printed})`;
  return polyAdd(q, atomPoly(`floor(${inner}/${k})`));
}

// ---------- public arithmetic ----------

function lift(a: Dim, b: Dim, f: (x: Poly, y: Poly) => Poly | undefined, num: (x: number, y: number) => number): Dim {
  if (typeof a === 'number' && typeof b === 'number') return num(a, b);
  const x = toPoly(a);
  const y = toPoly(b);
  if (!x || !y || !integral(x) || !integral(y)) return '?';
  const r = f(x, y);
  return r ? printPoly(r) : '?';
}

/** a + b */
export function dimAdd(a: Dim, b: Dim): Dim {
  return lift(a, b, (x, y) => polyAdd(x, y), (x, y) => x + y);
}

/** a − b */
export function dimSub(a: Dim, b: Dim): Dim {
  return lift(a, b, (x, y) => polyAdd(x, y, -1), (x, y) => x - y);
}

/** a · b */
export function dimMul(a: Dim, b: Dim): Dim {
  return lift(a, b, polyMul, (x, y) => x * y);
}

/** Product of all dims (1 for none). */
export function dimProduct(ds: readonly Dim[]): Dim {
  return ds.reduce<Dim>((acc, d) => dimMul(acc, d), 1);
}

/** floor(a / b); b must be a positive integer unless both are numbers. */
export function dimFloorDiv(a: Dim, b: Dim): Dim {
  return lift(a, b, (x, y) => {
    const k = constantOf(y);
    if (k === undefined) return exactDiv(x, y);
    return k > 0 ? floorDivPoly(x, k) : undefined;
  }, (x, y) => Math.floor(x / y));
}

/** ceil(a / b) for a positive integer b. */
export function dimCeilDiv(a: Dim, b: Dim): Dim {
  if (typeof b === 'number' && b > 0) return dimFloorDiv(dimAdd(a, b - 1), b);
  return typeof a === 'number' && typeof b === 'number' ? Math.ceil(a / b) : '?';
}

/** a / b when it divides exactly (a product divided by one of its factors); '?' otherwise. */
export function dimDiv(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return b !== 0 && a % b === 0 ? a / b : '?';
  return lift(a, b, exactDiv, (x, y) => x / y);
}

function exactDiv(x: Poly, y: Poly): Poly | undefined {
  if (y.size === 0) return undefined;
  if (printPoly(x) === printPoly(y)) return constPoly(1);
  if (y.size !== 1) return undefined;
  const d = [...y.values()][0]!;
  const out: Poly = new Map();
  for (const t of x.values()) {
    if (t.coef % d.coef !== 0) return undefined;
    const rest = [...t.atoms];
    for (const a of d.atoms) {
      const i = rest.indexOf(a);
      if (i < 0) return undefined;
      rest.splice(i, 1);
    }
    addTerm(out, { coef: t.coef / d.coef, atoms: rest });
  }
  return out;
}

/** Canonical form of a dim ('N*3' for '3*N'); numbers and '?' unchanged. */
export function dimNormalize(d: Dim): Dim {
  if (typeof d === 'number' || d === '?') return d;
  const p = toPoly(d);
  return p ? printPoly(p) : '?';
}

/**
 * Sign of a - b where it can be decided: -1, 0, 1, or undefined. Assumes plain symbols are ≥ 1 and
 * floor terms ≥ 0 (they stand for dimensions).
 */
export function dimCompare(a: Dim, b: Dim): -1 | 0 | 1 | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  const d = dimSub(a, b);
  if (typeof d === 'number') return d < 0 ? -1 : d > 0 ? 1 : 0;
  const p = toPoly(d);
  if (!p) return undefined;
  // Each term is at least coef·1 (plain symbols ≥ 1, the constant term itself) or coef·0 (floor terms).
  let bound = 0;
  let allPos = true;
  let allNeg = true;
  for (const t of p.values()) {
    const least = t.atoms.some((x) => x.startsWith('floor(')) ? 0 : 1;
    if (t.coef > 0) allNeg = false;
    if (t.coef < 0) allPos = false;
    bound += t.coef * least;
  }
  if (allPos && bound > 0) return 1;
  if (allNeg && bound < 0) return -1;
  return undefined;
}

/** Every dim a plain number. */
export function isStaticShape(s: readonly Dim[] | undefined): s is number[] {
  return s !== undefined && s.every((d) => typeof d === 'number');
}

/** Evaluates a dim with the given symbol values; undefined for '?' or an unbound symbol. */
export function evalDim(d: Dim, env: ReadonlyMap<string, number>): number | undefined {
  if (typeof d === 'number') return d;
  if (env.has(d)) return env.get(d);
  const p = toPoly(d);
  if (!p) return undefined;
  let sum = 0;
  for (const t of p.values()) {
    let v = t.coef;
    for (const a of t.atoms) {
      let x: number | undefined;
      if (env.has(a)) x = env.get(a);
      else if (a.startsWith('floor(')) {
        const slash = a.lastIndexOf('/');
        const inner = evalDim(a.slice(6, slash), env);
        x = inner === undefined ? undefined : Math.floor(inner / Number(a.slice(slash + 1, -1)));
      }
      if (x === undefined) return undefined;
      v *= x;
    }
    sum += v;
  }
  return sum;
}
