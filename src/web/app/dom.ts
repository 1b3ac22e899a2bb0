/** Small DOM helpers: elements built from text only, never from HTML strings (the page runs under a strict CSP). */

type Attr = string | number | boolean | undefined | null | ((event: Event) => void);
type Child = Node | string | number | false | undefined | null;

/** The element with this id; throws when the page lacks it (a programming error, not a user error). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node as T;
}

/** `el('td', { class: 'num' }, 'text', child)`: an element with attributes, listeners and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Readonly<Record<string, Attr>> = {},
  ...children: readonly (Child | readonly Child[])[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') node.addEventListener(name.replace(/^on/, ''), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node: Element, children: readonly (Child | readonly Child[])[]): void {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces a container's children. */
export function fill(container: Element, ...children: readonly (Child | readonly Child[])[]): void {
  container.replaceChildren();
  append(container, children);
}

/** The named field of a form (input, textarea or select). */
export function field(form: HTMLFormElement, name: string): HTMLInputElement {
  const f = form.elements.namedItem(name);
  if (f === null) throw new Error(`form #${form.id} has no field ${name}`);
  return f as HTMLInputElement;
}

/** Shows exactly one of `ids` (the others get `hidden`). */
export function showOnly(ids: readonly string[], shown: string): void {
  for (const id of ids) byId(id).hidden = id !== shown;
}

/** A size in bytes as people read it. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  return `${(n / (1024 * 1024 * 1024)).toFixed(2)} GiB`;
}

/** A Unix time (seconds) as a short local date and time. */
export function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * Runs `work` while `button` (if any) is disabled and marked busy, so a second click cannot start it again.
 * Errors go to `onError`.
 */
export async function busy(
  button: HTMLButtonElement | null,
  work: () => Promise<void>,
  onError: (err: unknown) => void,
): Promise<void> {
  if (button) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
  }
  try {
    await work();
  } catch (err) {
    onError(err);
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }
}
