/**
 * A browser that never reads, in a child process of its own: its `terminal` channel has no message
 * handler, so libdatachannel keeps what arrives in the channel's queue and, once that is full, stops
 * taking data at the SCTP level. The agent then sees a peer whose receive window stays closed, while this
 * browser keeps sending (pings, bad messages, keystrokes) as fast as told. A child process because the
 * blocked receive path would hold one of libdatachannel's shared threads in the test process.
 *
 * Parent → child: { type: 'answer', sdp } | { type: 'candidate', candidate, mid }
 *   | { type: 'send', text } | { type: 'flood', texts, perSecond } | { type: 'stop' }
 * Child → parent: { type: 'offer', sdp } | { type: 'candidate', candidate, mid } | { type: 'open' }
 *   | { type: 'sent', count }
 */
import nodeDataChannel from 'node-datachannel';
import { AgentChecksFirst } from '../../bench/load/offerer-race.js';

interface ParentMessage {
  type: 'answer' | 'candidate' | 'send' | 'flood' | 'stop';
  sdp?: string;
  candidate?: string;
  mid?: string;
  text?: string;
  texts?: string[];
  perSecond?: number;
}

const send = (message: Record<string, unknown>) => process.send?.(message);
const pc = new nodeDataChannel.PeerConnection('stalled-browser', {
  iceServers: [],
  bindAddress: '127.0.0.1',
});
// Out of the libdatachannel offerer race (bench/load/offerer-race.ts), as every test peer is.
const signals = new AgentChecksFirst(pc, (candidate, mid) => send({ type: 'candidate', candidate, mid }));
pc.onLocalDescription((sdp, type) => {
  if (type === 'offer') send({ type: 'offer', sdp: signals.offer(sdp) });
});
pc.onLocalCandidate((candidate, mid) => signals.ours(candidate.replace(/^a=/, ''), mid));
const dc = pc.createDataChannel('terminal');
dc.onOpen(() => send({ type: 'open' }));
let flood: NodeJS.Timeout | undefined;
let sent = 0;

function sendText(text: string): void {
  try {
    if (dc.isOpen()) {
      dc.sendMessage(text);
      sent++;
    }
  } catch {
    // The agent closed the channel.
  }
}

process.on('message', (message: ParentMessage) => {
  try {
    if (message.type === 'answer') signals.answer(message.sdp!);
    else if (message.type === 'candidate') signals.theirs(message.candidate!, message.mid!);
    else if (message.type === 'send') sendText(message.text!);
    else if (message.type === 'flood') {
      // Every 10 ms, what the rate asks for by now, cycling through the texts: timers on a busy
      // machine fire late, and a late tick catches up, by at most twice a tick's share.
      const texts = message.texts!;
      const perSecond = message.perSecond!;
      const perTick = Math.max(1, Math.round(perSecond / 100));
      const started = performance.now();
      let i = 0;
      clearInterval(flood);
      flood = setInterval(() => {
        const due = Math.floor(((performance.now() - started) / 1000) * perSecond) - i;
        for (let n = Math.min(due, 2 * perTick); n > 0; n--) sendText(texts[i++ % texts.length]!);
        send({ type: 'sent', count: sent });
      }, 10);
    } else if (message.type === 'stop') clearInterval(flood);
  } catch {
    // A refused candidate is not fatal for a test browser.
  }
});
