/**
 * A browser in a child process, for the "browser vanishes" fault: the parent relays signaling over IPC
 * and SIGKILLs the child, so the agent sees the peer go silent without a close of any kind.
 *
 * Parent → child: { type: 'answer', sdp } | { type: 'candidate', candidate, mid } | { type: 'send', text }
 * Child → parent: { type: 'offer', sdp } | { type: 'candidate', candidate, mid } | { type: 'message', text }
 */
import nodeDataChannel from 'node-datachannel';
import { AgentChecksFirst } from '../../bench/load/offerer-race.js';

interface ParentMessage {
  type: 'answer' | 'candidate' | 'send';
  sdp?: string;
  candidate?: string;
  mid?: string;
  text?: string;
}

const send = (message: Record<string, unknown>) => process.send?.(message);
const pc = new nodeDataChannel.PeerConnection('vanishing-browser', {
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
dc.onMessage((raw) => send({ type: 'message', text: typeof raw === 'string' ? raw : '' }));
process.on('message', (message: ParentMessage) => {
  try {
    if (message.type === 'answer') signals.answer(message.sdp!);
    else if (message.type === 'candidate') signals.theirs(message.candidate!, message.mid!);
    else if (message.type === 'send' && dc.isOpen()) dc.sendMessage(message.text!);
  } catch {
    // A refused candidate is not fatal for a test browser.
  }
});
