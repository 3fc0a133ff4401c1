/**
 * The closed set of errors termgate reports. Codes are stable strings: the cloud, browsers, logs and
 * metrics key on them, so a code is never renamed, only added.
 */
export const ErrorCodes = {
  INVALID_PAYLOAD: 'TG_ERR_INVALID_PAYLOAD',
  INVALID_MESSAGE: 'TG_ERR_INVALID_MESSAGE',
  MESSAGE_TOO_LARGE: 'TG_ERR_MESSAGE_TOO_LARGE',
  UNKNOWN_MESSAGE_TYPE: 'TG_ERR_UNKNOWN_MESSAGE_TYPE',
  DUPLICATE_SESSION: 'TG_ERR_DUPLICATE_SESSION',
  UNKNOWN_SESSION: 'TG_ERR_UNKNOWN_SESSION',
  BAD_SDP: 'TG_ERR_BAD_SDP',
  CONTAINER_NOT_ALLOWED: 'TG_ERR_CONTAINER_NOT_ALLOWED',
  CONTAINER_NOT_FOUND: 'TG_ERR_CONTAINER_NOT_FOUND',
  CONTAINER_NOT_RUNNING: 'TG_ERR_CONTAINER_NOT_RUNNING',
  CAPACITY_HOST: 'TG_ERR_CAPACITY_HOST',
  CAPACITY_CONTAINER: 'TG_ERR_CAPACITY_CONTAINER',
  RATE_LIMITED: 'TG_ERR_RATE_LIMITED',
  SHUTTING_DOWN: 'TG_ERR_SHUTTING_DOWN',
  DOCKER_UNAVAILABLE: 'TG_ERR_DOCKER_UNAVAILABLE',
  PTY_FAILED: 'TG_ERR_PTY_FAILED',
  PTY_NOT_CONNECTED: 'TG_ERR_PTY_NOT_CONNECTED',
  INPUT_OVERFLOW: 'TG_ERR_INPUT_OVERFLOW',
  PEER_FAILED: 'TG_ERR_PEER_FAILED',
  WORKER_DIED: 'TG_ERR_WORKER_DIED',
  // The cloud stand-in's gate (standin/cloud/): who may talk to it at all.
  AGENT_TOKEN_REFUSED: 'TG_ERR_AGENT_TOKEN_REFUSED',
  BROWSER_TOKEN_REFUSED: 'TG_ERR_BROWSER_TOKEN_REFUSED',
  HOST_REFUSED: 'TG_ERR_HOST_REFUSED',
  ORIGIN_REFUSED: 'TG_ERR_ORIGIN_REFUSED',
  INTERNAL: 'TG_ERR_INTERNAL',
  /** connect_pty to a container the cloud did not authorize for this session (offer `device_id`/`devices`). */
  CONTAINER_NOT_GRANTED: 'TG_ERR_CONTAINER_NOT_GRANTED',
  /** connect_pty while the session's previous one is still being set up. */
  PTY_BUSY: 'TG_ERR_PTY_BUSY',
  /** A Docker engine call did not answer within `--docker-timeout`. */
  DOCKER_TIMEOUT: 'TG_ERR_DOCKER_TIMEOUT',
  /** The browser did not take the session's output for `--slow-consumer-timeout`. */
  SLOW_CONSUMER: 'TG_ERR_SLOW_CONSUMER',
  /** A shell's processes could not be seen or ended from the host. */
  SHELL_CLEANUP_FAILED: 'TG_ERR_SHELL_CLEANUP_FAILED',
  /** `--ice-udp-port`: this worker holds no port of the range (its predecessor's is not free yet). */
  ICE_PORT_UNAVAILABLE: 'TG_ERR_ICE_PORT_UNAVAILABLE',
  /** An `ack` beyond the output sent, or behind an earlier one. */
  INVALID_ACK: 'TG_ERR_INVALID_ACK',
  /** A resume offer for no session waiting to be resumed here, with a wrong token, or after the grace. */
  RESUME_REFUSED: 'TG_ERR_RESUME_REFUSED',
  /** The browser's data channel refused a message larger than its max-message-size. */
  OUTPUT_REFUSED: 'TG_ERR_OUTPUT_REFUSED',
  /** A resume offer asks for output from an offset the session's replay buffer no longer holds. */
  RESUME_OFFSET_OUT_OF_RANGE: 'TG_ERR_RESUME_OFFSET_OUT_OF_RANGE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** What crosses a thread or a socket: structured clone drops an Error's class and extra fields. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
}

export class TermgateError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'TermgateError';
    this.code = code;
  }

  toData(): ErrorData {
    return { code: this.code, message: this.message };
  }

  static fromData(data: ErrorData): TermgateError {
    return new TermgateError(data.code, data.message);
  }
}

/** Normalises anything thrown into error data, keeping a TermgateError's code. */
export function toErrorData(err: unknown, fallback: ErrorCode = ErrorCodes.INTERNAL): ErrorData {
  if (err instanceof TermgateError) return err.toData();
  const message = err instanceof Error ? err.message : String(err);
  return { code: fallback, message };
}
