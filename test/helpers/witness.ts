/**
 * A witness session: a terminal running `cat` on a raw TTY, fed random bytes while a test does something
 * else to the agent. Everything it is sent must come back byte for byte, in order, and nothing else:
 * a lost, duplicated or reordered byte, or a stalled session, fails the test that owns it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BrowserPeer } from './browser-peer.js';
import type { TestCloud } from './test-cloud.js';

export interface WitnessReport {
  rounds: number;
  bytes: number;
}

export class Witness {
  readonly peer: BrowserPeer;
  #sent: Buffer[] = [];
  #sentBytes = 0;
  #received: Buffer[] = [];
  #receivedBytes = 0;
  #rounds = 0;
  #running = false;
  #loop: Promise<void> | undefined;

  private constructor(peer: BrowserPeer) {
    this.peer = peer;
  }

  /** Opens a msgpack session (raw bytes both ways) into `device` and puts `cat` on a raw TTY. */
  static async open(cloud: TestCloud, device: string): Promise<Witness> {
    const started: { witness?: Witness } = {};
    let before = '';
    const peer = await BrowserPeer.open(cloud, {
      device,
      encoding: 'msgpack',
      onOutput: (bytes) => {
        if (started.witness) started.witness.#onOutput(bytes);
        else before += bytes.toString('latin1');
      },
    });
    // raw: no echo, no output processing, no signals: the bytes come back exactly as sent. The marker
    // has no newline after it, so everything after it is cat's.
    peer.type('stty raw -echo; printf WIT-%s-NESS $((1+1)); exec cat\n');
    await peer.until(() => before.includes('WIT-2-NESS'), 'the witness to be ready', 15_000);
    started.witness = new Witness(peer);
    return started.witness;
  }

  get report(): WitnessReport {
    return { rounds: this.#rounds, bytes: this.#sentBytes };
  }

  /** Starts sending a random chunk every `intervalMs` and checking each comes back. */
  start(intervalMs = 100): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        await this.#round();
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }

  /** Stops the loop and asserts that everything sent came back exactly. */
  async stop(): Promise<WitnessReport> {
    this.#running = false;
    await this.#loop;
    assert.equal(this.#receivedBytes, this.#sentBytes, 'the witness got back as many bytes as it sent');
    assert.ok(Buffer.concat(this.#received).equals(Buffer.concat(this.#sent)), 'byte for byte, in order');
    return this.report;
  }

  close(): void {
    this.#running = false;
    this.peer.close();
  }

  /** One chunk (at most 512 bytes) out; fails if it is not all back within `stallMs`. */
  async #round(stallMs = 20_000): Promise<void> {
    // Every byte but Ctrl-P: the engine holds a Ctrl-P back until the next byte (it starts its detach
    // sequence, Ctrl-P Ctrl-Q, which ends the exec stream); that is the engine's, not the session's.
    const chunk = Buffer.from(
      randomBytes(1 + Math.floor(Math.random() * 512)).map((b) => (b === 0x10 ? 0x11 : b)),
    );
    this.#sent.push(chunk);
    this.#sentBytes += chunk.length;
    this.peer.send({ type: 'input', data: chunk });
    await this.peer.until(
      () => this.#receivedBytes >= this.#sentBytes,
      `the witness's byte ${this.#sentBytes} back`,
      stallMs,
    );
    this.#rounds++;
  }

  #onOutput(bytes: Buffer): void {
    this.#received.push(bytes);
    this.#receivedBytes += bytes.length;
  }
}
