/** PtyAttachment (workers/PtyAttachment.ts): the order of PTY news, output, input and resizes, on fake PTYs. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { ErrorCodes, TermgateError, type ErrorData } from '../common/errors.js';
import type { OutboundMessage } from '../common/protocol/terminal-messages.js';
import type { PtyTarget } from '../common/protocol/worker-messages.js';
import { PtyAttachment, type Pty } from '../workers/PtyAttachment.js';
import type { Size } from '../workers/ResizeQueue.js';

/** What happened, in order, across the attachment and its PTYs. */
type Log = string[];

class FakePty extends EventEmitter {
  alive = true;
  closed = false;
  readonly written: string[] = [];
  /** Resolves the resize in flight, when the test says so. */
  finishResize: (() => void) | undefined;

  constructor(
    readonly container: string,
    readonly log: Log,
  ) {
    super();
  }

  write(data: string | Uint8Array): boolean {
    this.written.push(String(data));
    this.log.push(`write ${this.container} ${String(data)}`);
    return true;
  }

  resize(cols: number, rows: number): Promise<void> {
    this.log.push(`resize ${this.container} ${cols}x${rows}`);
    return new Promise((resolve) => (this.finishResize = resolve));
  }

  readOutput(): void {
    this.log.push(`read ${this.container}`);
  }

  pause(): void {}
  resume(): void {}

