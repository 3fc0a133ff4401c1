/**
 * What each message a browser sends on its `terminal` channel asks of its session. Input and resizes go
 * to the PTY side in the order they came (PtyAttachment keeps that order against the shell), a ping is
 * answered, `close` ends the session, `connect_pty` moves the terminal to another container. Messages
 * arrive decoded and validated (TerminalChannel); this only routes them, the session wires the targets.
 */
import type { SessionMessage } from '../common/protocol/terminal-messages.js';
import type { PtyAttachment } from './PtyAttachment.js';

/** Where browser messages go. */
export interface BrowserMessageTargets {
  pty: Pick<PtyAttachment, 'write' | 'resize' | 'connect'>;
  /** Answers a ping. */
  pong: () => void;
  /** The browser asked to end its session. */
  close: () => void;
}

/** Routes one browser message; throws only what a target throws. */
export function dispatchBrowserMessage(message: SessionMessage, to: BrowserMessageTargets): void {
  switch (message.type) {
    case 'input':
      to.pty.write(message.data);
      break;
    case 'resize':
      to.pty.resize(message.cols, message.rows);
      break;
    case 'ping':
      to.pong();
      break;
    case 'close':
      to.close();
      break;
    case 'connect_pty':
      // Not awaited: its outcome reaches the browser through the attachment (pty_connected or an error).
      void to.pty.connect(message.container, { cols: message.cols, rows: message.rows });
      break;
    default:
      message satisfies never;
  }
}
