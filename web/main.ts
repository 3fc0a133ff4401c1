/**
 * The termgate page: a full-window xterm.js terminal, a device picker, the connection state, and a
 * reconnect button. `?device=NAME` connects at load; `?encoding=json` picks JSON mode (default msgpack).
 * When the container stops under a session, a reattach button (and the auto-reattach setting, kept in
 * localStorage) attaches the same session again once it runs.
 * A session whose connection drops resumes by itself ("reconnecting…"); a reload of the tab resumes it
 * too, from what SessionStore kept for the tab (the new screen shows what was printed after the last
 * output the old one had shown).
 * `#token=…` is the browser token the stand-in printed with the URL: it is required by the signaling
 * handshake and `/api/devices`, kept for this tab only, and taken out of the address bar.
 */
import './style.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { io } from 'socket.io-client';
import {
  TerminalSession,
  type CloudSocket,
  type Encoding,
  type PageSessionState,
} from './TerminalSession.js';
import { describePath, type ConnectionPath } from './connection-path.js';
import { loadSession, saveSession, type StoredSession } from './SessionStore.js';

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
const reattachButton = $<HTMLButtonElement>('reattach');
const autoReattachBox = $<HTMLInputElement>('auto-reattach');
const refreshButton = $<HTMLButtonElement>('refresh');
const stateLabel = $<HTMLSpanElement>('state');
const pathLabel = $<HTMLSpanElement>('path');

const TOKEN_KEY = 'termgate.token';
const AUTO_REATTACH_KEY = 'termgate.autoReattach';
const NO_TOKEN = 'no access token: open the URL termgate printed (it ends in #token=…)';

/**
 * The browser token: read from the URL's fragment (browsers never send a fragment to a server, so it
 * stays out of every log), kept in sessionStorage so a reload of this tab still works, and removed from
 * the address bar so it does not end up in a bookmark, a screenshot or the history.
 */
function takeToken(): string | undefined {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get('token');
  try {
    if (fromUrl) sessionStorage.setItem(TOKEN_KEY, fromUrl);
  } catch {
    // Storage disabled: the token lives in this page only.
  }
  if (fromUrl) history.replaceState(history.state, '', location.pathname + location.search);
  try {
    return fromUrl ?? sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return fromUrl ?? undefined;
  }
}

/** The auto-reattach setting: a preference, kept across tabs and reloads (no secret in it). */
function loadAutoReattach(): boolean {
  try {
    return localStorage.getItem(AUTO_REATTACH_KEY) === 'on';
  } catch {
    return false;
  }
}

function saveAutoReattach(on: boolean): void {
  try {
    localStorage.setItem(AUTO_REATTACH_KEY, on ? 'on' : 'off');
  } catch {
    // Storage disabled: the setting lasts as long as the page.
  }
}

const token = takeToken();
autoReattachBox.checked = loadAutoReattach();
const params = new URLSearchParams(location.search);
if (params.get('encoding') === 'json') encodingSelect.value = 'json';

const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, convertEol: false });
const fit = new FitAddon();
term.loadAddon(fit);
term.open($('terminal'));
fit.fit();

const socket: CloudSocket = io({ transports: ['websocket'], auth: { token: token ?? '' } });
let session: TerminalSession | undefined;
/** Counts connect() calls, so one that finished loading the ICE servers late gives way to a newer one. */
let attempts = 0;

function showPath(path: ConnectionPath | undefined): void {
  pathLabel.hidden = path === undefined;
  pathLabel.dataset.path = path === undefined ? '' : path.relayed ? 'relayed' : 'direct';
  pathLabel.textContent = path === undefined ? '' : describePath(path);
}

/**
 * The peer connection's STUN/TURN servers, as the cloud gives them to this page; none (direct paths
 * only) when it gives none.
 */
async function loadIceConfig(): Promise<RTCConfiguration> {
  try {
    const res = await fetch('/api/ice-servers', {
      cache: 'no-store',
      headers: { authorization: `Bearer ${token ?? ''}` },
    });
    if (!res.ok) return { iceServers: [] };
    const body = (await res.json()) as { ice_servers?: RTCIceServer[]; ice_transport_policy?: string };
    return {
      iceServers: body.ice_servers ?? [],
      iceTransportPolicy: body.ice_transport_policy === 'relay' ? 'relay' : 'all',
    };
  } catch {
    return { iceServers: [] };
  }
}

function showState(state: PageSessionState | 'idle', detail: string): void {
  if (state !== 'connected') showPath(undefined);
  stateLabel.dataset.state = state;
  stateLabel.textContent = detail;
  connectButton.textContent = state === 'idle' ? 'Connect' : 'Reconnect';
  reattachButton.hidden = state !== 'detached';
}

