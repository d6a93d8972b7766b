// The tic-tac-toe game's messages (games/tictactoe): one-byte moves, JSON
// states and errors. Pure functions, no I/O.

export const OP_MOVE = 1;
export const OP_STATE = 2;
export const OP_ERROR = 3;

/** The OpState payload. */
export interface State {
  /** 9 characters, row-major: "X", "O" or "." for empty. */
  board: string;
  x: string;
  o: string;
  /** "X" or "O" while playing, "" otherwise. */
  turn: string;
  status: "waiting" | "playing" | "won" | "draw" | "forfeit";
  winner?: string;
  moves: number;
}

const statuses = new Set(["waiting", "playing", "won", "draw", "forfeit"]);

/** Decodes an OpState payload; throws on anything else. */
export function decodeState(b: Uint8Array): State {
  const v = JSON.parse(new TextDecoder().decode(b)) as Partial<State>;
  if (!v || typeof v.board !== "string" || !/^[XO.]{9}$/.test(v.board) || typeof v.status !== "string" || !statuses.has(v.status)) {
    throw new Error("tictactoe: not a state");
  }
  return {
    board: v.board,
    x: typeof v.x === "string" ? v.x : "",
    o: typeof v.o === "string" ? v.o : "",
    turn: typeof v.turn === "string" ? v.turn : "",
    status: v.status,
    ...(typeof v.winner === "string" && v.winner !== "" ? { winner: v.winner } : {}),
    moves: typeof v.moves === "number" ? v.moves : 0,
  };
}

/** Decodes an OpError payload to its code. */
export function decodeError(b: Uint8Array): string {
  try {
    const v = JSON.parse(new TextDecoder().decode(b)) as { error?: unknown };
    return typeof v.error === "string" ? v.error : "unknown";
  } catch {
    return "unknown";
  }
}

/** Encodes a move to cell 0..8. */
export function encodeMove(cell: number): Uint8Array {
  if (!Number.isInteger(cell) || cell < 0 || cell > 8) throw new RangeError(`tictactoe: a cell is 0..8, got ${cell}`);
  return Uint8Array.of(cell);
}

/** The mark an account plays in s, or "" for a spectator. */
export function markOf(s: State, accountId: string): "X" | "O" | "" {
  if (s.x !== "" && s.x === accountId) return "X";
  if (s.o !== "" && s.o === accountId) return "O";
  return "";
}

const lines = [
  [0, 1, 2],
  [3, 4, 5],
  [6, 7, 8],
  [0, 3, 6],
  [1, 4, 7],
  [2, 5, 8],
  [0, 4, 8],
  [2, 4, 6],
];

/** The cells of a completed line on board, or []. */
export function winningLine(board: string): number[] {
  for (const l of lines) {
    const c = board[l[0]!];
    if (c !== "." && c === board[l[1]!] && c === board[l[2]!]) return l;
  }
  return [];
}

/** What the player with accountId should read about s. */
export function statusText(s: State, accountId: string): string {
  const mine = markOf(s, accountId);
  switch (s.status) {
    case "waiting":
      return "Waiting for an opponent to join…";
    case "playing":
      if (mine === "") return `${s.turn} to play`;
      return s.turn === mine ? `Your turn (you are ${mine})` : `Opponent's turn (you are ${mine})`;
    case "won":
      return s.winner === accountId ? "You won!" : mine === "" ? "Game over" : "You lost.";
    case "draw":
      return "Draw.";
    case "forfeit":
      return s.winner === accountId ? "Your opponent left: you win!" : "You left the game: forfeit.";
  }
}

/** Readable text for an OpError code. */
export function errorText(code: string): string {
  switch (code) {
    case "not_playing":
      return "The game has not started or is over.";
    case "not_your_turn":
      return "It is not your turn.";
    case "cell_taken":
      return "That cell is taken.";
    case "bad_move":
      return "That is not a cell.";
    default:
      return `The server refused the move (${code}).`;
  }
}
