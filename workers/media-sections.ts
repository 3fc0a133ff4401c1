/**
 * The media sections of the browser's offer, by `a=mid:`: a candidate names its section by `sdp_mid`, by
 * `sdp_mline_index`, or (some browsers, some clouds) by neither. libdatachannel wants the mid; the cloud
 * is told both for the agent's own candidates.
 */
export class MediaSections {
  /** The mid of each m-line, by index. */
  readonly #mids: string[] = [];

  constructor(offerSdp: string) {
    let index = -1;
    for (const line of offerSdp.split(/\r?\n/)) {
      if (line.startsWith('m=')) index++;
      else if (index >= 0 && line.startsWith('a=mid:'))
        this.#mids[index] = line.slice('a=mid:'.length).trim();
    }
  }

  /** The mid a remote candidate belongs to: as named, else by its index, else the first section's. */
  midOf(sdpMid: string | null, sdpMLineIndex: number | null): string {
    return sdpMid ?? this.#mids[sdpMLineIndex ?? 0] ?? this.#mids[0] ?? '0';
  }

  /** The m-line index of `mid` (0 if the offer does not name it). */
  indexOf(mid: string): number {
    return Math.max(0, this.#mids.indexOf(mid));
  }
}
