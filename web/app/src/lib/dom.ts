// Small DOM helpers shared by the game page and the admin console. No
// innerHTML anywhere: text goes in as text.

/** The element with this id, or an exception naming it (a page/template mismatch). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page has no element #${id}`);
  return el as T;
}

type Child = Node | string | null | undefined | false;

/** Makes an element with attributes (strings; true for an empty one) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

/** Replaces el's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}

/** Shows or hides an element (the hidden attribute). */
export function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}

/** The message to show for a failed call. */
export function errorMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e && typeof (e as { message: unknown }).message === "string") {
    return (e as { message: string }).message;
  }
  return String(e);
}

/** A short form of an id for tables (full id in the title). */
export function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 8) + "…" : id;
}

/** A local time of day for an RFC 3339 time. */
export function timeOfDay(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
}

/** m:ss for a duration in ms. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Resolves after ms. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