async function loadDevices(): Promise<void> {
  const previous = deviceSelect.value || params.get('device') || '';
  let devices: DeviceListing[] = [];
  try {
    const res = await fetch('/api/devices', {
      cache: 'no-store',
      headers: { authorization: `Bearer ${token ?? ''}` },
    });
    const body = (await res.json()) as { devices?: DeviceListing[]; message?: string };
    if (!res.ok)
      showState('disconnected', token ? `device list refused: ${body.message ?? res.status}` : NO_TOKEN);
    devices = body.devices ?? [];
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

/** Figures for tests and the bench, on the page's clock: output shown by the terminal, and when. */
const figures = { outputBytes: 0, lastReceivedAt: 0, lastShownAt: 0, lastKeyAt: 0, outputBytesAtKey: 0 };

/** How often, at most, the shown offset is written to sessionStorage while output flows. */
const PERSIST_EVERY_MS = 250;
let persistTimer: ReturnType<typeof setTimeout> | undefined;

/** Keeps what a reload needs to resume the session (or forgets it once the session ended). */
function persistSession(): void {
  clearTimeout(persistTimer);
  persistTimer = undefined;
  saveSession(session?.stored);
}

function persistSoon(): void {
  persistTimer ??= setTimeout(persistSession, PERSIST_EVERY_MS);
}

/** Output to the terminal; acked (`consumed`) once xterm.js has processed it, so its queue stays bounded. */
function show(data: string | Uint8Array, consumed: () => void): void {
  figures.lastReceivedAt = performance.now();
  term.write(data, () => {
    figures.outputBytes += data.length;
    figures.lastShownAt = performance.now();
    consumed();
    persistSoon();
  });
}

async function connect(): Promise<void> {
  const attempt = ++attempts;
  const deviceId = deviceSelect.value;
  session?.close('replaced');
  session = undefined;
  persistSession();
  if (!token) {
    showState('disconnected', NO_TOKEN);
    return;
  }
  if (!deviceId) {
    showState('idle', 'pick a device');
    return;
  }
  term.reset();
  await openSession(attempt, deviceId, encodingSelect.value as Encoding);
}

/** A session a previous page of this tab left: resumed on a fresh screen. */
async function resume(stored: StoredSession): Promise<void> {
  const attempt = ++attempts;
  encodingSelect.value = stored.encoding;
  if ([...deviceSelect.options].some((o) => o.value === stored.deviceId))
    deviceSelect.value = stored.deviceId;
  await openSession(attempt, stored.deviceId, stored.encoding, stored);
}

async function openSession(
  attempt: number,
  deviceId: string,
  encoding: Encoding,
  stored?: StoredSession,
): Promise<void> {
  const ice = await loadIceConfig();
  if (attempt !== attempts) return; // another connect began meanwhile
  const current = new TerminalSession({
    ice,
    socket,
    deviceId,
    encoding,
    cols: term.cols,
    rows: term.rows,
    onState: (state, detail) => {
      if (session !== current) return;
      showState(state, detail);
      persistSession();
      if (state === 'connected') term.focus();
      if (state === 'disconnected') term.write(`\r\n\x1b[2m[termgate] disconnected: ${detail}\x1b[0m\r\n`);
    },
    onOutput: show,
    onNotice: (text) => term.write(`\r\n\x1b[31m[termgate] ${text}\x1b[0m\r\n`),
    autoReattach: autoReattachBox.checked,
    onPath: (path) => {
      if (session === current) showPath(path);
    },
    ...(stored && { resume: stored }),
  });
  session = current;
  current.start().catch((err: unknown) => current.close(`could not create the offer: ${String(err)}`));
}

socket.on('webrtc:offer', (answer) => {
  if (session && answer.session_id === session.id) void session.handleAnswer(answer);
});
socket.on('webrtc:ice', (ice) => {
  if (session && ice.session_id === session.id) void session.handleIce(ice);
});
socket.on('webrtc:disconnect', (msg) => {
  if (session && msg.session_id === session.id)
    session.close(msg.reason ?? 'ended by the cloud', undefined, true);
});
socket.on('disconnect', () => session?.connectionLost('signaling lost', true));
// A refused handshake (token, origin) is not retried by the client: say why.
socket.on('connect_error', (err: Error) => {
  if (!socket.active) showState('disconnected', token ? `signaling refused: ${err.message}` : NO_TOKEN);
});

term.onData((data) => session?.sendInput(data));
// A key, not the terminal's own replies (the shell's cursor-position queries also come out of onData).
term.onKey(() => {
  figures.lastKeyAt = performance.now();
  figures.outputBytesAtKey = figures.outputBytes;
});
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

deviceSelect.addEventListener('change', () => void connect());
encodingSelect.addEventListener('change', () => session && void connect());
connectButton.addEventListener('click', () => void connect());
reattachButton.addEventListener('click', () => session?.reattach());
autoReattachBox.addEventListener('change', () => {
  saveAutoReattach(autoReattachBox.checked);
  session?.setAutoReattach(autoReattachBox.checked);
});
refreshButton.addEventListener('click', () => void loadDevices());
// A session that can be resumed is left to the agent's grace: this may be a reload. Else it ends here.
addEventListener('pagehide', () => {
  if (session?.stored) persistSession();
  else session?.close('tab closed');
});

/** For tests and the curious: the terminal, the session (state, id), and the screen as text. */
Object.assign(window, {
  termgate: {
    term,
    figures,
    get state(): string {
      return stateLabel.dataset.state ?? 'idle';
    },
    /** The current session's id: a reattach keeps it, a reconnect makes a new one. */
    get sessionId(): string | undefined {
      return session?.id;
    },
    screenText(): string {
      const buf = term.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
      return lines.join('\n');
    },
  },
});

showState(token ? 'idle' : 'disconnected', token ? 'pick a device' : NO_TOKEN);
await loadDevices();
const left = token ? loadSession() : undefined;
if (left) await resume(left);
else if (params.get('device') && deviceSelect.value) await connect();
