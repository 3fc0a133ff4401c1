import ndc from 'node-datachannel';
const delay = Number(process.argv[2] ?? 30);
async function pair(i) {
  const off = new ndc.PeerConnection('o'+i, { iceServers: [], bindAddress: '127.0.0.1' });
  const ans = new ndc.PeerConnection('a'+i, { iceServers: [], bindAddress: '127.0.0.1' });
  let answerSetup; let ansReady = false; const q = [];
  const t0 = performance.now(); let tc;
  const done = new Promise(r => off.onStateChange(s => { if (s === 'connected') { tc = performance.now() - t0; r(); } }));
  ans.onLocalDescription((sdp, type) => { answerSetup = /a=setup:(\w+)/.exec(sdp)?.[1]; setTimeout(() => off.setRemoteDescription(sdp, type), delay); });
  ans.onLocalCandidate((c, mid) => setTimeout(() => off.addRemoteCandidate(c, mid), delay + 1));
  off.onLocalCandidate((c, mid) => ansReady ? ans.addRemoteCandidate(c, mid) : q.push([c, mid]));
  const dcs = [];
  ans.onDataChannel(dc => dcs.push(dc));
  const dc = off.createDataChannel('terminal');
  await new Promise(r => off.onLocalDescription((sdp, type) => { ans.setRemoteDescription(sdp, type); ansReady = true; for (const [c, m] of q) ans.addRemoteCandidate(c, m); r(); }));
  await Promise.race([done, new Promise(r => setTimeout(r, 5000))]);
  off.close(); ans.close();
  return { tc: tc?.toFixed(0), answerSetup };
}
for (let k = 0; k < 3; k++) { const res = await Promise.all([0,1,2,3,4,5].map(pair)); console.log(delay, JSON.stringify(res.map(r => r.tc)), res[0].answerSetup); }
ndc.cleanup();
