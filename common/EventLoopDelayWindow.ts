/**
 * Event-loop delay of the current thread over fixed windows: `monitorEventLoopDelay` samples the loop
 * (a libuv timer, no work on the data path), and every `windowMs` the window's p50, p99 and max are
 * handed to `onWindow` and the histogram starts over. The main thread and every worker run one, so the
 * numbers of all threads mean the same thing: the delay over the most recent window.
 *
 * The monitor records the time between two of its timer callbacks, so an idle loop reads as the
 * resolution itself. We subtract the resolution: an idle loop reads about 0, and a number is the
 * lateness a callback on this thread actually suffered. (prom-client's `nodejs_eventloop_lag_*` does not
 * subtract its own 10 ms; that is why the two differ by about 10 ms.)
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface EventLoopDelaySample {
  p50: number;
  p99: number;
  max: number;
}

export interface EventLoopDelayWindowOptions {
  /** Length of one window; default 5000 ms. */
  windowMs?: number;
  /** Sampling resolution of the monitor; default 20 ms (each monitor wakes its thread this often; 10 ms
   * cost about 2.7 ms of CPU per second per thread on the CI machine, 20 ms half that). */
  resolutionMs?: number;
  /** Receives each window's numbers, in seconds. */
  onWindow: (sample: EventLoopDelaySample) => void;
}

const NS_PER_S = 1e9;

export class EventLoopDelayWindow {
  readonly #histogram: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  readonly #onWindow: (sample: EventLoopDelaySample) => void;
  readonly #resolutionS: number;
  #closed = false;

  constructor(options: EventLoopDelayWindowOptions) {
    this.#onWindow = options.onWindow;
    const resolutionMs = options.resolutionMs ?? 20;
    this.#resolutionS = resolutionMs / 1000;
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#histogram.enable();
    this.#timer = setInterval(() => this.#flush(), options.windowMs ?? 5000);
    this.#timer.unref();
    this.#onWindow({ p50: 0, p99: 0, max: 0 });
  }

  /** Stops sampling. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#histogram.disable();
  }

  #flush(): void {
    const h = this.#histogram;
    // An empty histogram reports min/max as sentinels; a window with no sample is reported as zero delay.
    const late = (ns: number) => (h.count === 0 ? 0 : Math.max(0, ns / NS_PER_S - this.#resolutionS));
    this.#onWindow({ p50: late(h.percentile(50)), p99: late(h.percentile(99)), max: late(h.max) });
    h.reset();
  }
}
