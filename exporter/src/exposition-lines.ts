/**
 * The byte machinery under the exposition (exposition.ts): series lines that keep their
 * `name{labels} ` prefix in UTF-8 for the series' lifetime together with their last formatted
 * value, and a growing buffer they write into. Writing bytes directly costs about half of what
 * appending strings and encoding them once costs (measured at 20 000 series: the strings allocate
 * a rope node per piece and a flat copy of the whole text before the UTF-8 copy, and a single
 * character beyond Latin-1 anywhere turns that copy two-byte).
 */

/** A sample value as Prometheus reads it: float64 text that parses back to the same double. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  // Shortest round-trip form (ECMAScript Number::toString), e.g. 0.1, 1e+21, 5e-324.
  return String(v);
}

let writers = 0;

/**
 * Bytes appended to a buffer that grows as needed; `result()` views what was written. A writer
 * may continue the one its family had the last time (`previous`, finished): lines that did not
 * change since are copied from it, a run of consecutive ones in one copy.
 */
export class ByteWriter {
  /** Names this writer in the lines it wrote (a number, so that no line keeps an old buffer alive). */
  readonly id = ++writers;
  readonly previousId: number;
  private previous: Buffer | undefined;
  private buf: Buffer;
  private at = 0;
  /** A run of the previous bytes [runFrom, runTo) to be copied to runAt (copied when the run ends). */
  private runFrom = 0;
  private runTo = 0;
  private runAt = 0;

  /** Allocates a sixteenth more than the previous size, so that a few more digits fit. */
  constructor(previous?: ByteWriter) {
    this.previous = previous?.result();
    this.previousId = previous?.id ?? 0;
    const size = this.previous?.length ?? 192;
    this.buf = Buffer.allocUnsafe(size + (size >> 4) + 64);
  }

  get length(): number {
    return this.at;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /**
   * One sample line: its prefix, its value and a newline. The value is a formatted number, always
   * ASCII, copied a character at a time: for strings this short that beats a call into the encoder.
   */
  line(prefix: Uint8Array, value: string): void {
    this.reserve(prefix.length + value.length + 1);
    const buf = this.buf;
    buf.set(prefix, this.at);
    let at = this.at + prefix.length;
    for (let i = 0; i < value.length; i++) buf[at++] = value.charCodeAt(i);
    buf[at++] = 0x0a;
    this.at = at;
  }

  /** Appends the previous writer's bytes [from, to): extends the pending run when they follow it. */
  copyPrevious(from: number, to: number): void {
    if (from !== this.runTo || this.runAt + (this.runTo - this.runFrom) !== this.at) {
      this.flushRun();
      this.runFrom = from;
      this.runAt = this.at;
    }
    this.runTo = to;
    this.reserve(to - from);
    this.at += to - from;
  }

  /** The bytes written (a view, not a copy); the writer is finished and lets go of the previous bytes. */
  result(): Buffer {
    this.flushRun();
    this.previous = undefined;
    return this.buf.subarray(0, this.at);
  }

  private flushRun(): void {
    if (this.runTo > this.runFrom && this.previous) this.buf.set(this.previous.subarray(this.runFrom, this.runTo), this.runAt);
    this.runFrom = this.runTo = 0;
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + n));
    // The pending run's bytes are not there yet: they are copied into the grown buffer when it ends.
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }
}

/**
 * One series' line: its prefix, encoded once per series lifetime, its last value with that value's
 * text, and where it was last written. While the value does not change (info, start and end times,
 * idle devices, ended jobs, source states) the line is copied from the family's previous rendering,
 * so a tick formats and writes only the numbers that moved.
 */
export class SeriesLine {
  readonly prefix: Buffer;
  private value = NaN;
  private text = 'NaN';
  /** The writer that last wrote this line, and where: bytes [from, to) of its result. */
  private writer = 0;
  private from = 0;
  private to = 0;

  /** `prefix` is the series' `name{labels} `, up to and including the space before the value. */
  constructor(prefix: string) {
    this.prefix = Buffer.from(prefix, 'utf8');
  }

  write(out: ByteWriter, v: number): void {
    const from = out.length;
    // 0 and -0 are equal here and print alike ("0"); NaN never equals itself, so it is formatted each time.
    if (v === this.value && this.writer === out.previousId && this.writer !== 0) out.copyPrevious(this.from, this.to);
    else {
      if (v !== this.value) {
        this.value = v;
        this.text = formatValue(v);
      }
      out.line(this.prefix, this.text);
    }
    this.writer = out.id;
    this.from = from;
    this.to = out.length;
  }
}

/**
 * Values kept in the order a list had the last time: looked up by position and checked by key, so
 * a list that keeps its order from tick to tick (node series, a source's devices) needs no hashing.
 */
export class ByPosition<K, V> {
  private keys: K[] = [];
  private values: V[] = [];

  get(i: number, key: K, miss: (key: K) => V): V {
    if (this.keys[i] === key) return this.values[i];
    this.keys[i] = key;
    return (this.values[i] = miss(key));
  }

  /** Forgets positions past the end of this tick's list. */
  truncate(length: number): void {
    this.keys.length = Math.min(this.keys.length, length);
    this.values.length = Math.min(this.values.length, length);
  }
}
