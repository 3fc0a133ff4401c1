/**
 * What a Socket.IO event from the cloud looks like to a handler: whatever the cloud sent. An event may
 * carry any number of arguments of any type (strings, numbers, Buffers, nested objects), and an
 * acknowledgement callback only when the sender asked for one, always as the last argument. Handlers get
 * the first argument as the payload and the ack, if there is one, wrapped so it answers at most once and
 * never throws.
 */

/** Answers an event that asked for an acknowledgement. */
export type Ack = (response: unknown) => void;

export interface InboundEvent {
  /** The first argument, unless the only argument is the ack. */
  payload: unknown;
  ack: Ack | undefined;
  /** How many arguments came besides the payload and the ack (ignored, but worth a debug line). */
  extra: number;
}

export function inboundEvent(args: readonly unknown[]): InboundEvent {
  const last = args.length > 0 ? args[args.length - 1] : undefined;
  const ack = typeof last === 'function' ? answerOnce(last as Ack) : undefined;
  const data = ack ? args.slice(0, -1) : args;
  return { payload: data[0], ack, extra: Math.max(0, data.length - 1) };
}

function answerOnce(ack: Ack): Ack {
  let answered = false;
  return (response) => {
    if (answered) return;
    answered = true;
    try {
      ack(response);
    } catch {
      // The link went away while answering; the cloud will time the request out on its side.
    }
  };
}
