/**
 * The termgate page: a full-window xterm.js terminal, a device picker, the connection state, and a
 * reconnect button. `?device=NAME` connects at load; `?encoding=json` picks JSON mode (default msgpack).
 */
import './style.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { io } from 'socket.io-client';
import { TerminalSession, type Encoding, type SessionState } from './TerminalSession.js';

interface DeviceListing {
  name: string;
  state: string;
  agent_id: string;
}

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
}

const deviceSelect = $<HTMLSelectElement>('device');
const encodingSelect = $<HTMLSelectElement>('encoding');
const connectButton = $<HTMLButtonElement>('connect');
const refreshButton = $<HTMLButtonElement>('refresh');
const stateLabel = $<HTMLSpanElement>('state');

const params = new URLSearchParams(location.search);
if (params.get('encoding') === 'json') encodingSelect.value = 'json';

const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, convertEol: false });
const fit = new FitAddon();
term.loadAddon(fit);
term.open($('terminal'));
fit.fit();

const socket = io({ transports: ['websocket'] });
let session: TerminalSession | undefined;

function showState(state: SessionState | 'idle', detail: string): void {
  stateLabel.dataset.state = state;
  stateLabel.textContent = detail;
  connectButton.textContent = state === 'idle' ? 'Connect' : 'Reconnect';
}

async function loadDevices(): Promise<void> {
  const previous = deviceSelect.value || params.get('device') || '';
  let devices: DeviceListing[] = [];
  try {
    const res = await fetch('/api/devices', { cache: 'no-store' });
    devices = ((await res.json()) as { devices: DeviceListing[] }).devices;
  } catch {
    showState('disconnected', 'could not load the device list');
  }
  deviceSelect.replaceChildren(
    ...devices.map((d) => {
      const option = new Option(`${d.name} (${d.state})`, d.name);
      option.dataset.agent = d.agent_id;
      return option;
    }),
  );
  if (devices.length === 0) deviceSelect.append(new Option('no devices', ''));
  if (devices.some((d) => d.name === previous)) deviceSelect.value = previous;
}

function connect(): void {
  const deviceId = deviceSelect.value;
  session?.close('replaced');
  session = undefined;
  if (!deviceId) {
    showState('idle', 'pick a device');
    return;
  }
  term.reset();
  const current = new TerminalSession({
    socket,
    deviceId,
    encoding: encodingSelect.value as Encoding,
    cols: term.cols,
    rows: term.rows,
    onState: (state, detail) => {
      if (session !== current) return;
      showState(state, detail);
      if (state === 'connected') term.focus();
      if (state === 'disconnected') term.write(`\r\n\x1b[2m[termgate] disconnected: ${detail}\x1b[0m\r\n`);
    },
    onOutput: (data) => term.write(data),
    onNotice: (text) => term.write(`\r\n\x1b[31m[termgate] ${text}\x1b[0m\r\n`),
  });
  session = current;
  current.start().catch((err: unknown) => current.close(`could not create the offer: ${String(err)}`));
}

socket.on('webrtc:offer', (answer: { session_id?: string; status: 'success' | 'error' }) => {
  if (session && answer.session_id === session.id) void session.handleAnswer(answer);
});
socket.on('webrtc:ice', (ice: { session_id: string; candidate: string }) => {
  if (session && ice.session_id === session.id) void session.handleIce(ice);
});
socket.on('webrtc:disconnect', (msg: { session_id: string; reason?: string }) => {
  if (session && msg.session_id === session.id)
    session.close(msg.reason ?? 'ended by the cloud', undefined, true);
});
socket.on('disconnect', () => session?.close('signaling lost', undefined, true));

term.onData((data) => session?.sendInput(data));
term.onResize(({ cols, rows }) => session?.resize(cols, rows));

let fitPending = false;
new ResizeObserver(() => {
  if (fitPending) return;
  fitPending = true;
  requestAnimationFrame(() => {
    fitPending = false;
    fit.fit();
  });
}).observe($('terminal'));

deviceSelect.addEventListener('change', connect);
encodingSelect.addEventListener('change', () => session && connect());
connectButton.addEventListener('click', connect);
refreshButton.addEventListener('click', () => void loadDevices());
addEventListener('pagehide', () => session?.close('tab closed'));

/** For tests and the curious: the terminal, the session state, and the screen as text. */
Object.assign(window, {
  termgate: {
    term,
    get state(): string {
      return stateLabel.dataset.state ?? 'idle';
    },
    screenText(): string {
      const buf = term.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
      return lines.join('\n');
    },
  },
});

showState('idle', 'pick a device');
await loadDevices();
if (params.get('device') && deviceSelect.value) connect();