  close(): Promise<{ error?: ErrorData }> {
    this.closed = true;
    this.alive = false;
    this.log.push(`close ${this.container}`);
    return Promise.resolve({});
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** An attachment whose opens finish when the test calls `finish(container)`. */
function setup() {
  const log: Log = [];
  const ptys = new Map<string, FakePty>();
  const opening = new Map<string, () => void>();
  const refused: ErrorData[] = [];
  const attachment = new PtyAttachment({
    open: (target: PtyTarget, size: Size) =>
      new Promise<Pty>((resolve) => {
        log.push(`open ${target.container} ${size.cols}x${size.rows}`);
        opening.set(target.container, () => {
          const pty = new FakePty(target.container, log);
          ptys.set(target.container, pty);
          resolve(pty as unknown as Pty);
        });
      }),
    authorize: (container) =>
      container === 'forbidden'
        ? Promise.reject(new TermgateError(ErrorCodes.CONTAINER_NOT_ALLOWED, 'not granted'))
        : Promise.resolve({ container, containerId: `id-${container}` }),
    output: (chunk) => log.push(`output ${chunk.toString()}`),
    flushed: (bytes) => log.push(`flushed ${bytes}`),
    maxHeldInputBytes: 8,
  });
  attachment.on('tell', (m: OutboundMessage) => log.push(`tell ${JSON.stringify(m)}`));
  attachment.on('refuse', (error) => refused.push(error));
  const finish = async (container: string) => {
    await tick(); // the open starts after the previous PTY is detached
    opening.get(container)!();
    await tick();
  };
  return { attachment, log, ptys, refused, finish };
}

const target = (container: string): PtyTarget => ({ container, containerId: `id-${container}` });

describe('PtyAttachment', () => {
  it('reads the first PTY only after the browser is there and pty_connected went out', async () => {
    const { attachment, log, finish } = setup();
    const attached = attachment.attach(target('a'));
    await finish('a');
    await attached;
    assert.ok(!log.some((l) => l.startsWith('read')), 'nothing read before the browser is ready');
    attachment.browserReady();
    const told = log.indexOf('tell {"type":"pty_connected","container":"a"}');
    assert.ok(told >= 0);
    assert.equal(log[told + 1], 'read a');
    assert.equal(attachment.alive, true);
  });

  it('holds input typed during a resize and sends it after, in order', async () => {
    const { attachment, ptys, refused, finish } = setup();
    const attached = attachment.attach(target('a'));
    await finish('a');
    await attached;
    attachment.browserReady();
    attachment.resize(100, 30);
    attachment.write('ab');
    attachment.write('cd');
    attachment.write('123456789'); // past the 8-byte hold: refused once
    attachment.write('x');
    const pty = ptys.get('a')!;
    assert.deepEqual(pty.written, []);
    assert.deepEqual(
      refused.map((e) => e.code),
      [ErrorCodes.INPUT_OVERFLOW],
    );
    pty.finishResize!();
    await tick();
    assert.deepEqual(pty.written, ['ab', 'cd', 'x']);
    assert.deepEqual(attachment.size, { cols: 100, rows: 30 });
  });

  it('applies a resize that arrived while the PTY was opening once it is open', async () => {
    const { attachment, log, finish } = setup();
    const attached = attachment.attach(target('a'));
    attachment.resize(132, 43);
    await finish('a');
    await attached;
    assert.deepEqual(
      log.filter((l) => l.startsWith('open') || l.startsWith('resize')),
      ['open a 80x24', 'resize a 132x43'],
    );
  });

  it('ends a PTY that opens after a newer one was asked for, unseen', async () => {
    const { attachment, log, ptys, finish } = setup();
    attachment.browserReady();
    const first = attachment.attach(target('a'));
    const second = attachment.attach(target('b'));
    await finish('b');
    await finish('a');
    await Promise.all([first, second]);
    assert.equal(ptys.get('a')!.closed, true);
    assert.equal(ptys.get('b')!.closed, false);
    assert.ok(!log.includes('read a'), 'the stale PTY was never read');
    assert.ok(!log.includes('tell {"type":"pty_connected","container":"a"}'));
    assert.ok(log.includes('tell {"type":"pty_connected","container":"b"}'));
  });

  it('tells replaced when connect_pty moves the terminal, and serves one connect_pty at a time', async () => {
    const { attachment, log, ptys, refused, finish } = setup();
    attachment.browserReady();
    const attached = attachment.attach(target('a'));
    await finish('a');
    await attached;
    const moving = attachment.connect('b', { cols: 90 });
    await attachment.connect('c', {});
    assert.deepEqual(
      refused.map((e) => e.code),
      [ErrorCodes.PTY_BUSY],
    );
    await tick();
    await finish('b');
    await moving;
    assert.equal(ptys.get('a')!.closed, true);
    const replaced = log.indexOf('tell {"type":"pty_disconnected","reason":"replaced"}');
    const connected = log.indexOf('tell {"type":"pty_connected","container":"b"}');
    assert.ok(replaced >= 0 && connected > replaced, log.join('\n'));
    assert.ok(log.includes('open b 90x24'));
  });

  it('refuses input with no PTY, and a connect_pty the main thread denies', async () => {
    const { attachment, refused } = setup();
    attachment.write('ls\n');
    await attachment.connect('forbidden', {});
    assert.deepEqual(
      refused.map((e) => e.code),
      [ErrorCodes.PTY_NOT_CONNECTED, ErrorCodes.CONTAINER_NOT_ALLOWED],
    );
  });

  it('tells shell-exited when the shell ends', async () => {
    const { attachment, log, ptys, finish } = setup();
    attachment.browserReady();
    const attached = attachment.attach(target('a'));
    await finish('a');
    await attached;
    ptys.get('a')!.emit('exit', 'shell-exited');
    await tick();
    assert.ok(log.includes('tell {"type":"pty_disconnected","reason":"shell-exited"}'));
    assert.equal(attachment.alive, false);
  });

  it('tells container-stopped when the container stopped, and attaches again to it', async () => {
    const { attachment, log, ptys, finish } = setup();
    attachment.browserReady();
    const attached = attachment.attach(target('a'));
    await finish('a');
    await attached;
    ptys.get('a')!.emit('exit', 'container-stopped');
    await tick();
    assert.ok(log.includes('tell {"type":"pty_disconnected","reason":"container-stopped"}'));
    assert.equal(attachment.alive, false);
    const again = attachment.connect('a', {});
    await tick();
    await finish('a');
    await again;
    assert.equal(log.filter((l) => l === 'tell {"type":"pty_connected","container":"a"}').length, 2);
    assert.equal(attachment.alive, true);
  });

  it('close() waits for an open under way and ends its shell; it is idempotent', async () => {
    const { attachment, ptys, finish } = setup();
    void attachment.attach(target('a'));
    let closed = false;
    const closing = attachment.close().then(() => (closed = true));
    await tick();
    assert.equal(closed, false, 'close waits for the open');
    await finish('a');
    await closing;
    assert.equal(ptys.get('a')!.closed, true);
    assert.equal(attachment.close(), attachment.close());
    await attachment.attach(target('b'));
    assert.equal(ptys.has('b'), false, 'no PTY opens after close');
  });
});
