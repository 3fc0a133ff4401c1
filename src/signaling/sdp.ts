/** The few facts termgate reads from an SDP: which media section each `mid` names. */

/** Maps each `a=mid:` of the SDP to the index of its m-line. */
export function midsByIndex(sdp: string): string[] {
  const mids: string[] = [];
  let index = -1;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) index++;
    else if (index >= 0 && line.startsWith('a=mid:')) mids[index] = line.slice('a=mid:'.length).trim();
  }
  return mids;
}
