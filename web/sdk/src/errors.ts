/**
 * An error answer of the server, over HTTP or over the realtime socket, or a
 * failure to reach it.
 *
 * `code` is the server's stable code (`invalid_argument`, `unauthenticated`,
 * `not_found`, `conflict`, `rate_limited`, …, see docs/protocol.md) or one of
 * the SDK's own: `network_error` (the server could not be reached),
 * `bad_response` (an answer that is not the JSON the API promises),
 * `not_connected`, `disconnected`, `timeout` (realtime requests) and
 * `bad_message` (an undecodable server message).
 */
export class ApiError extends Error {
  /** HTTP status; 0 for errors that did not come from an HTTP answer (realtime messages, network failures). */
  status: number;
  /** Stable error code. */
  code: string;
  /** The request field at fault, when the server names one. */
  field?: string;
  /** The request id to quote to support (HTTP errors). */
  requestId?: string;
  /** How long to wait before retrying (429 and 503 answers with Retry-After). */
  retryAfterMs?: number;

  constructor(status: number, code: string, message: string, extra?: { field?: string; requestId?: string; retryAfterMs?: number; cause?: unknown }) {
    super(message, extra?.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    if (extra?.field) this.field = extra.field;
    if (extra?.requestId) this.requestId = extra.requestId;
    if (extra?.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

/** Bytes or text that do not follow the realtime protocol (docs/protocol.md). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}
